import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import OpenAI, { toFile } from 'openai';
import { Hono } from 'hono';
import { createFakeUpstream, parseWav, synthesizeTone } from './fake-upstream.js';
import type { ChatScript, FakeFailure, FakeResult, SpeechScript } from './fake-upstream.js';

const HOURS_WAV = fileURLToPath(new URL('../../../../../shared/fixtures/audio/16k/hours.wav', import.meta.url));

/** Per-test scripting: each test sets what the next handler call returns. */
let nextChat: (body: Record<string, unknown>) => FakeResult<ChatScript> = () => ({ content: 'default' });
let nextSpeech: () => FakeResult<SpeechScript> = () => ({});

// Transcription uses the default (honest) transcript.
const fake = createFakeUpstream({
  chat: (req) => nextChat(req.body),
  speech: () => nextSpeech(),
});
let server: { url: string; close(): Promise<void> };
let client: OpenAI;

before(async () => {
  server = await fake.listen();
  client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0, timeout: 3000 });
});
after(async () => {
  await server.close();
});

const messages = [{ role: 'user' as const, content: 'What are your opening hours?' }];

describe('chat completions', () => {
  test('streamed text reassembles exactly, with a usage chunk', async () => {
    const content = 'We are open from 9 to 5,  Monday–Friday. 🙂 See you!\n';
    nextChat = () => ({ content, usage: { prompt_tokens: 12, completion_tokens: 9 } });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let contentChunks = 0;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    let role: string | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      role ??= choice.delta.role;
      if (choice.delta.content) {
        text += choice.delta.content;
        contentChunks++;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(text, content);
    assert.equal(role, 'assistant');
    assert.ok(contentChunks >= 8, `expected word-sized chunks, got ${contentChunks}`);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
    const recorded = await fake.waitForRequest('chat', (r) => r.endedAt !== undefined && (r.body as { stream?: boolean }).stream === true);
    assert.deepEqual((recorded.body as { messages: unknown }).messages, messages);
    assert.equal(recorded.aborted, false);
  });

  for (const interleaveToolCalls of [false, true]) {
    test(`two parallel tool calls stream and reassemble (${interleaveToolCalls ? 'interleaved' : 'sequential'})`, async () => {
      const first = JSON.stringify({ city: 'Zürich', day: 'monday' });
      const second = JSON.stringify({ query: 'opening hours', limit: 3, tags: ['a', 'b'] });
      nextChat = () => ({
        toolCalls: [
          { id: 'call_a', name: 'get_hours', arguments: first },
          { name: 'search', arguments: second },
        ],
        chunkSize: 5,
        interleaveToolCalls,
      });
      const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        tools: [
          { type: 'function', function: { name: 'get_hours', parameters: { type: 'object', properties: {} } } },
          { type: 'function', function: { name: 'search', parameters: { type: 'object', properties: {} } } },
        ],
      });
      const calls: { id?: string; name: string; args: string; fragments: number }[] = [];
      const order: number[] = [];
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        for (const delta of choice.delta.tool_calls ?? []) {
          const call = (calls[delta.index] ??= { name: '', args: '', fragments: 0 });
          if (delta.id) call.id = delta.id;
          if (delta.function?.name) call.name += delta.function.name;
          if (delta.function?.arguments) {
            call.args += delta.function.arguments;
            call.fragments++;
            order.push(delta.index);
          }
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(calls.length, 2);
      assert.equal(calls[0]?.id, 'call_a');
      assert.match(calls[1]?.id ?? '', /^call_/);
      assert.equal(calls[0]?.name, 'get_hours');
      assert.equal(calls[1]?.name, 'search');
      assert.deepEqual(JSON.parse(calls[0]?.args ?? ''), JSON.parse(first));
      assert.deepEqual(JSON.parse(calls[1]?.args ?? ''), JSON.parse(second));
      assert.ok((calls[0]?.fragments ?? 0) > 3 && (calls[1]?.fragments ?? 0) > 3);
      const switches = order.filter((index, i) => i > 0 && index !== order[i - 1]).length;
      if (interleaveToolCalls) assert.ok(switches > 2);
      else assert.equal(switches, 1);
    });
  }

  test('non-streamed completion', async () => {
    nextChat = () => ({ content: 'Nine to five.', toolCalls: [{ id: 'call_x', name: 'log', arguments: '{"ok":true}' }] });
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'gpt-4o-mini');
    const choice = completion.choices[0];
    assert.equal(choice?.message.content, 'Nine to five.');
    assert.equal(choice?.finish_reason, 'tool_calls');
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.deepEqual([call.id, call.function.name, call.function.arguments], ['call_x', 'log', '{"ok":true}']);
    assert.ok((completion.usage?.total_tokens ?? 0) > 0);
    assert.match(completion._request_id ?? '', /^req_/);
  });

  test('the default script echoes the user', async () => {
    const plain = createFakeUpstream();
    const res = await plain.app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }] }),
    });
    const json = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.match(json.choices[0]?.message.content ?? '', /You said: hello/);
  });
});

