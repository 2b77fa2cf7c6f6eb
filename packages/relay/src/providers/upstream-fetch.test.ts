import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIConnectionError, APIUserAbortError, InternalServerError } from 'openai';
import { Agent } from 'undici';
import { createUpstreamFetch } from './upstream-fetch.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('createUpstreamFetch (undici request behind fetch)', () => {
  const upstreamFetch = createUpstreamFetch();
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  /** Resolves when the server sees the client close a streaming response early. */
  let streamClosed: Promise<void> = Promise.resolve();
  const BIG_BYTES = 32 * 2 ** 20;
  let bigWritten = 0;
  let flakyCalls = 0;
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/json': (_req, res) => {
      res.setHeader('x-request-id', 'req_1');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
    },
    '/empty': (_req, res) => res.writeHead(204).end(),
    '/fail': (_req, res) =>
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end('{"error":{"message":"boom"}}'),
    '/stream': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(Buffer.alloc(100, n++));
        if (n === 50) {
          clearInterval(timer);
          res.end();
        }
      }, 20);
      streamClosed = new Promise((resolve) =>
        req.socket.once('close', () => {
          clearInterval(timer);
          resolve();
        }),
      );
    },
    '/slow': () => undefined, // never answers
    // 32 MB as fast as the client takes it: byte i is (i * 7) & 0xff. `bigWritten` counts what the socket accepted.
    '/big': (req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(BIG_BYTES),
      });
      bigWritten = 0;
      const write = () => {
        while (bigWritten < BIG_BYTES) {
          const chunk = Buffer.allocUnsafe(16 * 1024);
          for (let i = 0; i < chunk.length; i++) chunk[i] = ((bigWritten + i) * 7) & 0xff;
          bigWritten += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      req.socket.once('close', () => res.removeAllListeners('drain'));
      write();
    },
    // Fails every other call with a retryable status and an error body the SDK does not read.
    '/flaky/models': (_req, res) => {
      flakyCalls++;
      if (flakyCalls % 2 === 1)
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'try again', pad: 'x'.repeat(20_000) } }));
      else
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"object":"list","data":[]}');
    },
    '/reset': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(1000, 1));
      setTimeout(() => req.socket.destroy(), 30);
    },
    '/chat/completions': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (content: string) =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
      res.write(chunk('Hel'));
      setTimeout(() => res.end(`${chunk('lo.')}data: [DONE]\n\n`), 30);
    },
  };

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks),
        });
        const route = routes[(req.url ?? '').split('?')[0] as string];
        if (route) route(req, res);
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends method, headers and a string body; returns status, headers (repeated ones too) and the body', async () => {
    const res = await upstreamFetch(`${base}/json?x=1`, {
      method: 'POST',
      headers: new Headers({ authorization: 'Bearer sk-test', 'content-type': 'application/json' }),
      body: '{"model":"m"}',
    });
    assert.equal(res.status, 201);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('x-request-id'), 'req_1');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.deepEqual(await res.json(), { ok: true });
    const request = seen.at(-1) as Seen;
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/json?x=1');
    assert.equal(request.headers.authorization, 'Bearer sk-test');
    assert.equal(request.body.toString(), '{"model":"m"}');
  });

  it('sends binary bodies byte for byte, and serialises FormData with its multipart content type', async () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    await (await upstreamFetch(`${base}/json`, { method: 'POST', body: bytes })).arrayBuffer();
    assert.deepEqual(new Uint8Array((seen.at(-1) as Seen).body), bytes);

    const form = new FormData();
    form.set('model', 'whisper-1');
    form.set('file', new Blob([Uint8Array.of(1, 2, 3)], { type: 'audio/wav' }), 'a.wav');
    await (await upstreamFetch(`${base}/json`, { method: 'POST', body: form })).text();
    const request = seen.at(-1) as Seen;
    assert.match(String(request.headers['content-type']), /^multipart\/form-data; boundary=/);
    const parsed = await new Response(new Uint8Array(request.body), {
      headers: { 'content-type': String(request.headers['content-type']) },
    }).formData();
    assert.equal(parsed.get('model'), 'whisper-1');
    assert.deepEqual(
      new Uint8Array(await (parsed.get('file') as Blob).arrayBuffer()),
      Uint8Array.of(1, 2, 3),
    );
  });

  it('returns error statuses as responses and bodiless statuses with a null body', async () => {
    const failed = await upstreamFetch(`${base}/fail`);
    assert.equal(failed.status, 500);
    assert.equal(failed.ok, false);
    assert.match(await failed.text(), /boom/);
    const empty = await upstreamFetch(`${base}/empty`, { method: 'DELETE' });
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
  });

  it('streams: the first chunk is readable long before the response ends', async () => {
    const started = performance.now();
    const res = await upstreamFetch(`${base}/stream`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    assert.ok(performance.now() - started < 500, 'the 1 s response was not buffered');
    let bytes = first.value?.byteLength ?? 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.byteLength;
    assert.equal(bytes, 5000);
  });

  it('aborting mid-stream fails the reader with an AbortError and closes the connection', async () => {
    const controller = new AbortController();
    const res = await upstreamFetch(`${base}/stream`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await assert.rejects(
      async () => {
        for (;;) if ((await reader.read()).done) break;
      },
      (error: Error) => error.name === 'AbortError',
    );
    await streamClosed;
  });

  it('applies backpressure: an unread body pauses the socket, and every byte arrives intact', async () => {
    const res = await upstreamFetch(`${base}/big`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Kernel socket buffers on both ends plus the stream's high-water mark, far from all 32 MB.
    assert.ok(bigWritten < BIG_BYTES / 2, `the server wrote ${bigWritten} bytes while nobody read`);
    let offset = 0;
    let wrong = 0;
    const check = (chunk: Uint8Array) => {
      for (let i = 0; i < chunk.byteLength; i++) if (chunk[i] !== ((offset + i) * 7) % 256) wrong++;
      offset += chunk.byteLength;
    };
    if (first.value) check(first.value);
    const held: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      held.push(r.value);
      check(r.value);
    }
    assert.equal(offset, BIG_BYTES);
    assert.equal(wrong, 0);
    // Chunks are not copies of a reused buffer: those kept still hold their own bytes.
    offset = first.value?.byteLength ?? 0;
    for (const chunk of held) check(chunk);
    assert.equal(wrong, 0);
  });

  it('cancelling the body closes the connection; a connection reset mid-body fails the reader', async () => {
    const res = await upstreamFetch(`${base}/stream`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel(new Error('not needed'));
    await streamClosed;

    const broken = await upstreamFetch(`${base}/reset`);
    const brokenReader = (broken.body as ReadableStream<Uint8Array>).getReader();
    await assert.rejects(async () => {
      for (;;) if ((await brokenReader.read()).done) break;
    });
  });

  it('a retried request: the SDK cancels the failed response’s unread body, and nothing throws outside the call', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const client = new OpenAI({
        baseURL: `${base}/flaky`,
        apiKey: 'sk-test',
        fetch: upstreamFetch,
        maxRetries: 1,
      });
      for (let i = 0; i < 5; i++) assert.deepEqual((await client.models.list()).data, []);
      assert.equal(flakyCalls, 10, 'each call failed once and was retried');
      // A body read, then cancelled within the same tick.
      const res = await upstreamFetch(`${base}/big`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      void reader.read();
      await reader.cancel();
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    assert.deepEqual(uncaught, []);
  });

  it('aborting before the headers rejects with an AbortError; an aborted signal never sends', async () => {
    const controller = new AbortController();
    const pending = upstreamFetch(`${base}/slow`, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (error: Error) => error.name === 'AbortError');
    const count = seen.length;
    await assert.rejects(
      upstreamFetch(`${base}/json`, { signal: AbortSignal.abort() }),
      (error: Error) => error.name === 'AbortError',
    );
    assert.equal(seen.length, count);
  });

  it('speaks HTTPS (providers are HTTPS): certificate checked against the given CA', async () => {
    // A self-signed certificate for 127.0.0.1 made for this test only (openssl req -x509, 100 years).
    const cert = readFileSync(new URL('./testdata/127.0.0.1-test-only.cert.pem', import.meta.url));
    const key = readFileSync(new URL('./testdata/127.0.0.1-test-only.key.pem', import.meta.url));
    const tls = createTlsServer({ cert, key }, (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"secure":true}'),
    );
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/`;
    try {
      const trusting = createUpstreamFetch(new Agent({ connect: { ca: cert } }));
      assert.deepEqual(await (await trusting(url)).json(), { secure: true });
      await assert.rejects(
        createUpstreamFetch(new Agent())(url),
        /self[- ]signed|certificate/i,
        'an unknown CA is refused',
      );
    } finally {
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    }
  });

  it('works as the openai SDK’s fetch: streamed chat, API errors, user aborts and connection errors map to the SDK’s types', async () => {
    const client = new OpenAI({
      baseURL: base,
      apiKey: 'sk-test',
      fetch: upstreamFetch,
      maxRetries: 0,
    });
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello.');

    const failing = new OpenAI({
      baseURL: `${base}/fail?`,
      apiKey: 'sk-test',
      fetch: upstreamFetch,
      maxRetries: 0,
    });
    await assert.rejects(failing.models.list(), InternalServerError);

    const controller = new AbortController();
    const slow = new OpenAI({
      baseURL: `${base}/slow?`,
      apiKey: 'sk-test',
      fetch: upstreamFetch,
      maxRetries: 0,
    });
    const pending = slow.models.list({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, APIUserAbortError);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = new OpenAI({
      baseURL: `http://127.0.0.1:${port}`,
      apiKey: 'sk-test',
      fetch: upstreamFetch,
      maxRetries: 0,
    });
    await assert.rejects(refused.models.list(), APIConnectionError);
  });
});
