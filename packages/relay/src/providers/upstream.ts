import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'openai/core/error';
import { Agent, request, type Dispatcher } from 'undici';
import type { StageConfig } from '../config/config.js';

/**
 * Bytes of a response body read ahead of its consumer before the socket is paused. undici's
 * default is 64 KiB: 1.4 s of 24 kHz speech for every TTS request fetched ahead of playback.
 */
const BODY_HIGH_WATER_MARK = 16 * 1024;
/** An error response's body is read up to this much (for its message); the rest is dropped. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** A Retry-After longer than this is not waited for: the default backoff applies instead. */
const MAX_RETRY_AFTER_MS = 60_000;

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamResponse {
  status: number;
  headers: UpstreamHeaders;
  /** A Node stream of the body bytes (Buffers), paused until read; destroyed when `signal` aborts. */
  body: Readable;
}

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string | Uint8Array;
  signal: AbortSignal;
  /** Give up when the response headers have not arrived within this long. */
  timeoutMs: number;
}

/** How a request reaches the provider: one HTTP POST, its response once the headers are in. */
export type UpstreamTransport = (request: UpstreamRequest) => Promise<UpstreamResponse>;

/** The transport's own timeout fired (see {@link fetchTransport}). */
class UpstreamTimeout extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * undici's `request` API with its Node stream body: no `Headers`, `Response` or WHATWG stream per
 * call, no abort controller (the turn's signal goes straight to undici). The timeout is undici's
 * `headersTimeout` (the wait for the response headers once the request is on a connection);
 * connecting has the dispatcher's own connect timeout.
 */
export function undiciTransport(dispatcher: Dispatcher = new Agent()): UpstreamTransport {
  return async (req) => {
    const response = await request(req.url, {
      dispatcher,
      method: 'POST',
      headers: req.headers,
      body: req.body,
      signal: req.signal,
      headersTimeout: req.timeoutMs,
      highWaterMark: BODY_HIGH_WATER_MARK,
    });
    return { status: response.statusCode, headers: response.headers, body: response.body };
  };
}

/**
 * Any `fetch` (a proxy's, Node's own, a test double) as the transport: slower per call and per
 * chunk than {@link undiciTransport}, for `createRelay({ upstreamFetch })`.
 */
export function fetchTransport(upstreamFetch: typeof fetch): UpstreamTransport {
  return async (req) => {
    const controller = new AbortController();
    const onAbort = () => controller.abort(req.signal.reason);
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new UpstreamTimeout()), req.timeoutMs);
    let response: Response;
    try {
      response = await upstreamFetch(req.url, {
        method: 'POST',
        headers: req.headers,
        // Bodies are Buffers over plain ArrayBuffers, never shared memory.
        body: req.body as string | Uint8Array<ArrayBuffer>,
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.reason instanceof UpstreamTimeout) throw controller.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const headers: UpstreamHeaders = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    const body = response.body
      ? Readable.fromWeb(response.body as NodeReadableStream)
      : Readable.from([]);
    return { status: response.status, headers, body };
  };
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function isTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return true;
  return error.name === 'TimeoutError' || /timed? ?out/i.test(`${error} ${String(error.cause)}`);
}

/** What the `openai` SDK retries: its `x-should-retry` verdict, else 408, 409, 429 and 5xx. */
function shouldRetry(response: UpstreamResponse): boolean {
  const verdict = response.headers['x-should-retry'];
  if (verdict === 'true') return true;
  if (verdict === 'false') return false;
  const { status } = response;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The wait before retry `attempt` (0-based): the provider's Retry-After(-Ms), else 0.5 s × 2^n up to 8 s, minus up to 25 % jitter. */
function retryDelayMs(attempt: number, headers: UpstreamHeaders | undefined): number {
  const ms = Number.parseFloat(String(headers?.['retry-after-ms'] ?? ''));
  if (ms >= 0 && ms <= MAX_RETRY_AFTER_MS) return ms;
  const retryAfter = headers?.['retry-after'];
  if (typeof retryAfter === 'string') {
    const seconds = Number.parseFloat(retryAfter);
    const wait = Number.isNaN(seconds) ? Date.parse(retryAfter) - Date.now() : seconds * 1000;
    if (wait >= 0 && wait <= MAX_RETRY_AFTER_MS) return wait;
  }
  return Math.min(0.5 * 2 ** attempt, 8) * (1 - Math.random() * 0.25) * 1000;
}

/** Sleeps `ms`, or rejects as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new APIUserAbortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads a whole body as text, at most `limit` bytes of it (the rest is dropped). */
export function readBody(body: Readable, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      const room = limit - bytes;
      if (chunk.byteLength >= room) {
        chunks.push(chunk.subarray(0, room));
        bytes = limit;
        body.off('data', onData);
        body.on('error', () => undefined);
        body.destroy();
        resolve(Buffer.concat(chunks).toString());
        return;
      }
      chunks.push(chunk);
      bytes += chunk.byteLength;
    };
    body.on('data', onData);
    body.once('end', () => resolve(Buffer.concat(chunks).toString()));
    body.once('error', reject);
  });
}

