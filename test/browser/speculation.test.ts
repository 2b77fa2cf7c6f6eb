/**
 * Speculative turns in real Chromium: the SDK's client on a fake microphone, the real relay, a
 * scripted provider with a fast STT. A pause inside an utterance starts a speculative turn that
 * speech resuming drops (no false cut-in); a complete question ends after a short silence and its
 * speculative turn is confirmed.
 *
 * Run: node --conditions=source --import tsx --test test/browser/speculation.test.ts
 * (after `npx tsc -b packages/sdk && npx rollup -c --silent`: the page loads the SDK's browser build).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone } from '@voice-bot/fake-provider';
import type { Page } from '../support/browser.js';
import {
  createPageClient,
  eventsOf,
  recordedEvents,
  sdkPageRelay,
  waitForEvent,
} from '../support/page-client.js';
import { FIXTURES } from '../support/relay.js';

const REPLY = 'We open at ten on Saturday and close at two.';
const HOURS = 'Hi there. What are your opening hours on Saturday?';
const WEATHER = 'What is the weather like in Paris today?';
const EVENTS = ['state', 'transcript', 'message', 'metrics', 'error', 'level'];

/** What the page's sockets sent and received as JSON, with the page's `performance.now()`. */
interface Wire {
  t: number;
  dir: 'out' | 'in';
  type: string;
  text?: string;
}
type Win = Window & {
  wire: Wire[];
  client: { start(): Promise<void>; stop(): Promise<void>; vad?: object };
};

async function spyOnWire(page: Page): Promise<void> {
  // No named functions or classes in here: tsx would wrap them in a `__name` the page lacks.
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as Win & { note(dir: 'out' | 'in', data: unknown): void };
    w.wire = [];
    w.note = function (dir, data) {
      if (typeof data !== 'string') return;
      const message = JSON.parse(data) as { type: string; text?: string };
      w.wire.push({
        t: performance.now(),
        dir,
        type: message.type,
        ...(message.text !== undefined ? { text: message.text } : {}),
      });
    };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data: string | ArrayBufferLike | Blob | ArrayBufferView) {
      w.note('out', data);
      return send.call(this, data);
    };
    const listen = WebSocket.prototype.addEventListener;
    WebSocket.prototype.addEventListener = function (
      this: WebSocket,
      type: string,
      listener: EventListenerOrEventListenerObject,
      options?: boolean | AddEventListenerOptions,
    ) {
      if (type === 'message')
        listen.call(this, type, (event) => w.note('in', (event as MessageEvent).data));
      listen.call(this, type, listener, options);
    } as typeof listen;
  });
}

const wire = (page: Page): Promise<Wire[]> => page.evaluate(() => (window as unknown as Win).wire);

/** `leadMs` of digital silence, then a 48 kHz fixture (so a detector loading meanwhile judges all of its speech). */
async function withLeadingSilence(dir: string, name: string, leadMs: number): Promise<string> {
  const source = await readFile(join(FIXTURES, `48k/${name}.wav`));
  const dataStart = source.indexOf('data') + 8;
  const pcm = Buffer.concat([
    Buffer.alloc(Math.round((48_000 * leadMs) / 1000) * 2),
    source.subarray(dataStart),
  ]);
  const header = Buffer.from(source.subarray(0, dataStart));
  header.writeUInt32LE(36 + pcm.length, 4);
  header.writeUInt32LE(pcm.length, dataStart - 4);
  const file = join(dir, `${name}-lead.wav`);
  await writeFile(file, Buffer.concat([header, pcm]));
  return file;
}

/** The client's control messages (not pings), in order. */
const controls = (messages: Wire[]): string[] =>
  messages.filter((m) => m.dir === 'out' && m.type !== 'ping').map((m) => m.type);

