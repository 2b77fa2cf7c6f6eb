import type { Readable } from 'node:stream';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'openai/core/error';
import type { Logger } from '../logger.js';
import type { CircuitBreaker, CircuitState } from './circuit.js';
import { JSON_TYPE, discard, type UpstreamClient, type UpstreamResponse } from './upstream.js';

/**
 * What a stage needs from its provider(s): one POST, resolved with a 2xx response whose body the
 * caller reads or discards. {@link UpstreamClient} is one; {@link FailoverClient} tries several.
 */
export interface ProviderClient {
  post(
    path: string,
    body: string | Uint8Array,
    contentType: string,
    signal: AbortSignal,
  ): Promise<UpstreamResponse>;
}

/** How one request to one provider ended (`voicebot_provider_requests_total{outcome}`). */
export type ProviderOutcome =
  | 'ok'
  | 'rate_limited'
  | 'server_error'
  | 'auth_error'
  | 'client_error'
  | 'connect_error'
  | 'timeout'
  | 'aborted';

/** These move the request to the next provider and count against the provider's circuit. */
const FAILOVER_OUTCOMES: ReadonlySet<ProviderOutcome> = new Set([
  'rate_limited',
  'server_error',
  'auth_error',
  'connect_error',
  'timeout',
]);

export interface CircuitReading {
  stage: string;
  provider: string;
  state: CircuitState;
}

/** Where per-provider results go (the relay's metrics). */
export interface ProviderObserver {
  providerRequest(stage: string, provider: string, outcome: ProviderOutcome): void;
  providerFailover(stage: string, from: string, to: string): void;
  /** `read` reports every provider's circuit (called at scrape time). */
  watchCircuits(read: () => CircuitReading[]): void;
}

export interface FailoverProvider {
  /** Stable label for metrics and logs (never a URL). */
  name: string;
  /** With the provider's retries: used when no other provider is left to try. */
  client: UpstreamClient;
  /** Without retries: used when another provider follows (moving on beats backing off). */
  once: UpstreamClient;
  firstByteTimeoutMs?: number;
  /** Sent instead of what the request names (a fallback serving other models or voices). */
  overrides?: { model?: string; voice?: string };
  circuit: CircuitBreaker;
}

/** The outcome of a failed attempt, from the error `UpstreamClient` threw. */
export function classify(error: unknown, signal: AbortSignal): ProviderOutcome {
  if (signal.aborted || error instanceof APIUserAbortError) return 'aborted';
  if (error instanceof APIConnectionTimeoutError) return 'timeout';
  if (error instanceof APIConnectionError) return 'connect_error';
  if (error instanceof APIError && error.status !== undefined) {
    const { status } = error;
    if (status === 429) return 'rate_limited';
    if (status === 408) return 'timeout';
    if (status === 401 || status === 403) return 'auth_error';
    if (status >= 500) return 'server_error';
    return 'client_error';
  }
  return 'connect_error';
}

/** The host of a base URL, as a provider's default name. */
export function providerName(baseURL: string | undefined): string {
  try {
    return new URL(baseURL ?? 'https://api.openai.com/v1').host || 'provider';
  } catch {
    return 'provider';
  }
}

/**
 * One stage's providers in order. A request goes to the first whose circuit lets it through; on
 * 429, 5xx, 401/403, 408, a connection failure or a timeout (the headers', or the first byte's) it
 * moves to the next at once, and only the last one left retries. It never moves once it has
 * resolved: a response whose body is being read stays with its provider. A request aborted by
 * its turn (barge-in) ends at once, on no provider.
 */
export class FailoverClient implements ProviderClient {
  constructor(
    readonly stage: string,
    readonly providers: readonly FailoverProvider[],
    private readonly observer?: ProviderObserver,
    private readonly log?: Pick<Logger, 'warn'>,
  ) {}

