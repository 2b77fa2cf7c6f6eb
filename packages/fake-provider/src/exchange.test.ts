import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import OpenAI, { toFile } from 'openai';
import { createFakeUpstream } from './index.js';
import { servedFake } from './served.fixture.js';
import type { ChatScript, FakeFailure, FakeResult, SpeechScript } from './index.js';

const HOURS_WAV = fileURLToPath(
  new URL('../../../../shared/fixtures/audio/16k/hours.wav', import.meta.url),
);

/** Per-test scripting: each test sets what the next handler call returns. */
let nextChat: (body: Record<string, unknown>) => FakeResult<ChatScript> = () => ({
  content: 'default',
});
let nextSpeech: () => FakeResult<SpeechScript> = () => ({});

const served = servedFake({
  chat: (req) => nextChat(req.body),
  speech: () => nextSpeech(),
});
const fake = served.fake;

const messages = [{ role: 'user' as const, content: 'What are your opening hours?' }];

describe('failures', () => {
  const fail = (failure: FakeFailure) => () => failure;

  test('http 500 → APIError, 429 → RateLimitError with retry-after', async () => {
    nextChat = fail({ fail: 'http', status: 500, message: 'boom' });
    const e500 = await served
      .client()
      .chat.completions.create({ model: 'm', messages })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(e500 instanceof OpenAI.APIError);
    assert.ok(e500 instanceof OpenAI.InternalServerError);
    assert.equal(e500.status, 500);
    assert.match(e500.message, /boom/);

    nextChat = fail({ fail: 'http', status: 429 });
    const e429 = await served
      .client()
      .chat.completions.create({ model: 'm', messages, stream: true })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(e429 instanceof OpenAI.RateLimitError);
    assert.equal(e429.status, 429);
    assert.equal(e429.headers?.get('retry-after'), '1');
    assert.equal(e429.code, 'rate_limit_exceeded');

    const failing = createFakeUpstream({ transcribe: fail({ fail: 'http', status: 503 }) });
    const failingServer = await failing.listen();
    try {
      const failingClient = new OpenAI({
        baseURL: failingServer.url,
        apiKey: 'test',
        maxRetries: 0,
      });
      const e503 = await failingClient.audio.transcriptions
        .create({ file: await toFile(await readFile(HOURS_WAV), 'a.wav'), model: 'whisper-1' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(e503 instanceof OpenAI.InternalServerError);
      assert.equal(e503.status, 503);
      assert.equal(failing.requests[0]?.failure, 'http');
    } finally {
      await failingServer.close();
    }
  });

  test('cut: the SDK stream iteration throws after some chunks', async () => {
    nextChat = fail({ fail: 'cut', afterChunks: 3 });
    const stream = await served
      .client()
      .chat.completions.create({ model: 'm', messages, stream: true });
    let received = 0;
    await assert.rejects(async () => {
      for await (const _chunk of stream) received++;
    });
    assert.equal(received, 3);
    const recorded = await fake.waitForRequest('chat', (r) => r.failure === 'cut');
    assert.equal(recorded.aborted, false);
  });

  test('cut: speech body errors after an odd number of bytes', async () => {
    nextSpeech = fail({ fail: 'cut', afterBytes: 7001 });
    const response = await served.client().audio.speech.create({
      model: 'tts-1',
      voice: 'alloy',
      input: 'Cut me off please.',
      response_format: 'pcm',
    });
    let got = 0;
    await assert.rejects(async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
        got += chunk.byteLength;
    });
    assert.equal(got, 7001);
  });

  test('abort while hanging marks the request aborted', async () => {
    nextChat = fail({ fail: 'hang' });
    const controller = new AbortController();
    const pending = served
      .client()
      .chat.completions.create(
        { model: 'hang', messages, stream: true },
        { signal: controller.signal },
      );
    await fake.waitForRequest('chat', (r) => (r.body as { model?: string }).model === 'hang');
    controller.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    const recorded = await fake.waitForRequest(
      'chat',
      (r) => (r.body as { model?: string }).model === 'hang' && r.aborted,
      2000,
    );
    assert.equal(recorded.failure, 'hang');
  });

  test('abort mid-stream of a slow stream marks the request aborted and stops it', async () => {
    const slow = createFakeUpstream({
      latency: { llmTtftMs: 20, tokensPerSecond: 50 },
      chat: () => ({ content: 'one two three four five six seven eight nine ten eleven twelve' }),
    });
    const slowServer = await slow.listen();
    try {
      const slowClient = new OpenAI({ baseURL: slowServer.url, apiKey: 'test', maxRetries: 0 });
      const controller = new AbortController();
      const stream = await slowClient.chat.completions.create(
        { model: 'm', messages, stream: true },
        { signal: controller.signal },
      );
      let pieces = 0;
      const started = performance.now();
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) pieces++;
        if (pieces === 2) controller.abort();
      }
      assert.equal(pieces, 2);
      assert.ok(performance.now() - started >= 20);
      const recorded = await slow.waitForRequest('chat', (r) => r.aborted, 2000);
      assert.ok(recorded.endedAt !== undefined);
    } finally {
      await slowServer.close();
    }
  });
});