/** Drops a response body unread (and the connection under it). */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

export function toHeaders(headers: UpstreamHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else if (value !== undefined) out.append(name, value);
  }
  return out;
}

function safeJson(text: string): object | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export const JSON_TYPE = 'application/json';

/**
 * One provider stage's OpenAI-compatible endpoint: POSTs with the stage's key, timeout and retries,
 * failures as the `openai` SDK's error types (so callers map them as they did with the SDK):
 * `APIUserAbortError` when `signal` aborted, `APIConnectionTimeoutError` when the headers did not
 * come in time, `APIConnectionError` when the connection failed, and for an HTTP error status the
 * `APIError` subclass of that status (`InternalServerError`, `RateLimitError`…). Retried like the
 * SDK retries: connection failures, timeouts, 408, 409, 429 and 5xx, after Retry-After or an
 * exponential backoff; a wait between attempts ends at once when `signal` aborts.
 */
export class UpstreamClient {
  private readonly base: string;
  private readonly authorization: string;
  /** The headers of a JSON request (most of them), made once. */
  private readonly jsonHeaders: Record<string, string>;

  constructor(
    private readonly stage: StageConfig,
    private readonly transport: UpstreamTransport,
  ) {
    this.base = (stage.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
    // Local OpenAI-compatible servers (Ollama, vLLM, speaches…) accept any key.
    this.authorization = `Bearer ${stage.apiKey ?? 'unused'}`;
    this.jsonHeaders = this.headers(JSON_TYPE);
  }

  private headers(contentType: string): Record<string, string> {
    return { authorization: this.authorization, 'content-type': contentType, accept: JSON_TYPE };
  }

  /** POSTs `body`; resolves with a 2xx response whose body the caller must read or {@link discard}. */
  async post(
    path: string,
    body: string | Uint8Array,
    contentType: string,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    const request: UpstreamRequest = {
      url: this.base + path,
      headers: contentType === JSON_TYPE ? this.jsonHeaders : this.headers(contentType),
      body,
      signal,
      timeoutMs: this.stage.timeoutMs,
    };
    for (let attempt = 0; ; attempt++) {
      const retriesLeft = this.stage.maxRetries - attempt;
      if (signal.aborted) throw new APIUserAbortError();
      let response: UpstreamResponse;
      try {
        response = await this.transport(request);
      } catch (error) {
        if (signal.aborted) throw new APIUserAbortError();
        if (retriesLeft > 0) {
          await sleep(retryDelayMs(attempt, undefined), signal);
          continue;
        }
        if (isTimeout(error)) throw new APIConnectionTimeoutError();
        throw new APIConnectionError({
          message: `Connection error: ${(error as Error)?.message ?? String(error)}`,
          cause: error as Error,
        });
      }
      if (response.status >= 200 && response.status < 300) return response;
      if (retriesLeft > 0 && shouldRetry(response)) {
        discard(response.body);
        await sleep(retryDelayMs(attempt, response.headers), signal);
        continue;
      }
      const text = await readBody(response.body, ERROR_BODY_LIMIT).catch(
        (error: unknown) => (error as Error)?.message ?? '',
      );
      const json = safeJson(text);
      throw APIError.generate(
        response.status,
        json,
        json ? undefined : text,
        toHeaders(response.headers),
      );
    }
  }
}
