import { Readable, finished } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';

/** Final statuses whose responses have no body (a `Response` with one cannot be built). */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * Bytes of a response body read ahead of its consumer, per buffering layer (undici's body stream,
 * then the WHATWG stream over it), before the socket is paused. undici's default is 64 KiB per
 * layer: 1.4 s of 24 kHz speech for every TTS request fetched ahead of playback.
 */
const BODY_HIGH_WATER_MARK = 16 * 1024;

type UndiciBody = Exclude<Dispatcher.RequestOptions['body'], undefined>;
type NodeReadableStream = import('node:stream/web').ReadableStream;

/**
 * The `fetch` the relay gives the `openai` SDK for its upstream calls: undici's `request` API under
 * a WHATWG `Response`. Node's built-in `fetch` runs the whole Fetch-standard machinery (Request
 * objects, header guards, redirect and CORS steps, a controller per body chunk) on every call;
 * at hundreds of concurrent voice sessions that was the relay's largest cost after socket writes.
 * Differences that matter here, all deliberate: redirects are not followed (an API endpoint that
 * redirects is misconfigured), and responses are not decompressed (none is asked for: no
 * `Accept-Encoding` goes out, so providers answer uncompressed). Streaming, cancellation through
 * `signal`, status codes and headers behave as with `fetch`.
 */
export function createUpstreamFetch(dispatcher: Dispatcher = new Agent()): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const signal = init?.signal ?? undefined;
    signal?.throwIfAborted();
    const headers = new Headers(init?.headers);
    const body = requestBody(init?.body, headers);
    const response = await request(url, {
      dispatcher,
      method: (init?.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: [...headers].flat(),
      ...(body !== undefined ? { body } : {}),
      ...(signal ? { signal } : {}),
      highWaterMark: BODY_HIGH_WATER_MARK,
    });
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
      else if (value !== undefined) responseHeaders.append(name, value);
    }
    if (NULL_BODY_STATUSES.has(response.statusCode)) {
      response.body.resume();
      return new Response(null, { status: response.statusCode, headers: responseHeaders });
    }
    return new Response(webBody(response.body), {
      status: response.statusCode,
      headers: responseHeaders,
    });
  };
}

/**
 * A response body as a WHATWG stream, with backpressure (the socket is paused while
 * `highWaterMark` bytes wait unread). Unlike `Readable.toWeb`, chunks are passed on without a copy
 * (`toWeb` copies every Buffer in case it is a slice of a shared pool). undici's body chunks are
 * views of the socket data they arrived in, which neither undici nor Node writes again once it is
 * handed out (pool slices included); a small chunk may keep the rest of its read or pool alive.
 */
export function webBody(body: Readable): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const onData = (chunk: Uint8Array) => {
    // `resume()` runs on the next tick, so data can still come after a cancel: drop it.
    if (cancelled) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) body.pause();
  };
  body.pause();
  body.on('data', onData);
  const stopWatching = finished(body, (error) => {
    stopWatching();
    // A late `error` from a stream already finished must not go unhandled.
    body.on('error', () => undefined);
    if (cancelled) return;
    if (error) controller.error(error);
    else controller.close();
  });
  return new ReadableStream<Uint8Array>(
    {
      start: (c) => {
        controller = c;
      },
      pull: () => {
        body.resume();
      },
      cancel: (reason: unknown) => {
        cancelled = true;
        body.off('data', onData);
        body.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: body.readableHighWaterMark }),
  );
}

/** The body as undici takes it; `headers` gets the content type a FormData, Blob or URLSearchParams implies, as with fetch. */
function requestBody(body: RequestInit['body'], headers: Headers): UndiciBody | undefined {
  if (body === null || body === undefined) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body))
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ReadableStream) return Readable.fromWeb(body as NodeReadableStream);
  const serialised = new Response(body);
  const type = serialised.headers.get('content-type');
  if (type && !headers.has('content-type')) headers.set('content-type', type);
  return Readable.fromWeb(serialised.body as NodeReadableStream);
}