describe('transcriptions', () => {
  test('a real WAV upload reports its duration', async () => {
    const bytes = await readFile(HOURS_WAV);
    const info = parseWav(bytes);
    assert.equal(info.sampleRate, 16000);
    const expected = `I heard ${(info.durationMs / 1000).toFixed(1)} seconds of audio.`;
    assert.ok(info.durationMs > 5000 && info.durationMs < 7000);

    const result = await client.audio.transcriptions.create({
      file: await toFile(bytes, 'hours.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
      language: 'en',
    });
    assert.equal(result.text, expected);

    const recorded = await fake.waitForRequest('transcription', (r) => (r.body as { fileName?: string }).fileName === 'hours.wav');
    assert.deepEqual(recorded.body, {
      model: 'whisper-1',
      language: 'en',
      fileName: 'hours.wav',
      wav: { sampleRate: 16000, channels: 1, bitsPerSample: 16, dataBytes: info.dataBytes, durationMs: info.durationMs },
    });
    assert.equal(info.dataBytes, bytes.byteLength - 44);

    const text = await client.audio.transcriptions.create({
      file: await toFile(bytes, 'hours.wav'),
      model: 'whisper-1',
      response_format: 'text',
    });
    assert.equal(typeof text, 'string');
    assert.equal(text.trim(), expected);
  });

  test('a malformed WAV is a 400 invalid_request_error', async () => {
    const error = await client.audio.transcriptions
      .create({ file: await toFile(new TextEncoder().encode('RIFF....WAVEnope'), 'bad.wav'), model: 'whisper-1' })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /Invalid file format/);
  });
});

