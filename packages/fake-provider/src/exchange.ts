/**
 * The per-request machinery every endpoint shares: an {@link Exchange} records the request, notices
 * when the client goes away, paces a response along its scripted {@link Step}s and applies scripted
 * failures (OpenAI-shaped HTTP errors, mid-stream connection resets, requests that never answer).
 */
import type { Context, Hono } from 'hono';
import { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { FakeFailure, FakeUpstreamOptions, RecordedRequest, RequestKind } from './types.js';

/** One network chunk of a response. */
export interface Step {
  data: Uint8Array;
  /** ms after the request's arrival. */
  at: number;
}

/** What `createFakeUpstream` hands each endpoint module when it registers its routes. */
export interface Endpoint {
  app: Hono;
  /** The path prefix, without a trailing slash (e.g. `/v1`). */
  base: string;
  options: FakeUpstreamOptions;
  latency: NonNullable<FakeUpstreamOptions['latency']>;
  /** Starts the exchange of one request (recorded once {@link Exchange.received} is called). */
  begin(c: Context, kind: RequestKind): Exchange;
}

export type Notify = () => void;

export const encoder = new TextEncoder();

export function isFailure(value: unknown): value is FakeFailure {
  return typeof value === 'object' && value !== null && 'fail' in value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** OpenAI's error `type` and `code` for an HTTP status. */
export function errorType(status: number): { type: string; code: string | null } {
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 404) return { type: 'invalid_request_error', code: 'not_found' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

/**
 * Parses the JSON body of a request and records it; answers 400 (as OpenAI does) if it is not JSON
 * or not an object.
 */
export async function readJsonObject(
  c: Context,
  ex: Exchange,
): Promise<Record<string, unknown> | Response> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    ex.received(null);
    return ex.error(400, 'We could not parse the JSON body of your request.');
  }
  ex.received(body);
  if (!isRecord(body)) return ex.error(400, 'The request body must be a JSON object.');
  return body;
}

/** Resolves true after `ms` (a macrotask turn when ≤ 0), false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    let cancelTimer: () => void;
    const done = (ok: boolean) => {
      cancelTimer();
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    if (ms > 0) {
      const timer = setTimeout(() => done(true), ms);
      cancelTimer = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => done(true));
      cancelTimer = () => clearImmediate(immediate);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function nodeResponse(env: unknown): ServerResponse | undefined {
  if (!isRecord(env)) return undefined;
  const outgoing = env['outgoing'];
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/** One request/response: its record, client-abort detection, pacing and failure modes. */
export class Exchange {
  readonly record: RecordedRequest;
  readonly signal: AbortSignal;
  readonly outgoing: ServerResponse | undefined;
  readonly requestId = `req_${randomUUID().replace(/-/g, '')}`;
  private ended = false;

  constructor(
    c: Context,
    kind: RequestKind,
    private readonly notify: Notify,
    private readonly recordRequest: (record: RecordedRequest) => void,
  ) {
    this.record = {
      path: c.req.path,
      kind,
      body: undefined,
      startedAt: performance.now(),
      aborted: false,
    };
    this.signal = c.req.raw.signal;
    this.outgoing = nodeResponse(c.env);
    if (this.signal.aborted) this.abort();
    else this.signal.addEventListener('abort', () => this.abort(), { once: true });
  }

  /** Records the request (now that its body is parsed). */
  received(body: unknown): void {
    this.record.body = body;
    this.recordRequest(this.record);
  }

  complete(status: number): void {
    this.record.status ??= status;
    if (this.ended) return;
    this.ended = true;
    this.record.endedAt = performance.now();
    this.notify();
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.record.aborted = true;
    this.record.endedAt = performance.now();
    this.notify();
  }

  /** Waits until `at` ms after arrival; false if the client went away. */
  waitUntil(at: number): Promise<boolean> {
    return sleep(this.record.startedAt + at - performance.now(), this.signal);
  }

  headers(contentType: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      'content-type': contentType,
      'x-request-id': this.requestId,
      'openai-processing-ms': '1',
      ...extra,
    };
  }

  error(
    status: number,
    message: string,
    param: string | null = null,
    extraHeaders: Record<string, string> = {},
  ): Response {
    const { type, code } = errorType(status);
    this.complete(status);
    return new Response(JSON.stringify({ error: { message, type, param, code } }), {
      status,
      headers: this.headers('application/json', extraHeaders),
    });
  }

  /** Answers a scripted failure; `fallback` is the normal response's body (streamed before a `cut`). */
  async failure(
    failure: FakeFailure,
    fallback: () => { steps: Step[]; contentType: string },
  ): Promise<Response> {
    this.record.failure = failure.fail;
    if (failure.fail === 'http') {
      const extra: Record<string, string> = {};
      const retryAfter = failure.retryAfter ?? (failure.status === 429 ? 1 : undefined);
      if (retryAfter !== undefined) extra['retry-after'] = String(retryAfter);
      const message =
        failure.message ??
        (failure.status === 429
          ? 'Rate limit reached (fake upstream).'
          : `Scripted failure with status ${failure.status} (fake upstream).`);
      return this.error(failure.status, message, null, extra);
    }
    if (failure.fail === 'hang') {
      await new Promise<void>((resolve) => {
        if (this.signal.aborted) resolve();
        else this.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return new Response(null, { status: 499 });
    }
    const { steps, contentType } = fallback();
    const total = steps.reduce((n, s) => n + s.data.byteLength, 0);
    const cut =
      failure.afterChunks === undefined && failure.afterBytes === undefined
        ? steps.length > 1
          ? { afterChunks: Math.floor(steps.length / 2) }
          : { afterBytes: Math.floor(total / 2) }
        : failure;
    return this.stream(steps, contentType, cut);
  }

  /** A paced streaming response; with `cut`, the connection is reset after that many chunks/bytes. */
  stream(
    steps: Step[],
    contentType: string,
    cut?: { afterChunks?: number; afterBytes?: number },
    extraHeaders: Record<string, string> = {},
  ): Response {
    let index = 0;
    let chunks = 0;
    let bytes = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            const cutDue =
              cut !== undefined &&
              ((cut.afterChunks !== undefined && chunks >= cut.afterChunks) ||
                (cut.afterBytes !== undefined && bytes >= cut.afterBytes));
            if (cutDue) {
              this.record.failure = 'cut';
              this.complete(200);
              // With node bindings the adapter cancels the stream once the socket closes.
              if (!(await this.destroyConnection()))
                controller.error(new Error('fake upstream: connection cut'));
              return;
            }
            const step = steps[index++];
            if (!step) {
              this.complete(200);
              controller.close();
              return;
            }
            if (!(await this.waitUntil(step.at))) {
              // The node adapter cancels the stream when the socket closes; elsewhere, end it here.
              if (!this.outgoing) {
                try {
                  controller.error(new Error('client went away'));
                } catch {
                  // already cancelled
                }
              }
              return;
            }
            let data = step.data;
            if (cut?.afterBytes !== undefined && bytes + data.byteLength > cut.afterBytes)
              data = data.subarray(0, cut.afterBytes - bytes);
            chunks++;
            bytes += data.byteLength;
            if (data.byteLength > 0) {
              controller.enqueue(data);
              return;
            }
          }
        },
        cancel: () => this.abort(),
      },
      { highWaterMark: 0 },
    );
    this.record.status = 200;
    return new Response(body, { status: 200, headers: this.headers(contentType, extraHeaders) });
  }

  /** A complete, non-streamed response, sent `at` ms after arrival. */
  async respond(at: number, body: string | Uint8Array, contentType: string): Promise<Response> {
    if (!(await this.waitUntil(at))) return new Response(null, { status: 499 });
    this.complete(200);
    return new Response(body, { status: 200, headers: this.headers(contentType) });
  }

  /** Destroys the socket once the headers and the bytes written so far have left. False without node bindings. */
  private async destroyConnection(): Promise<boolean> {
    const outgoing = this.outgoing;
    if (!outgoing) return false;
    const never = new AbortController().signal;
    for (let i = 0; i < 100; i++) {
      const socket = outgoing.socket;
      if (!socket || socket.destroyed) break;
      if (outgoing.headersSent && outgoing.writableLength === 0 && socket.writableLength === 0)
        break;
      await sleep(2, never);
    }
    outgoing.socket?.destroy();
    return true;
  }
}
