import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { synthesizeTone } from '@voice-bot/fake-provider';
import type { Page } from '../support/browser.js';
import {
  dropNetwork,
  eventsOf,
  createPageClient,
  sdkPageRelay,
  waitForEvent,
} from '../support/page-client.js';
import { FIXTURES, lastUser, readWav } from '../support/relay.js';
import { sentBy, spyOnSockets } from '../support/stt-page.js';

const REPLY =
  'We open at ten on Saturday. We close at two in the afternoon. Is there anything else I can help with?';

/** The client events the tests look at. */
const EVENTS = [
  'state',
  'ready',
  'transcript',
  'text-delta',
  'message',
  'metrics',
  'error',
  'level',
];

describe('SDK client in real Chromium against the real relay', () => {
  const rig = sdkPageRelay({
    transcribe: () => 'What are your opening hours on Saturday?',
    chat: (request) => ({
      content: lastUser(request).startsWith('echo:')
        ? `You said ${lastUser(request).slice(5)}.`
        : REPLY,
    }),
    speech: (request) => ({ pcm: synthesizeTone(request.input) }),
  });
  /** A client with the energy detector (no model download), recording EVENTS. */
  const makeClient = (
    page: Page,
    clientKey: string,
    extra: Record<string, unknown> = {},
    hooks: { droppable?: boolean } = {},
  ): Promise<void> =>
    createPageClient(
      page,
      rig.h.url,
      clientKey,
      { vad: { model: 'energy' }, ...extra },
      EVENTS,
      hooks,
    );

  test('a spoken turn from the fake mic: 16 kHz speech reaches the relay, the reply plays, stop() releases everything', async () => {
    const page = await rig.open(join(FIXTURES, '48k/hours.wav'), spyOnSockets);
    const mark = rig.h.upstream.requests.length;
    // One utterance, one commit (speculative turns: test/browser/speculation.test.ts).
    await makeClient(page, rig.key, { speculation: false });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    const message = (await waitForEvent(page, 'message')) as { text: string; interrupted: boolean };
    assert.equal(message.text, REPLY);
    assert.equal(message.interrupted, false);

    const stt = rig.h.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription');
    assert.equal(stt.length, 1, 'exactly one utterance was sent');
    const wav = (
      stt[0]?.body as {
        wav: { sampleRate: number; channels: number; durationMs: number; dataBytes: number };
      }
    ).wav;
    assert.equal(wav.sampleRate, 16_000);
    assert.equal(wav.channels, 1);
    // The utterance leaves in 100 ms messages (uplinkFrameMs), the partial last one right before
    // `commit`, and every byte sent is what the STT provider got.
    const sequence = (await sentBy(page)).sequence;
    const commitAt = sequence.findIndex((m) => typeof m === 'string' && m.includes('"commit"'));
    const audio = sequence.slice(0, commitAt).filter((m): m is number => typeof m === 'number');
    assert.ok(commitAt > 0 && audio.length > 10, `audio before commit: ${audio.length} messages`);
    assert.deepEqual(
      audio.slice(0, -1).filter((bytes) => bytes !== 3200),
      [],
      'every message but the last holds 100 ms',
    );
    assert.ok((audio.at(-1) ?? 0) > 0 && (audio.at(-1) ?? 0) <= 3200);
    assert.equal(
      typeof sequence[commitAt - 1],
      'number',
      'the last audio goes out just before commit',
    );
    assert.equal(
      audio.reduce((sum, bytes) => sum + bytes, 0),
      wav.dataBytes,
      'the STT provider got every byte sent',
    );
    const fixture = await readWav(join(FIXTURES, '16k/hours.wav'));
    const speechMs = fixture.pcm.byteLength / 32 - 600 - 2000;
    assert.ok(
      wav.durationMs > speechMs - 200 && wav.durationMs < speechMs + 1500,
      `utterance ${wav.durationMs} ms for ${speechMs} ms of speech`,
    );

    const transcript = (await waitForEvent(page, 'transcript')) as { text: string };
    assert.equal(transcript.text, 'What are your opening hours on Saturday?');
    await waitForEvent(page, 'level', 'p.output > 0.01');
    const metrics = (await waitForEvent(page, 'metrics')) as {
      end_of_speech_to_first_audio_ms?: number;
      first_audio_ms?: number;
    };
    assert.equal(typeof metrics.first_audio_ms, 'number');
    assert.ok(
      (metrics.end_of_speech_to_first_audio_ms ?? -1) > 0,
      'the client measured end of speech → first audio',
    );
    const states = (await eventsOf(page, 'state')) as string[];
    for (const state of ['listening', 'user-speaking', 'thinking', 'speaking'])
      assert.ok(states.includes(state), `state ${state} in ${states.join(',')}`);
    assert.equal(states.at(-1), 'listening');

    const released = await page.evaluate(async () => {
      const w = window as unknown as {
        client: { stop(): Promise<void> };
        __streams: MediaStream[];
        __contexts: AudioContext[];
      };
      await w.client.stop();
      return {
        tracks: w.__streams.flatMap((s) => s.getTracks().map((t) => t.readyState)),
        contexts: w.__contexts.map((c) => c.state),
      };
    });
    assert.ok(released.tracks.length > 0);
    assert.ok(
      released.tracks.every((s) => s === 'ended'),
      `tracks ${released.tracks.join(',')}`,
    );
    assert.ok(
      released.contexts.length > 0 && released.contexts.every((s) => s === 'closed'),
      `contexts ${released.contexts.join(',')}`,
    );
  });

  test('silence from the mic sends nothing', async () => {
    const page = await rig.open(join(FIXTURES, '48k/silence.wav'));
    const mark = rig.h.upstream.requests.length;
    await makeClient(page, rig.key, { persistence: false });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(
      rig.h.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription').length,
      0,
    );
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('interrupt() silences playback and the relay keeps only what was heard', async () => {
    const page = await rig.open();
    await makeClient(page, rig.key, { input: 'text', persistence: false });
    await page.evaluate(async () => {
      const client = (
        window as unknown as {
          client: { start(): Promise<void>; sendText(t: string): Promise<void> };
        }
      ).client;
      await client.start();
      await client.sendText('hours please');
    });
    await waitForEvent(page, 'level', 'p.output > 0.01');
    await new Promise((r) => setTimeout(r, 700));
    await page.evaluate(() =>
      (window as unknown as { client: { interrupt(): Promise<void> } }).client.interrupt(),
    );
    const message = (await waitForEvent(page, 'message')) as { interrupted: boolean };
    assert.equal(message.interrupted, true);
    const state = await page.evaluate(
      () => (window as unknown as { client: { state: string } }).client.state,
    );
    assert.equal(state, 'listening');
    // the relay's history now holds a truncated reply: the next LLM call shows it
    const mark = rig.h.upstream.requests.length;
    await page.evaluate(() =>
      (window as unknown as { client: { sendText(t: string): Promise<void> } }).client.sendText(
        'echo:ok',
      ),
    );
    await waitForEvent(page, 'message', "p.text === 'You said ok.'");
    const chat = rig.h.upstream.requests.slice(mark).find((r) => r.kind === 'chat')?.body as {
      messages: { role: string; content: string }[];
    };
    const assistant = chat.messages.filter((m) => m.role === 'assistant').at(-1)?.content ?? '';
    assert.ok(
      assistant.length > 0 && assistant.length < REPLY.length,
      `stored reply ${JSON.stringify(assistant)}`,
    );
    assert.ok(REPLY.startsWith(assistant.replace(/…$/, '').split(' ').slice(0, 3).join(' ')));
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('a dropped socket reconnects and resumes the same conversation', async () => {
    const page = await rig.open();
    await makeClient(
      page,
      rig.key,
      { input: 'text', output: 'text', persistence: false, reconnect: { baseDelayMs: 50 } },
      { droppable: true },
    );
    const first = (await page.evaluate(async () => {
      const w = window as unknown as { client: { connect(): Promise<void>; conversation: string } };
      await w.client.connect();
      return w.client.conversation;
    })) as string;
    await page.evaluate(() =>
      (window as unknown as { client: { sendText(t: string): Promise<void> } }).client.sendText(
        'echo:before the drop',
      ),
    );
    await waitForEvent(page, 'message');
    await dropNetwork(page);
    const resumed = (await waitForEvent(page, 'ready', 'p.resumed === true')) as {
      conversationId: string;
      history: { text: string }[];
    };
    assert.equal(resumed.conversationId, first);
    assert.deepEqual(
      resumed.history.map((m) => m.text),
      ['echo:before the drop', 'You said before the drop.'],
    );
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('the conversation survives a page reload (IndexedDB)', async () => {
    const page = await rig.open();
    await makeClient(page, rig.key, { input: 'text', output: 'text' });
    await page.evaluate(() =>
      (window as unknown as { client: { sendText(t: string): Promise<void> } }).client.sendText(
        'echo:remember me',
      ),
    );
    await waitForEvent(page, 'message');
    const id = await page.evaluate(
      () => (window as unknown as { client: { conversation: string } }).client.conversation,
    );
    await page.reload();
    await makeClient(page, rig.key, { input: 'text', output: 'text' });
    await page.evaluate(() =>
      (window as unknown as { client: { connect(): Promise<void> } }).client.connect(),
    );
    const ready = (await waitForEvent(page, 'ready')) as {
      conversationId: string;
      resumed: boolean;
      history: { text: string }[];
    };
    assert.equal(ready.conversationId, id);
    assert.equal(ready.resumed, true);
    assert.deepEqual(
      ready.history.map((m) => m.text),
      ['echo:remember me', 'You said remember me.'],
    );
    await page.evaluate(async () => {
      const client = (
        window as unknown as { client: { clearHistory(): Promise<void>; stop(): Promise<void> } }
      ).client;
      await client.clearHistory();
      await client.stop();
    });
  });

  test('a refused key is a typed, fatal error', async () => {
    const page = await rig.open();
    const other = (await rig.h.keys.create({ origins: ['https://elsewhere.test'] })).secret;
    await makeClient(page, other, { input: 'text', output: 'text', persistence: false });
    const code = await page.evaluate(async () => {
      try {
        await (window as unknown as { client: { connect(): Promise<void> } }).client.connect();
        return 'connected';
      } catch (error) {
        return (error as { code: string }).code;
      }
    });
    assert.equal(code, 'origin_not_allowed');
    assert.equal(
      await page.evaluate(() => (window as unknown as { client: { state: string } }).client.state),
      'error',
    );
  });
});
