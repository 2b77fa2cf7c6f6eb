import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from 'openai';
import type { StageConfig } from '../config/config.js';
import {
  JSON_TYPE,
  UpstreamClient,
  fetchTransport,
  readBody,
  undiciTransport,
  type UpstreamTransport,
} from './upstream.js';

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('UpstreamClient', () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  const hits = new Map<string, number>();
  /** Resolves when the server sees a client close a hanging request. */
  let hangClosed: Promise<number> = Promise.resolve(0);
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, n: number) => void> = {
    '/ok': (_req, res) => res.writeHead(200, { 'content-type': JSON_TYPE }).end('{"ok":true}'),
    '/missing': (_req, res) =>
      res.writeHead(404, { 'content-type': JSON_TYPE }).end('{"error":{"message":"no model"}}'),
    '/flaky': (_req, res, n) =>
      n % 2 === 1
        ? res
            .writeHead(500, { 'content-type': JSON_TYPE, 'retry-after-ms': '10' })
            .end(JSON.stringify({ error: { message: 'try again', pad: 'x'.repeat(20_000) } }))
        : res.writeHead(200).end('second'),
    '/limited': (_req, res) =>
      res.writeHead(429, { 'retry-after': '0' }).end('{"error":{"message":"slow down"}}'),
    '/no-retry': (_req, res) => res.writeHead(503, { 'x-should-retry': 'false' }).end('down'),
    '/huge-error': (_req, res) => {
      res.writeHead(500);
      res.end('y'.repeat(4 * 2 ** 20));
    },
    '/hang': (req) => {
      const opened = performance.now();
      hangClosed = new Promise((resolve) =>
        req.socket.once('close', () => resolve(performance.now() - opened)),
      );
    },
  };

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        const path = (req.url ?? '').replace(/^\/v1/, '');
        const n = (hits.get(path) ?? 0) + 1;
        hits.set(path, n);
        const route = routes[path];
        if (route) route(req, res, n);
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const stage = (over: Partial<StageConfig> = {}): StageConfig => ({
    baseURL: base,
    apiKey: 'sk-test',
    model: 'm',
    timeoutMs: 5_000,
    maxRetries: 0,
    ...over,
  });
  const never = new AbortController().signal;

  for (const [name, transport] of [
    ['undici request', undiciTransport()],
    ['fetch', fetchTransport(globalThis.fetch)],
  ] as [string, UpstreamTransport][]) {
    describe(`over ${name}`, () => {
      it('POSTs the body with the key and content type to baseURL + path; a 2xx body is a Node stream', async () => {
        const client = new UpstreamClient(stage(), transport);
        const response = await client.post('/ok', '{"model":"m"}', JSON_TYPE, never);
        assert.equal(response.status, 200);
        assert.equal(await readBody(response.body, 1000), '{"ok":true}');
        const request = seen.at(-1) as Seen;
        assert.equal(request.url, '/v1/ok');
        assert.equal(request.headers.authorization, 'Bearer sk-test');
        assert.equal(request.headers['content-type'], JSON_TYPE);
        assert.equal(request.body, '{"model":"m"}');
        const keyless = new UpstreamClient(stage({ apiKey: undefined }), transport);
        await readBody((await keyless.post('/ok', '{}', JSON_TYPE, never)).body, 1000);
        assert.equal((seen.at(-1) as Seen).headers.authorization, 'Bearer unused');
      });

      it('maps error statuses to the SDK’s error types, with the provider’s message; 4xx is not retried', async () => {
        const client = new UpstreamClient(stage({ maxRetries: 2 }), transport);
        const before = hits.get('/missing') ?? 0;
        await assert.rejects(
          client.post('/missing', '{}', JSON_TYPE, never),
          (error: Error) =>
            error instanceof NotFoundError &&
            error.status === 404 &&
            /no model/.test(error.message),
        );
        assert.equal(hits.get('/missing'), before + 1);
        await assert.rejects(
          new UpstreamClient(stage(), transport).post('/limited', '{}', JSON_TYPE, never),
          RateLimitError,
        );
      });

      it('retries 5xx and 429 as the SDK does (Retry-After-Ms, Retry-After), and obeys x-should-retry', async () => {
        hits.set('/flaky', 0);
        const client = new UpstreamClient(stage({ maxRetries: 1 }), transport);
        for (let i = 0; i < 3; i++)
          assert.equal(
            await readBody((await client.post('/flaky', '{}', JSON_TYPE, never)).body, 100),
            'second',
          );
        assert.equal(hits.get('/flaky'), 6, 'each call failed once and was retried');
        hits.set('/limited', 0);
        await assert.rejects(
          new UpstreamClient(stage({ maxRetries: 2 }), transport).post(
            '/limited',
            '{}',
            JSON_TYPE,
            never,
          ),
          RateLimitError,
        );
        assert.equal(hits.get('/limited'), 3);
        hits.set('/no-retry', 0);
        await assert.rejects(client.post('/no-retry', '{}', JSON_TYPE, never), InternalServerError);
        assert.equal(hits.get('/no-retry'), 1);
      });

      it('reads at most 64 KiB of an error body', async () => {
        const client = new UpstreamClient(stage(), transport);
        await assert.rejects(
          client.post('/huge-error', '{}', JSON_TYPE, never),
          (error: Error) => error instanceof InternalServerError && error.message.length < 70_000,
        );
      });

      it('no headers within timeoutMs → APIConnectionTimeoutError, and the connection is closed', async () => {
        const client = new UpstreamClient(stage({ timeoutMs: 300 }), transport);
        const started = performance.now();
        await assert.rejects(
          client.post('/hang', '{}', JSON_TYPE, never),
          APIConnectionTimeoutError,
        );
        const took = performance.now() - started;
        assert.ok(took >= 250 && took < 2_000, `timed out after ${took.toFixed(0)} ms`);
        await hangClosed;
      });

      it('an abort ends a waiting request within milliseconds (APIUserAbortError), the provider sees the close', async () => {
        const client = new UpstreamClient(stage(), transport);
        const controller = new AbortController();
        const pending = client.post('/hang', '{}', JSON_TYPE, controller.signal);
        await new Promise((resolve) => setTimeout(resolve, 50));
        const aborted = performance.now();
        controller.abort(new Error('interrupted'));
        await assert.rejects(pending, APIUserAbortError);
        assert.ok(performance.now() - aborted < 50, 'rejected at once');
        const count = seen.length;
        await assert.rejects(
          client.post('/ok', '{}', JSON_TYPE, AbortSignal.abort()),
          APIUserAbortError,
        );
        assert.equal(seen.length, count, 'an aborted signal never sends');
        await hangClosed;
      });

      it('an abort during the wait before a retry ends it at once', async () => {
        const client = new UpstreamClient(stage({ maxRetries: 3 }), transport);
        const controller = new AbortController();
        routes['/slow-retry'] = (_req, res) => res.writeHead(503, { 'retry-after': '30' }).end();
        const pending = client.post('/slow-retry', '{}', JSON_TYPE, controller.signal);
        await new Promise((resolve) => setTimeout(resolve, 100));
        const aborted = performance.now();
        controller.abort();
        await assert.rejects(pending, APIUserAbortError);
        assert.ok(performance.now() - aborted < 50);
      });

      it('a refused connection → APIConnectionError', async () => {
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const port = (closed.address() as AddressInfo).port;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        const client = new UpstreamClient(
          stage({ baseURL: `http://127.0.0.1:${port}` }),
          transport,
        );
        await assert.rejects(client.post('/ok', '{}', JSON_TYPE, never), (error: Error) => {
          return (
            error instanceof APIConnectionError && !(error instanceof APIConnectionTimeoutError)
          );
        });
      });
    });
  }
});