describe('speculative turns in real Chromium', () => {
  let tmp: string;
  const rig = sdkPageRelay({
    latency: { sttMs: 40, llmTtftMs: 100, ttsTtfbMs: 60, ttsRealtime: true },
    // The speculative turn at the inner pause of hours.wav hears only "Hi there."
    transcribe: (request) =>
      request.wav.durationMs < 1_900
        ? 'Hi there.'
        : request.wav.durationMs < 3_000
          ? WEATHER
          : HOURS,
    chat: () => ({ content: REPLY }),
    speech: (request) => ({ pcm: synthesizeTone(request.input) }),
  });

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'voicebot-speculation-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function talk(fixture: string, options: Record<string, unknown>): Promise<Page> {
    const page = await rig.open(fixture, spyOnWire);
    await createPageClient(page, rig.h.url, rig.key, { persistence: false, ...options }, EVENTS);
    await page.evaluate(() => (window as unknown as Win).client.start());
    await waitForEvent(page, 'message', 'true', 45_000);
    await waitForEvent(page, 'metrics', 'true', 10_000);
    return page;
  }

  async function timeline(page: Page): Promise<string> {
    const events = (await recordedEvents(page)).filter((e) => e.type !== 'level');
    const messages = await wire(page);
    return [
      ...messages.map((m) => ({ t: m.t, line: `${m.dir} ${m.type}${m.text ? ` ${m.text}` : ''}` })),
      ...events.map((e) => ({ t: e.t, line: `event ${e.type} ${JSON.stringify(e.payload)}` })),
    ]
      .sort((a, b) => a.t - b.t)
      .map((e) => `${Math.round(e.t)} ${e.line}`)
      .join('\n');
  }

  for (const model of ['energy', 'silero'] as const) {
    test(`${model} VAD, hours.wav ("Hi there. [340 ms] What are your opening hours on Saturday?"): the inner pause is a pause and a resume, never a commit; one turn`, async () => {
      const fixture =
        model === 'silero'
          ? await withLeadingSilence(tmp, 'hours', 2_500)
          : join(FIXTURES, '48k/hours.wav');
      const mark = rig.h.upstream.requests.length;
      const page = await talk(fixture, { vad: { model } });
      const log = await timeline(page);
      if (model === 'silero')
        assert.ok(
          await page.evaluate(() => 'probability' in ((window as unknown as Win).client.vad ?? {})),
          'Silero judged the utterance',
        );
      const messages = await wire(page);
      assert.ok(
        messages.some((m) => m.dir === 'in' && m.type === 'ready'),
        `ready; timeline:\n${log}`,
      );
      assert.deepEqual(
        controls(messages).filter((type) => type !== 'start'),
        ['pause', 'resume', 'pause', 'commit'],
        `timeline:\n${log}`,
      );
      // The inner pause is 340 ms: the resume follows the pause by 40–120 ms. When the first
      // speculation's STT answers within that ("Hi there."), the policy, not luck, keeps the turn
      // open (a greeting is usually followed by the question); when it does not, the relay drops
      // the speculation unheard. Either way: no commit until the end of the question.
      const secondPause = messages.findLastIndex((m) => m.type === 'pause');
      const early = messages.slice(0, secondPause).find((m) => m.type === 'tentative_transcript');
      if (early) assert.equal(early.text, 'Hi there.', `timeline:\n${log}`);
      const transcripts = (await eventsOf(page, 'transcript')) as { text: string }[];
      assert.deepEqual(
        transcripts.map((t) => t.text),
        [HOURS],
        'one turn: the whole question',
      );
      const message = (await eventsOf(page, 'message')) as { text: string; interrupted: boolean }[];
      assert.deepEqual(message, [{ turnId: 1, text: REPLY, interrupted: false }]);
      const metrics = ((await eventsOf(page, 'metrics')) as Record<string, unknown>[])[0] ?? {};
      assert.equal(metrics['speculative'], true, `metrics ${JSON.stringify(metrics)}`);
      assert.equal(metrics['underruns'], 0, 'no gap in the reply');
      const silence = Number(metrics['end_of_turn_silence_ms']);
      assert.ok(silence >= 300 && silence <= 450, `ended after ${silence} ms of silence`);
      // The speculative turn of "Hi there." never reached the visitor, and its history was not kept.
      const chats = rig.h.upstream.requests
        .slice(mark)
        .filter((r) => r.kind === 'chat' && !r.aborted)
        .map((r) => (r.body as { messages: { role: string; content: string }[] }).messages);
      assert.ok(chats.length >= 1);
      assert.deepEqual(
        chats
          .at(-1)
          ?.filter((m) => m.role === 'user')
          .map((m) => m.content),
        [HOURS],
      );
      await page.evaluate(() => (window as unknown as Win).client.stop());
    });
  }

  test('a complete question (weather.wav) ends after a short silence: pause, then commit ~130 ms later; the speculative turn is confirmed', async () => {
    const page = await talk(join(FIXTURES, '48k/weather.wav'), { vad: { model: 'energy' } });
    const log = await timeline(page);
    const messages = await wire(page);
    assert.deepEqual(
      controls(messages).filter((type) => type !== 'start'),
      ['pause', 'commit'],
      `timeline:\n${log}`,
    );
    const pause = messages.find((m) => m.type === 'pause');
    const tentative = messages.find((m) => m.type === 'tentative_transcript');
    const commit = messages.find((m) => m.type === 'commit');
    assert.equal(tentative?.text, WEATHER);
    const waited = (commit?.t ?? 0) - (pause?.t ?? 0);
    // 350 ms of silence for a complete question, 140 of them (128 in 20 ms frames) before the
    // pause; without a transcript the wait would be 700 (560 after the pause)
    assert.ok(
      waited > 60 && waited < 300,
      `commit ${waited.toFixed(0)} ms after the pause\n${log}`,
    );
    const metrics = ((await eventsOf(page, 'metrics')) as Record<string, unknown>[])[0] ?? {};
    assert.equal(metrics['speculative'], true);
    assert.equal(typeof metrics['held_ms'], 'number');
    assert.equal(metrics['underruns'], 0);
    const target = Number(metrics['jitter_buffer_ms']);
    assert.equal(target, 50, 'the jitter buffer target stays at its start (and floor), 50 ms');
    const silence = Number(metrics['end_of_turn_silence_ms']);
    assert.ok(silence >= 340 && silence <= 420, `ended after ${silence} ms of silence`);
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });

  test('speculation: false keeps the old turn-taking: no pause, a commit after 700 ms of silence', async () => {
    const page = await talk(join(FIXTURES, '48k/weather.wav'), {
      vad: { model: 'energy' },
      speculation: false,
    });
    const messages = await wire(page);
    assert.deepEqual(
      controls(messages).filter((type) => type !== 'start'),
      ['commit'],
      await timeline(page),
    );
    const metrics = ((await eventsOf(page, 'metrics')) as Record<string, unknown>[])[0] ?? {};
    assert.notEqual(metrics['speculative'], true);
    const silence = Number(metrics['end_of_turn_silence_ms']);
    assert.ok(silence >= 680 && silence <= 720, `ended after ${silence} ms of silence`);
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });
});
