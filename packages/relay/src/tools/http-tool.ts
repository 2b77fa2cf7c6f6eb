import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  assertLiteralAllowed,
  guardedLookup,
  hostAllowed,
  isPublicAddress,
  type AddressPolicy,
} from './ssrf.js';
import { renderTemplate } from './template.js';
import { ConfigError } from '../config/config.js';
import { ToolError, type JsonSchema, type ToolDefinition } from './types.js';

/** An integration tool declared in `voicebot.config.json`: the relay calls an HTTP API for the model. */
export interface HttpToolConfig {
  name: string;
  description: string;
  parameters: JsonSchema;
  http: {
    method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    /**
     * URL template: `{{args.x}}` and `{{metadata.y}}` are URL-encoded; `{{env.NAME}}` (e.g. a base URL) is not.
     * A placeholder before `?`/`#` (in the path) refuses `.`, `..` and empty values, which would change the path.
     */
    url: string;
    /** Header templates; only these may read `{{env.NAME}}`, so secrets stay in the environment. */
    headers?: Record<string, string>;
    /** `args` (default for non-GET) sends the arguments as JSON; a string is a JSON template. */
    body?: 'args' | string;
    timeoutMs?: number;
    maxResponseBytes?: number;
    /**
     * Follow redirects (at most 3) to the same origin only (scheme, host and port: never https → http);
     * a redirect elsewhere fails the call. Default false: a 3xx response fails the call.
     */
    followRedirects?: boolean;
  };
  /** Conversation metadata to set from the response: `{"customer.first_name": "{{response.data.first_name}}"}`. */
  metadata?: Record<string, string>;
  /** A fixed reply template for the model instead of the raw response: `"Open {{response.hours}}"`. */
  reply?: string;
  public?: boolean;
}

/** An encoded path value that `new URL()` would resolve as a dot segment (`%2e` counts as a dot), or that would add an empty segment. */
function isPathChanging(encoded: string): boolean {
  const dots = encoded.replace(/%2e/gi, '.');
  return dots === '' || dots === '.' || dots === '..';
}

/** Dot pieces between slashes (`../admin`): encoded as `..%2Fadmin` they are inert here, but some servers decode `%2F` before resolving dots. */
const hasDotPiece = (value: string): boolean =>
  /[/\\]/.test(value) && value.split(/[/\\]/).some((piece) => piece === '.' || piece === '..');

/** Encodes one value for the path part of a URL, refusing values that would change which path is requested. */
function encodePathValue(value: string): string {
  const encoded = encodeComponent(value);
  if (isPathChanging(encoded) || hasDotPiece(value))
    throw new ToolError('refused: a value in the URL path may not be empty, "." or ".."');
  return encoded;
}

function encodeComponent(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    throw new ToolError('refused: a value is not valid Unicode'); // a lone surrogate
  }
}

/**
 * Renders a URL template (after `{{env.NAME}}` substitution): placeholders before the first `?` or
 * `#` form the path, where `.`, `..` and empty values are refused (`/items/{{args.id}}/details` with
 * `..` would otherwise request `/details`, with the tool's headers); query and fragment values may be empty.
 */
function renderUrl(template: string, data: Record<string, unknown>): URL {
  const split = template.search(/[?#]/);
  const path = split === -1 ? template : template.slice(0, split);
  const rest = split === -1 ? '' : template.slice(split);
  const rendered =
    renderTemplate(path, data, encodePathValue) + renderTemplate(rest, data, encodeComponent);
  try {
    return new URL(rendered);
  } catch {
    throw new ToolError('the tool URL is invalid');
  }
}

const DEFAULT_TIMEOUT_MS = 8_000;
const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;
const MAX_REDIRECTS = 3;
/** What the model sees of a non-JSON body. */
const MAX_TEXT_FOR_MODEL = 4_000;

interface FetchedResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

interface SendInit {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  maxBytes: number;
  policy: AddressPolicy;
  signal: AbortSignal;
  followRedirects: boolean;
  /** The origin of the first request: the only one redirects may lead to (its headers carry secrets). */
  origin: string;
}

function send(url: URL, init: SendInit, redirects = 0): Promise<FetchedResponse> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.reject(new ToolError(`unsupported URL scheme ${url.protocol}`));
  try {
    assertLiteralAllowed(url.hostname, init.policy);
  } catch (error) {
    return Promise.reject(new ToolError(`refused: ${(error as Error).message}`));
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method,
        headers: init.headers,
        lookup: guardedLookup(init.policy) as never,
        signal: init.signal,
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location) {
          res.resume();
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            return reject(
              new ToolError(
                `the service answered HTTP ${status} with an invalid redirect, which was not followed`,
              ),
            );
          }
          const notFollowed = `the service answered HTTP ${status} (a redirect, which was not followed)`;
          try {
            assertLiteralAllowed(next.hostname, init.policy); // say so when it points at a non-public address
          } catch (error) {
            return reject(new ToolError(`refused: ${(error as Error).message}; ${notFollowed}`));
          }
          if (!init.followRedirects) return reject(new ToolError(notFollowed));
          // Same scheme, host and port only: the templated headers (secrets) never go anywhere else.
          if (next.origin !== init.origin)
            return reject(
              new ToolError(
                `refused: a redirect to another origin (${next.protocol}//${next.host}) was not followed`,
              ),
            );
          if (redirects >= MAX_REDIRECTS) return reject(new ToolError('too many redirects'));
          const keepBody = status === 307 || status === 308;
          resolve(
            send(
              next,
              {
                ...init,
                method: keepBody ? init.method : 'GET',
                body: keepBody ? init.body : undefined,
              },
              redirects + 1,
            ),
          );
          return;
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > init.maxBytes) {
          res.destroy();
          return reject(
            new ToolError(`response too large (${declared} bytes; limit ${init.maxBytes})`),
          );
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > init.maxBytes) {
            res.destroy();
            reject(new ToolError(`response too large (over ${init.maxBytes} bytes)`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'BlockedAddressError' || error.code === 'EBLOCKED')
        reject(new ToolError(`refused: ${error.message}`));
      else reject(error);
    });
    if (init.body !== undefined) req.end(init.body);
    else req.end();
  });
}