  async post(
    path: string,
    body: string | Uint8Array,
    contentType: string,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    const { stage, observer, providers } = this;
    // With every circuit open, all are tried anyway (a chance rather than an instant failure).
    const skipOpen = providers.some((p) => p.circuit.available);
    const tried = (p: FailoverProvider) => !skipOpen || p.circuit.available;
    let failed: { name: string; error: unknown; outcome: ProviderOutcome } | undefined;
    for (let i = 0; i < providers.length; i++) {
      const provider = providers[i] as FailoverProvider;
      if (!tried(provider)) continue;
      const last = !providers.some((p, j) => j > i && tried(p));
      if (failed) {
        observer?.providerFailover(stage, failed.name, provider.name);
        this.log?.warn(
          { stage, from: failed.name, to: provider.name, reason: failed.outcome },
          'provider failed over',
        );
      }
      provider.circuit.acquire();
      try {
        const response = await attempt(provider, last, path, body, contentType, signal);
        provider.circuit.success();
        observer?.providerRequest(stage, provider.name, 'ok');
        return response;
      } catch (error) {
        const outcome = classify(error, signal);
        observer?.providerRequest(stage, provider.name, outcome);
        if (outcome === 'aborted') {
          provider.circuit.release();
          throw signal.aborted ? new APIUserAbortError() : error;
        }
        if (!FAILOVER_OUTCOMES.has(outcome)) {
          provider.circuit.success();
          throw error;
        }
        if (provider.circuit.failure())
          this.log?.warn({ stage, provider: provider.name }, 'provider circuit opened');
        failed = { name: provider.name, error, outcome };
      }
    }
    throw failed?.error ?? new APIConnectionError({ message: `no ${stage} provider to try` });
  }

  circuits(): CircuitReading[] {
    return this.providers.map((p) => ({
      stage: this.stage,
      provider: p.name,
      state: p.circuit.state,
    }));
  }
}

async function attempt(
  provider: FailoverProvider,
  last: boolean,
  path: string,
  body: string | Uint8Array,
  contentType: string,
  signal: AbortSignal,
): Promise<UpstreamResponse> {
  const client = last ? provider.client : provider.once;
  const payload = provider.overrides ? withOverrides(body, contentType, provider.overrides) : body;
  const { firstByteTimeoutMs } = provider;
  if (firstByteTimeoutMs === undefined) return client.post(path, payload, contentType, signal);
  if (signal.aborted) throw new APIUserAbortError();
  // The attempt's own signal: the turn's abort reaches it, and so does the first-byte deadline.
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  signal.addEventListener('abort', forward, { once: true });
  const timer = setTimeout(() => controller.abort(FIRST_BYTE_TIMEOUT), firstByteTimeoutMs);
  let response: UpstreamResponse | undefined;
  try {
    response = await client.post(path, payload, contentType, controller.signal);
    await firstByte(response.body, controller.signal);
  } catch (error) {
    signal.removeEventListener('abort', forward);
    if (response) discard(response.body);
    if (controller.signal.reason === FIRST_BYTE_TIMEOUT && !signal.aborted)
      throw new APIConnectionTimeoutError({
        message: `no response byte within ${firstByteTimeoutMs} ms`,
      });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  response.body.once('close', () => signal.removeEventListener('abort', forward));
  return response;
}

const FIRST_BYTE_TIMEOUT = new Error('first-byte timeout');

/** Resolves once the body has a byte buffered (or has ended), without consuming anything. */
function firstByte(body: Readable, signal: AbortSignal): Promise<void> {
  if (body.readableLength > 0 || body.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown) => {
      body.off('readable', onReadable);
      body.off('error', settle);
      signal.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReadable = () => settle();
    const onAbort = () => settle(new APIUserAbortError());
    body.on('readable', onReadable);
    body.on('error', settle);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The request as a fallback provider takes it: its own `model` (and `voice`) in the JSON body, or
 * in the `model` field of a multipart upload. Only done when failing over, so the cost (a parse of
 * the body) is never paid on the first provider.
 */
export function withOverrides(
  body: string | Uint8Array,
  contentType: string,
  overrides: { model?: string; voice?: string },
): string | Uint8Array {
  if (contentType === JSON_TYPE) {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    const json = JSON.parse(text) as Record<string, unknown>;
    if (overrides.model) json.model = overrides.model;
    if (overrides.voice && 'voice' in json) json.voice = overrides.voice;
    return JSON.stringify(json);
  }
  const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(contentType)?.[1];
  if (!boundary || !overrides.model || typeof body === 'string') return body;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const head = Buffer.from('Content-Disposition: form-data; name="model"\r\n\r\n');
  const at = bytes.indexOf(head);
  if (at < 0) return body;
  const valueStart = at + head.byteLength;
  const valueEnd = bytes.indexOf(`\r\n--${boundary}`, valueStart);
  if (valueEnd < 0) return body;
  return Buffer.concat([
    bytes.subarray(0, valueStart),
    Buffer.from(overrides.model),
    bytes.subarray(valueEnd),
  ]);
}
