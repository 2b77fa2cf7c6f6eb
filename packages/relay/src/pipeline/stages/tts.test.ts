import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APIUserAbortError, InternalServerError } from 'openai';
import { UpstreamClient, undiciTransport } from '../../providers/upstream.js';
import { SpeechPipeline } from './tts.js';

/** Segment `text`'s audio: `n` bytes where byte i is (i + seed) & 0xff, sent in odd-sized pieces. */
const audioOf = (text: string) => {
  const [n, seed] = text.split(':').map(Number) as [number, number];
  return Buffer.from(Array.from({ length: n }, (_, i) => (i + seed) & 0xff));
};

describe('SpeechPipeline (TTS bodies as Node streams)', () => {
  let server: Server;
  let client: UpstreamClient;
  const inputs: unknown[] = [];
  let socketsClosed = 0;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.socket.once('close', () => socketsClosed++);
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { input: string };
        inputs.push(body);
        if (body.input === 'fail') return void res.writeHead(500).end('{"error":{"message":"x"}}');
        if (body.input === 'endless') {
          res.writeHead(200);
          const timer = setInterval(() => res.write(Buffer.alloc(333)), 5);
          req.socket.once('close', () => clearInterval(timer));
          return;
        }
        const audio = audioOf(body.input);
        res.writeHead(200, { 'content-type': 'audio/pcm' });
        let at = 0;
        const next = () => {
          const end = Math.min(audio.byteLength, at + 101);
          res.write(audio.subarray(at, end));
          at = end;
          if (at < audio.byteLength) setTimeout(next, 1);
          else res.end();
        };
        // later segments answer sooner: order must come from the pipeline, not the network
        setTimeout(next, body.input.startsWith('1000') ? 60 : 5);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new UpstreamClient(
      {
        baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        model: 'tts',
        timeoutMs: 5000,
        maxRetries: 0,
      },
      undiciTransport(),
    );
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('forwards every segment’s audio in order, in whole samples, byte for byte', async () => {
    const texts = ['1000:1', '777:2', '2049:3', '64:4'];
    const speech = new SpeechPipeline(
      client,
      { model: 'tts', voice: 'v' },
      new AbortController().signal,
    );
    const got = texts.map(() => [] as Buffer[]);
    const order: number[] = [];
    const running = speech.run(
      (segment) => order.push(segment.index),
      (pcm, segment) => {
        assert.equal(pcm.byteLength % 2, 0, 'whole samples');
        got[segment.index]?.push(Buffer.from(pcm));
      },
    );
    for (const text of texts) speech.enqueue(text);
    speech.end();
    await running;
    assert.deepEqual(order, [0, 1, 2, 3]);
    texts.forEach((text, i) => {
      const expected = audioOf(text);
      const whole = expected.subarray(0, expected.byteLength - (expected.byteLength % 2));
      assert.deepEqual(Buffer.concat(got[i] ?? []), whole, `segment ${i}`);
      assert.equal(speech.segments[i]?.complete, true);
    });
    assert.deepEqual(inputs.at(-1), {
      model: 'tts',
      voice: 'v',
      input: '64:4',
      response_format: 'pcm',
    });
  });

  it('backpressure: no audio is forwarded while the budget has no room', async () => {
    let release: (() => void) | undefined;
    let frames = 0;
    const speech = new SpeechPipeline(
      client,
      { model: 'tts', voice: 'v' },
      new AbortController().signal,
      {
        charge: () => true,
        room: () =>
          frames === 1 ? new Promise<void>((resolve) => (release = resolve)) : undefined,
      },
    );
    const running = speech.run(
      () => undefined,
      () => frames++,
    );
    speech.enqueue('3000:0');
    speech.end();
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(frames, 1);
    release?.();
    await running;
    assert.ok(frames > 1);
  });

  it('a failed request fails the run with the SDK’s error type; an abort ends a streaming body within milliseconds', async () => {
    const failing = new SpeechPipeline(
      client,
      { model: 'tts', voice: 'v' },
      new AbortController().signal,
    );
    const failed = failing.run(
      () => undefined,
      () => undefined,
    );
    failing.enqueue('fail');
    failing.end();
    await assert.rejects(failed, InternalServerError);

    const controller = new AbortController();
    const speech = new SpeechPipeline(client, { model: 'tts', voice: 'v' }, controller.signal);
    let bytes = 0;
    const running = speech.run(
      () => undefined,
      (pcm) => (bytes += pcm.byteLength),
    );
    speech.enqueue('endless');
    while (bytes < 2000) await new Promise((resolve) => setTimeout(resolve, 5));
    const closedBefore = socketsClosed;
    const aborted = performance.now();
    controller.abort(new Error('interrupted'));
    await assert.rejects(running, APIUserAbortError);
    assert.ok(performance.now() - aborted < 50);
    const deadline = Date.now() + 1000;
    while (socketsClosed === closedBefore && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(socketsClosed > closedBefore, 'the provider saw the connection close');
  });
});
