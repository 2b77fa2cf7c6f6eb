import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { synthesizeTone, type FakeUpstreamOptions } from '@voice-bot/fake-provider';
import {
  FIXTURES,
  lastUser,
  openStartedTalk,
  readWav,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const REPLY =
  'We are open from nine to five on weekdays. On Saturday we open at 10.30 a.m. and close at two. Anything else?';
const TRANSCRIPT = 'What are your opening hours on Saturday?';

/** The scripted provider: replies depend on what the visitor said, so tests can steer failures. */
function script(): FakeUpstreamOptions {
  return {
    transcribe: () => TRANSCRIPT,
    chat: (request) => {
      const said = lastUser(request);
      if (said === 'llm 500') return { fail: 'http', status: 500 };
      if (said === 'llm cut') return { fail: 'cut', afterChunks: 3 };
      if (said === 'tts 500')
        return { content: 'This sentence will never be spoken aloud. Nor will this one.' };
      if (said.startsWith('echo:')) return { content: `You said ${said.slice(5)}.` };
      return { content: REPLY };
    },
    speech: (request) =>
      request.input.includes('never be spoken')
        ? { fail: 'http', status: 500 }
        : { pcm: synthesizeTone(request.input) },
  };
}

describe('voice turns through the real openai SDK and a fake upstream', () => {
  let h: RelayHarness;
  let hours: Uint8Array;
  before(async () => {
    h = await startRelay({ upstream: script() });
    const wav = await readWav(join(FIXTURES, '16k/hours.wav'));
    assert.equal(wav.sampleRate, 16_000);
    hours = wav.pcm;
  });
  after(() => h.close());

  test('a full audio turn: WAV upload, transcript, ordered deltas, every sentence spoken in order, metrics', async () => {
    const talk = await openStartedTalk(h);
    await talk.next('status', (m) => m.state === 'listening');
    const mark = h.upstream.requests.length;
    await talk.sendPcm(hours, 40);
    talk.send({ type: 'commit' });
    const done = await talk.next('done');

    const stt = h.upstream.requests.slice(mark).find((r) => r.kind === 'transcription');
    assert.ok(stt, 'a transcription request was made');
    const wav = (
      stt.body as {
        wav: { sampleRate: number; channels: number; bitsPerSample: number; durationMs: number };
      }
    ).wav;
    assert.equal(wav.sampleRate, 16_000);
    assert.equal(wav.channels, 1);
    assert.equal(wav.bitsPerSample, 16);
    assert.ok(
      Math.abs(wav.durationMs - hours.byteLength / 32) < 1,
      `uploaded ${wav.durationMs} ms, sent ${hours.byteLength / 32} ms`,
    );

    const transcript = await talk.next('transcript');
    assert.deepEqual(
      { text: transcript.text, final: transcript.final },
      { text: TRANSCRIPT, final: true },
    );
    const turn = transcript.turn_id;
    const deltas = talk.of('text_delta').filter((d) => d.turn_id === turn);
    // This fake streams the whole reply at once: the first piece, then the rest joined (textDeltaIntervalMs).
    assert.equal(
      deltas[0]?.delta,
      REPLY.match(/\S+/)?.[0],
      'the first piece is sent as soon as it streams in',
    );
    assert.ok(deltas.length >= 2);
    assert.equal(deltas.map((d) => d.delta).join(''), REPLY);

    const segments = talk.of('audio_segment').filter((s) => s.turn_id === turn);
    assert.deepEqual(
      segments.map((s) => s.text),
      [
        'We are open from nine to five on weekdays.',
        'On Saturday we open at 10.30 a.m. and close at two.',
        'Anything else?',
      ],
    );
    const audio = talk.segmentAudio(turn);
    for (const segment of segments) {
      const expected = Buffer.from(synthesizeTone(segment.text));
      const got = audio.get(segment.index);
      assert.ok(got, `audio for segment ${segment.index}`);
      assert.equal(got.byteLength, expected.byteLength, `segment ${segment.index} length`);
      assert.ok(got.equals(expected), `segment ${segment.index} bytes arrive intact and in order`);
    }
    for (const frame of talk.audio)
      assert.equal(frame.bytes.byteLength % 2, 0, 'every frame holds whole samples');

    assert.equal(done.turn_id, turn);
    assert.equal(done.interrupted, false);
    assert.equal(done.text, REPLY);
    for (const metric of [
      'stt_ms',
      'llm_ttft_ms',
      'first_sentence_ms',
      'tts_ttfb_ms',
      'first_audio_ms',
      'total_ms',
    ] as const) {
      assert.equal(typeof done.metrics[metric], 'number', metric);
      assert.ok((done.metrics[metric] ?? -1) >= 0, metric);
    }
    assert.ok((done.metrics.first_audio_ms ?? 0) <= done.metrics.total_ms);
    assert.equal(done.metrics.audio_in_ms, Math.round(hours.byteLength / 32));

    const states = talk.of('status').map((s) => s.state);
    assert.deepEqual(states.slice(-3), ['thinking', 'speaking', 'listening']);
    talk.close();
  });

  test('a text turn skips STT; text output skips TTS', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    const mark = h.upstream.requests.length;
    talk.send({ type: 'text', text: 'echo:hello there' });
    const done = await talk.next('done');
    assert.equal(done.text, 'You said hello there.');
    const kinds = h.upstream.requests.slice(mark).map((r) => r.kind);
    assert.deepEqual(kinds, ['chat']);
    assert.equal(talk.audio.length, 0);
    assert.equal(talk.of('audio_segment').length, 0);
    const chat = h.upstream.requests.slice(mark)[0]?.body as {
      messages: { role: string; content: string }[];
      stream: boolean;
    };
    assert.equal(chat.stream, true);
    assert.equal(chat.messages[0]?.role, 'system');
    assert.deepEqual(chat.messages.at(-1), { role: 'user', content: 'echo:hello there' });
    talk.close();
  });

  test('history carries across turns and a reconnect resumes the conversation', async () => {
    const first = await openStartedTalk(h, { input: 'text', output: 'text' });
    const ready = first.of('ready')[0];
    assert.ok(ready && !ready.resumed);
    first.send({ type: 'text', text: 'echo:one' });
    await first.next('done');
    first.close();
    await first.closed;

    const second = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      conversation_id: ready.conversation_id,
    });
    const resumed = second.of('ready')[0];
    assert.equal(resumed?.conversation_id, ready.conversation_id);
    assert.equal(resumed?.resumed, true);
    assert.deepEqual(resumed?.history, [
      { role: 'user', text: 'echo:one' },
      { role: 'assistant', text: 'You said one.' },
    ]);
    const mark = h.upstream.requests.length;
    second.send({ type: 'text', text: 'echo:two' });
    await second.next('done');
    const chat = h.upstream.requests.slice(mark).find((r) => r.kind === 'chat')?.body as {
      messages: { role: string; content: string }[];
    };
    assert.deepEqual(
      chat.messages.slice(1).map((m) => m.content),
      ['echo:one', 'You said one.', 'echo:two'],
    );
    second.close();
  });

  test('an unknown conversation id starts a fresh conversation', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      conversation_id: 'conv_does_not_exist',
    });
    const ready = talk.of('ready')[0];
    assert.notEqual(ready?.conversation_id, 'conv_does_not_exist');
    assert.equal(ready?.resumed, false);
    talk.close();
  });

  describe('upstream failures end the turn with an error; the next turn works', () => {
    test('STT 500', async () => {
      const h2 = await startRelay({
        upstream: { ...script(), transcribe: () => ({ fail: 'http', status: 500 }) },
      });
      try {
        const talk = await openStartedTalk(h2);
        await talk.sendPcm(hours.subarray(0, 32_000));
        talk.send({ type: 'commit' });
        const error = await talk.next('error');
        assert.equal(error.code, 'upstream_stt');
        assert.equal(error.fatal, false);
        assert.equal(typeof error.turn_id, 'number');
        assert.ok(!error.message.includes('sk-'), 'no provider detail leaks');
        talk.send({ type: 'text', text: 'echo:still here' });
        assert.equal((await talk.next('done')).text, 'You said still here.');
        talk.close();
      } finally {
        await h2.close();
      }
    });

    for (const [said, code] of [
      ['llm 500', 'upstream_llm'],
      ['llm cut', 'upstream_llm'],
      ['tts 500', 'upstream_tts'],
    ] as const) {
      test(said, async () => {
        const talk = await openStartedTalk(h);
        talk.send({ type: 'text', text: said });
        const error = await talk.next('error');
        assert.equal(error.code, code);
        assert.equal(error.fatal, false);
        talk.send({ type: 'text', text: 'echo:next' });
        const done = await talk.next('done');
        assert.equal(done.text, 'You said next.');
        assert.equal(talk.of('done').length, 1, 'the failed turn ended with an error, not a done');
        talk.close();
      });
    }
  });

  test('a greeting is spoken when a new conversation starts, not on resume', async () => {
    const h2 = await startRelay({
      upstream: script(),
      relay: {
        bots: [
          {
            id: 'front-desk',
            name: 'Front desk',
            systemPrompt: 'Be brief.',
            greeting: 'Hello! How can I help you today?',
          },
        ],
      },
    });
    try {
      const talk = await openStartedTalk(h2);
      const done = await talk.next('done');
      assert.equal(done.text, 'Hello! How can I help you today?');
      assert.ok(talk.audioBytes(done.turn_id) > 0, 'the greeting is spoken');
      assert.equal(
        h2.upstream.requests.filter((r) => r.kind === 'chat').length,
        0,
        'a greeting costs no LLM call',
      );
      const id = talk.of('ready')[0]?.conversation_id;
      talk.close();
      const again = await openStartedTalk(h2, { conversation_id: id });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(again.of('done').length, 0);
      again.close();
    } finally {
      await h2.close();
    }
  });

  test('new input while the bot answers interrupts it; history keeps what was sent', async () => {
    const slow = await startRelay({ upstream: { ...script(), latency: { tokensPerSecond: 20 } } });
    try {
      const talk = await openStartedTalk(slow, { input: 'text', output: 'text' });
      talk.send({ type: 'text', text: 'tell me everything' });
      await talk.next('text_delta');
      talk.send({ type: 'text', text: 'echo:actually, never mind' });
      const first = await talk.next('done');
      assert.equal(first.interrupted, true);
      assert.ok(first.text.length < REPLY.length);
      const second = await talk.next('done', (d) => d.turn_id !== first.turn_id);
      assert.equal(second.text, 'You said actually, never mind.');
      const chat = slow.upstream.requests.filter((r) => r.kind === 'chat');
      assert.equal(chat[0]?.aborted, true, 'the first LLM stream was aborted upstream');
      const messages = (
        chat[1]?.body as { messages: { role: string; content: string }[] }
      ).messages.slice(1);
      assert.deepEqual(
        messages.map((m) => m.role),
        ['user', 'assistant', 'user'],
      );
      assert.equal(messages[1]?.content, first.text);
      talk.close();
    } finally {
      await slow.close();
    }
  });

  test('streamed reply text: the first piece at once, then at most one text_delta per 50 ms; 0 sends every piece', async () => {
    // 25 pieces at 100 per second: 240 ms of streaming after the first.
    const pieces = REPLY.match(/\s*\S+/g) ?? [];
    const upstream = { ...script(), latency: { llmTtftMs: 100, tokensPerSecond: 100 } };
    const coalesced = await startRelay({ upstream });
    const everyPiece = await startRelay({ upstream, relay: { textDeltaIntervalMs: 0 } });
    try {
      const deltasOf = async (harness: RelayHarness) => {
        const talk = await openStartedTalk(harness, { input: 'text', output: 'text' });
        talk.send({ type: 'text', text: 'hours please' });
        const done = await talk.next('done');
        talk.close();
        return {
          deltas: talk
            .of('text_delta')
            .filter((d) => d.turn_id === done.turn_id)
            .map((d) => d.delta),
          done,
        };
      };
      const every = await deltasOf(everyPiece);
      assert.deepEqual(every.deltas, pieces, 'with 0, one text_delta per streamed piece');

      const { deltas, done } = await deltasOf(coalesced);
      assert.equal(deltas.join(''), REPLY);
      assert.equal(deltas[0], pieces[0], 'the first piece is not held back');
      // 240 ms of streaming in 50 ms windows, plus the first piece and a late timer's slack.
      // (A stalled event loop can turn the stream into one burst: then two.)
      assert.ok(
        deltas.length >= 2 && deltas.length <= 8,
        `${deltas.length} deltas for ${pieces.length} pieces: ${JSON.stringify(deltas)}`,
      );
      assert.equal(done.text, REPLY);
    } finally {
      await coalesced.close();
      await everyPiece.close();
    }
  });

  test('a session keeps none of its utterances’ audio once they are transcribed', async () => {
    // This process runs the relay: its ArrayBuffer total shows what the sessions hold.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // V8 frees ArrayBuffer memory after a GC, on a background thread: give it a moment.
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const sessions = 10;
    const utterance = new Uint8Array(20 * 32_000); // 20 s of 16 kHz PCM16 per session, 6.4 MB in all
    const talks = await Promise.all(
      Array.from({ length: sessions }, () => openStartedTalk(h, { output: 'text' })),
    );
    await settle();
    const before = process.memoryUsage().arrayBuffers;
    await Promise.all(
      talks.map(async (talk) => {
        await talk.sendPcm(utterance, 200);
        talk.send({ type: 'commit' });
        await talk.next('done');
      }),
    );
    await settle();
    const held = process.memoryUsage().arrayBuffers - before;
    for (const talk of talks) talk.close();
    // Open sessions keep their last turns (a late `interrupt` can still trim them), not the audio.
    assert.ok(
      held < (sessions * utterance.byteLength) / 4,
      `${(held / 2 ** 20).toFixed(1)} MB still held after ${sessions} turns of 0.6 MB audio`,
    );
  });

  test('a retryable upstream failure (HTTP 500 with a body) is retried as in production: the turn succeeds, the relay lives on', async () => {
    let chats = 0;
    const scripted = script();
    const flaky = await startRelay({
      maxRetries: 1,
      upstream: {
        ...scripted,
        chat: (request) =>
          ++chats % 2 === 1
            ? { fail: 'http', status: 500 }
            : (scripted.chat as NonNullable<FakeUpstreamOptions['chat']>)(request),
      },
    });
    try {
      const talk = await openStartedTalk(flaky, { input: 'text', output: 'text' });
      for (const words of ['one', 'two']) {
        talk.send({ type: 'text', text: `echo:${words}` });
        const done = await talk.next('done', (d) => d.text === `You said ${words}.`, {
          timeoutMs: 10_000,
        });
        assert.equal(done.interrupted, false);
      }
      assert.equal(chats, 4, 'each chat request failed once and was retried');
      assert.equal(talk.of('error').length, 0);
      talk.close();
    } finally {
      await flaky.close();
    }
  });

  test('textDeltaIntervalMs outside 0–1000 is refused when the relay is made', async () => {
    const { createRelay, ConfigError } = await import('@voice-bot/relay');
    for (const bad of [-1, 1001, Number.NaN, '50' as unknown as number]) {
      assert.throws(
        () => createRelay({ textDeltaIntervalMs: bad }),
        (error: Error) => error instanceof ConfigError && /textDeltaIntervalMs/.test(error.message),
      );
    }
  });

  test('interrupt {turn_id, played_ms} stops the audio and keeps only what was heard', async () => {
    const slow = await startRelay({ upstream: { ...script(), latency: { ttsRealtime: true } } });
    try {
      const talk = await openStartedTalk(slow, { input: 'text' });
      talk.send({ type: 'text', text: 'hours please' });
      const segment = await talk.next('audio_segment');
      const firstSentence = 'We are open from nine to five on weekdays.';
      const sentenceMs = (synthesizeTone(firstSentence).byteLength / 48_000) * 1000;
      const playedMs = Math.round(sentenceMs * 0.6);
      await new Promise((r) => setTimeout(r, playedMs));
      talk.send({ type: 'interrupt', turn_id: segment.turn_id, played_ms: playedMs });
      const done = await talk.next('done');
      assert.equal(done.interrupted, true);
      // The sentence was still streaming, so its length is estimated from the text: allow ±2 words.
      const words = firstSentence.split(' ');
      assert.match(done.text, /…$/);
      const heard = done.text.slice(0, -1).split(' ');
      assert.deepEqual(
        heard,
        words.slice(0, heard.length),
        `heard text ${JSON.stringify(done.text)} is a prefix`,
      );
      assert.ok(
        Math.abs(heard.length - 0.6 * words.length) <= 2,
        `heard ${heard.length} of ${words.length} words`,
      );
      talk.send({ type: 'text', text: 'echo:go on' });
      await talk.next('done', (d) => d.turn_id !== done.turn_id);
      const chat = slow.upstream.requests.filter((r) => r.kind === 'chat').at(-1)?.body as {
        messages: { role: string; content: string }[];
      };
      assert.equal(
        chat.messages.at(-2)?.content,
        done.text,
        'the next LLM call sees only what was heard',
      );
      const bytesAtDone = talk.audioBytes(segment.turn_id);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(talk.audioBytes(segment.turn_id), bytesAtDone, 'no audio after done');
      const speech = slow.upstream.requests.filter((r) => r.kind === 'speech');
      assert.ok(
        speech.some((r) => r.aborted),
        'the TTS request in flight was aborted upstream',
      );
      talk.close();
    } finally {
      await slow.close();
    }
  });
});