function parseBody(response: FetchedResponse): unknown {
  const text = response.body.toString('utf8');
  if (/json/i.test(response.contentType) || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // fall through: treat as text
    }
  }
  return text.length > MAX_TEXT_FOR_MODEL ? `${text.slice(0, MAX_TEXT_FOR_MODEL)}…` : text;
}

export function createHttpTool(
  config: HttpToolConfig,
  policy: AddressPolicy,
  env: Record<string, string | undefined>,
): ToolDefinition {
  const method = config.http.method ?? 'GET';
  const followRedirects = config.http.followRedirects ?? false;
  if (typeof followRedirects !== 'boolean')
    throw new ConfigError(`tool ${config.name}: http.followRedirects must be true or false`);
  return {
    name: config.name,
    description: config.description,
    parameters: config.parameters,
    timeoutMs: config.http.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(config.public ? { public: true } : {}),
    async execute(args, context): Promise<unknown> {
      const data = { args, metadata: context.metadata, user: context.user ?? {} };
      const withEnv = config.http.url.replace(
        /\{\{\s*env\.(\w+)\s*\}\}/g,
        (_match, name: string) => env[name] ?? '',
      );
      const url = renderUrl(withEnv, data);
      const headers: Record<string, string> = {
        accept: 'application/json',
        'user-agent': 'voicebot-relay',
      };
      for (const [name, template] of Object.entries(config.http.headers ?? {}))
        headers[name] = renderTemplate(template, { ...data, env });
      let body: string | undefined;
      const bodySpec =
        config.http.body ?? (method === 'GET' || method === 'DELETE' ? undefined : 'args');
      if (bodySpec === 'args') body = JSON.stringify(args);
      else if (bodySpec !== undefined)
        body = renderTemplate(bodySpec, data, (v) => JSON.stringify(v).slice(1, -1));
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const response = await send(url, {
        method,
        headers,
        body,
        maxBytes: config.http.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
        policy,
        signal: context.signal,
        followRedirects,
        origin: url.origin,
      });
      if (response.status < 200 || response.status >= 300)
        throw new ToolError(`the service answered HTTP ${response.status}`);
      const parsed = parseBody(response);
      const view = { ...data, response: parsed };
      const metadata: Record<string, string> = {};
      for (const [key, template] of Object.entries(config.metadata ?? {}))
        metadata[key] = renderTemplate(template, view);
      if (Object.keys(metadata).length > 0) context.setMetadata(metadata);
      return config.reply ? renderTemplate(config.reply, view) : parsed;
    },
  };
}

/**
 * Warns at start about HTTP tools whose host the SSRF guard will refuse (loopback, private,
 * link-local… and not in `toolAllowHosts`), so an owner learns it from the log, not from a visitor.
 * Hosts that are names are resolved in the background; templated hosts are skipped.
 */
export function warnAboutRefusedToolHosts(
  tools: readonly HttpToolConfig[],
  allowHosts: readonly string[],
  log: { warn(data: object, message: string): void },
  env: Record<string, string | undefined>,
): void {
  for (const tool of tools) {
    const withEnv = tool.http.url.replace(
      /\{\{\s*env\.(\w+)\s*\}\}/g,
      (_match, name: string) => env[name] ?? '',
    );
    let host: string;
    try {
      host = new URL(withEnv.replace(/\{\{[^}]*\}\}/g, 'x')).hostname;
    } catch {
      continue;
    }
    if (!host || hostAllowed(host, { allowHosts })) continue;
    const warn = (address: string) =>
      log.warn(
        { tool: tool.name, host, address },
        `tool ${tool.name}: ${host} is not a public address, so its calls will be refused; list it in toolAllowHosts if that is intended`,
      );
    const bare = host.replace(/^\[|\]$/g, '');
    if (isIP(bare)) {
      if (!isPublicAddress(bare)) warn(bare);
      continue;
    }
    lookup(bare, { all: true }).then(
      (addresses) => {
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad) warn(bad.address);
      },
      () => undefined, // unresolvable now: the call will say so when it happens
    );
  }
}
