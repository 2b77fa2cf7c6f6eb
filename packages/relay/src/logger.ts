import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Longest error-carrying string field (`err`, `msg`, …) a log line keeps. */
export const MAX_LOGGED_ERROR_CHARS = 1000;
/** Stack traces keep a little more, so they stay useful. */
const MAX_LOGGED_STACK_CHARS = 4000;

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  // `Authorization: …`, `x-api-key=…`, `"api_key": "…"`, `token=…`: the value, whatever its form.
  [
    /\b((?:proxy-)?authorization|x-api-key|xi-api-key|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|token|secret|password)(["']?\s*[:=]\s*["']?)(?:(?:Bearer|Basic|Token)\s+)?[^\s"',;}]+/gi,
    '$1$2[redacted]',
  ],
  // `Bearer <token>` wherever it appears (`Basic …` only after `Authorization:`, above: it is also a word).
  [/\b(Bearer)\s+[\w\-.~+/=*…]+/gi, '$1 [redacted]'],
  // OpenAI-style keys (`sk-…`, `sk-proj-…`, `sk-live-…`, also masked echoes such as `sk-x…abcd`).
  [/\bsk-[\w\-*…]+/g, 'sk-[redacted]'],
  // The relay's own publishable client keys.
  [/\bvb_pk_[\w-]+/g, 'vb_pk_[redacted]'],
  // Google API keys.
  [/\bAIza[\w-]{20,}/g, '[redacted]'],
  // JWTs (session tokens, provider tokens): three base64url parts, the first a JSON header.
  [/\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g, '[redacted-jwt]'],
];

/**
 * Masks credentials in a string that may echo them (a provider's error body, an exception message)
 * and caps its length. Applied by the logger to error-carrying fields of lines actually written.
 */
export function redactSecrets(text: string, max = MAX_LOGGED_ERROR_CHARS): string {
  // Bound the regex work on huge bodies; the cut part is dropped below anyway.
  let out = text.length > max * 4 ? text.slice(0, max * 4) : text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out.length > max ? `${out.slice(0, max)}…(truncated)` : out;
}

/** Fields of a log object that carry error text, which may quote a provider's response. */
const ERROR_FIELDS = [
  'err',
  'error',
  'cause',
  'reason',
  'detail',
  'message',
  'msg',
  'body',
] as const;

function redactFields(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const field of ERROR_FIELDS) {
    const value = object[field];
    if (typeof value !== 'string') continue;
    copy ??= { ...object };
    copy[field] = redactSecrets(value);
  }
  return copy ?? object;
}

/** `err` given as an `Error`: pino's serializer, then the same masking of its text. */
function serializeError(value: unknown): unknown {
  const serialized = stdSerializers.err(value as Error) as unknown;
  if (serialized === null || typeof serialized !== 'object')
    return typeof serialized === 'string' ? redactSecrets(serialized) : serialized;
  const out: Record<string, unknown> = { ...(serialized as Record<string, unknown>) };
  for (const [key, field] of Object.entries(out)) {
    if (typeof field === 'string')
      out[key] = redactSecrets(
        field,
        key === 'stack' ? MAX_LOGGED_STACK_CHARS : MAX_LOGGED_ERROR_CHARS,
      );
  }
  return out;
}

/**
 * Structured JSON logs. Audio never reaches a log call; secrets are redacted by path as a second
 * line of defence (keys, tokens and provider keys must not be passed in the first place), and the
 * text of error-carrying fields (`err`, `msg`, …) is masked for keys, bearer tokens and JWTs and
 * capped, since provider error bodies can echo them. Both run only for lines that are written.
 */
export function createLogger(
  options: { level?: string; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'voicebot-relay' },
      redact: {
        paths: [
          'key',
          'secret',
          'token',
          'apiKey',
          'authorization',
          '*.key',
          '*.secret',
          '*.token',
          '*.apiKey',
          '*.authorization',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
      serializers: { err: serializeError },
      formatters: { log: redactFields },
      hooks: {
        // Called only for enabled levels. Masks the message and its format arguments; an error
        // logged without a message would lend pino its raw `message`, so pass that one masked.
        logMethod(args: unknown[], method) {
          const [first, second] = args;
          let masked = args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : arg));
          if (typeof second !== 'string' && first !== null && typeof first === 'object') {
            const error =
              first instanceof Error
                ? first
                : (first as { err?: unknown; msg?: unknown }).msg === undefined
                  ? (first as { err?: unknown }).err
                  : undefined;
            const text =
              error !== null && typeof error === 'object'
                ? (error as { message?: unknown }).message
                : undefined;
            if (typeof text === 'string') masked = [first, redactSecrets(text), ...args.slice(1)];
          }
          return method.apply(this, masked as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}