describe('speech', () => {
  const input = 'Hello there, this is the speech test.';

  test('pcm through the SDK: even length, non-silent, length matches the tone', async () => {
    nextSpeech = () => ({});
    const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: 'pcm' });
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(bytes.byteLength % 2, 0);
    assert.equal(bytes.byteLength, synthesizeTone(input).byteLength);
    assert.deepEqual(bytes, synthesizeTone(input));
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    assert.ok(samples.some((s) => Math.abs(s) > 1000));
    // ~60 ms per character at 24 kHz.
    assert.ok(Math.abs(samples.length / 24 - input.length * 60) < 5);
  });

  test('network chunks split samples (odd boundaries)', async () => {
    nextSpeech = () => ({});
    const res = await fetch(`${server.url}/audio/speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input, response_format: 'pcm' }),
    });
    assert.equal(res.status, 200);
    assert.ok(res.body);
    const boundaries: number[] = [];
    let total = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      boundaries.push(total);
    }
    assert.equal(total % 2, 0);
    assert.ok(boundaries.length > 2);
    assert.ok(boundaries.some((b) => b % 2 === 1), `no odd boundary in ${boundaries.join(',')}`);
  });

  test('wav is a header plus the same pcm; other formats are 400', async () => {
    nextSpeech = () => ({});
    const wav = new Uint8Array(
      await (await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hi', response_format: 'wav' })).arrayBuffer(),
    );
    const info = parseWav(wav);
    assert.equal(info.sampleRate, 24000);
    assert.deepEqual(wav.subarray(44), synthesizeTone('Hi'));
    const error = await client.audio.speech
      .create({ model: 'tts-1', voice: 'alloy', input: 'Hi', response_format: 'mp3' })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof OpenAI.BadRequestError);
  });
});

describe('failures', () => {
  const fail = (failure: FakeFailure) => () => failure;

  test('http 500 → APIError, 429 → RateLimitError with retry-after', async () => {
    nextChat = fail({ fail: 'http', status: 500, message: 'boom' });
    const e500 = await client.chat.completions.create({ model: 'm', messages }).then(() => undefined, (e: unknown) => e);
    assert.ok(e500 instanceof OpenAI.APIError);
    assert.ok(e500 instanceof OpenAI.InternalServerError);
    assert.equal(e500.status, 500);
    assert.match(e500.message, /boom/);

    nextChat = fail({ fail: 'http', status: 429 });
    const e429 = await client.chat.completions.create({ model: 'm', messages, stream: true }).then(() => undefined, (e: unknown) => e);
    assert.ok(e429 instanceof OpenAI.RateLimitError);
    assert.equal(e429.status, 429);
    assert.equal(e429.headers?.get('retry-after'), '1');
    assert.equal(e429.code, 'rate_limit_exceeded');

    const failing = createFakeUpstream({ transcribe: fail({ fail: 'http', status: 503 }) });
    const failingServer = await failing.listen();
    try {
      const failingClient = new OpenAI({ baseURL: failingServer.url, apiKey: 'test', maxRetries: 0 });
      const e503 = await failingClient.audio.transcriptions
        .create({ file: await toFile(await readFile(HOURS_WAV), 'a.wav'), model: 'whisper-1' })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(e503 instanceof OpenAI.InternalServerError);
      assert.equal(e503.status, 503);
      assert.equal(failing.requests[0]?.failure, 'http');
    } finally {
      await failingServer.close();
    }
  });

  test('cut: the SDK stream iteration throws after some chunks', async () => {
    nextChat = fail({ fail: 'cut', afterChunks: 3 });
    const stream = await client.chat.completions.create({ model: 'm', messages, stream: true });
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
    const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Cut me off please.', response_format: 'pcm' });
    let got = 0;
    await assert.rejects(async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) got += chunk.byteLength;
    });
    assert.equal(got, 7001);
  });

  test('abort while hanging marks the request aborted', async () => {
    nextChat = fail({ fail: 'hang' });
    const controller = new AbortController();
    const pending = client.chat.completions.create({ model: 'hang', messages, stream: true }, { signal: controller.signal });
    await fake.waitForRequest('chat', (r) => (r.body as { model?: string }).model === 'hang');
    controller.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    const recorded = await fake.waitForRequest('chat', (r) => (r.body as { model?: string }).model === 'hang' && r.aborted, 2000);
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
      const stream = await slowClient.chat.completions.create({ model: 'm', messages, stream: true }, { signal: controller.signal });
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

describe('misc', () => {
  test('models list and mounting under another app', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    assert.ok(models.includes('whisper-1'));

    const outer = new Hono();
    outer.route('/_demo', fake.app);
    const res = await outer.request('/_demo/v1/models');
    assert.equal(res.status, 200);
    const missing = await outer.request('/_demo/v1/nope');
    assert.equal(missing.status, 404);
  });

  test('latency: ttfb and real-time pacing of speech', async () => {
    const paced = createFakeUpstream({ latency: { ttsTtfbMs: 40, ttsRealtime: true } });
    const pacedServer = await paced.listen();
    try {
      const started = performance.now();
      const res = await fetch(`${pacedServer.url}/audio/speech`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'Hi', response_format: 'pcm' }),
      });
      let first: number | undefined;
      let bytes = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        first ??= performance.now() - started;
        bytes += chunk.byteLength;
      }
      const elapsed = performance.now() - started;
      // 'Hi' → the 300 ms minimum → 14400 bytes in 3 chunks; the last one leaves ~200 ms after the first.
      assert.equal(bytes, 14400);
      assert.ok((first ?? 0) >= 35, `ttfb ${first}`);
      assert.ok(elapsed >= 40 + 190, `elapsed ${elapsed}`);
    } finally {
      await pacedServer.close();
    }
  });
});
