import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mulberry32, synthesizeTone } from '@voice-bot/fake-provider';
import type { Page } from '../support/browser.js';
import {
  createPageClient,
  recordedEvents,
  sdkPageRelay,
  type RecordedEvent,
} from '../support/page-client.js';
import { FIXTURES, lastUser } from '../support/relay.js';

const LONG_REPLY =
  'Our opening hours are nine to five on weekdays. On Saturday we open at ten and close at two. ' +
  'On Sunday the clinic is closed, but our emergency line is answered all day. ' +
  'You can also book online at any time, and we will confirm by email within the hour.';

/** The client events the tests look at. */
const EVENTS = ['state', 'transcript', 'message', 'error', 'level'];

/** Simulated laptop speakers: what the bot plays reaches the capture worklet's mic input at `gain`. */
async function loopPlaybackIntoMic(page: Page, gain: number): Promise<void> {
  await page.evaluate((gain) => {
    const Native = window.AudioWorkletNode;
    let playback: AudioWorkletNode | undefined;
    window.AudioWorkletNode = class extends Native {
      constructor(context: BaseAudioContext, name: string, init?: AudioWorkletNodeOptions) {
        super(context, name, init);
        // eslint-disable-next-line @typescript-eslint/no-this-alias -- the page's playback node, kept for the capture node made next
        if (name === 'voicebot-playback') playback = this;
        if (name === 'voicebot-capture' && playback) {
          const node = context.createGain();
          node.gain.value = gain;
          playback.connect(node).connect(this, 0, 0);
        }
      }
    } as typeof AudioWorkletNode;
  }, gain);
}

async function waitFor(page: Page, predicate: string, timeoutMs = 30_000): Promise<void> {
  try {
    await page.waitForFunction(
      (predicate) =>
        new Function('events', `return ${predicate}`)(
          (window as unknown as { events: RecordedEvent[] }).events,
        ),
      { timeout: timeoutMs, polling: 50 },
      predicate,
    );
  } catch (error) {
    const seen = (await recordedEvents(page))
      .filter((e) => e.type !== 'level')
      .map((e) => `${Math.round(e.t)} ${e.type} ${JSON.stringify(e.payload)}`);
    throw new Error(
      `${(error as Error).message} waiting for ${predicate}; events:\n${seen.join('\n')}`,
    );
  }
}

/** A mic recording: the 48 kHz hours question, then `gapMs` of silence, then a cough-length burst, then silence. */
async function makeBlipFixture(dir: string, gapMs: number, blipMs: number): Promise<string> {
  const source = await readFile(join(FIXTURES, '48k/hours.wav'));
  const dataStart = source.indexOf('data') + 8;
  const speech = source.subarray(dataStart);
  const rate = 48_000;
  const silence = (ms: number) => Buffer.alloc(Math.round((rate * ms) / 1000) * 2);
  const blip = Buffer.alloc(Math.round((rate * blipMs) / 1000) * 2);
  // A cough: a loud broadband burst that dies away (noise, so the echo canceller has nothing of the bot's to learn from it).
  const random = mulberry32(7);
  const samples = blip.length / 2;
  for (let i = 0; i < samples; i++)
    blip.writeInt16LE(
      Math.round(24_000 * (random() * 2 - 1) * Math.exp((-3 * i) / samples)),
      i * 2,
    );
  const pcm = Buffer.concat([speech, silence(gapMs), blip, silence(4_000)]);
  const header = Buffer.from(source.subarray(0, dataStart));
  header.writeUInt32LE(36 + pcm.length, 4);
  header.writeUInt32LE(pcm.length, dataStart - 4);
  const file = join(dir, 'blip.wav');
  await writeFile(file, Buffer.concat([header, pcm]));
  return file;
}

describe('barge-in and turn-taking in real Chromium', () => {
  let tmp: string;
  const rig = sdkPageRelay({
    latency: { ttsRealtime: true },
    // The relay transcribes a speculative turn's audio up to its pause (no trailing silence):
    // about 2.9 s for "Stop. Actually, never mind.", 3.5 s for the hours question.
    transcribe: (request) =>
      request.wav.durationMs < 3_200
        ? 'Stop. Actually, never mind.'
        : 'What are your opening hours?',
    chat: (request) => ({ content: lastUser(request).startsWith('Stop') ? 'Okay.' : LONG_REPLY }),
    speech: (request) => ({ pcm: synthesizeTone(request.input) }),
  });

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'voicebot-bargein-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A client without persistence, recording EVENTS; with `echoGain`, its playback loops into the mic. */
  async function makeClient(
    page: Page,
    options: Record<string, unknown>,
    echoGain = 0,
  ): Promise<void> {
    if (echoGain > 0) await loopPlaybackIntoMic(page, echoGain);
    await createPageClient(page, rig.h.url, rig.key, { persistence: false, ...options }, EVENTS);
  }

  test('the visitor interrupts: playback stops, the relay aborts upstream and keeps only what was heard', async () => {
    const page = await rig.open(join(FIXTURES, '48k/barge-in.wav'));
    const mark = rig.h.upstream.requests.length;
    await makeClient(page, { vad: { model: 'energy' } });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    await waitFor(page, "events.some(e => e.type === 'message' && e.payload.interrupted)");
    await waitFor(page, "events.some(e => e.type === 'message' && e.payload.text === 'Okay.')");
    const all = await recordedEvents(page);
    const cut = all.find(
      (e) => e.type === 'message' && (e.payload as { interrupted: boolean }).interrupted,
    );
    const heard = (cut?.payload as { text: string }).text;
    assert.ok(
      heard.length > 0 && heard.length < LONG_REPLY.length / 2,
      `heard ${JSON.stringify(heard)}`,
    );
    assert.ok(
      LONG_REPLY.startsWith(heard.replace(/…$/, '').split(' ').slice(0, -1).join(' ')),
      'what was heard is the start of the reply',
    );
    const transcripts = all
      .filter((e) => e.type === 'transcript')
      .map((e) => (e.payload as { text: string }).text);
    assert.deepEqual(transcripts, ['What are your opening hours?', 'Stop. Actually, never mind.']);

    const requests = rig.h.upstream.requests.slice(mark);
    assert.ok(
      requests.some((r) => r.kind === 'speech' && r.aborted),
      'a TTS request still streaming was aborted',
    );
    const chats = requests
      .filter((r) => r.kind === 'chat')
      .map((r) => r.body as { messages: { role: string; content: string }[] });
    // Two turns; speculative turns dropped at the pauses inside each utterance made calls too.
    assert.ok(chats.length >= 2, `${chats.length} chat calls`);
    const stored = chats
      .at(-1)
      ?.messages.filter((m) => m.role === 'assistant')
      .at(-1)?.content;
    assert.equal(stored, heard, 'the next LLM call sees exactly what the visitor heard');

    // stale audio of the interrupted turn is dropped: from just after the cut until the next
    // utterance's transcript (~2 s later), the speaker is silent
    const cutAt = cut?.t ?? 0;
    const nextTranscriptAt = all.filter((e) => e.type === 'transcript')[1]?.t ?? 0;
    assert.ok(nextTranscriptAt - cutAt > 500, 'there is a window to check');
    const stale = all.filter(
      (e) => e.type === 'level' && e.t > cutAt + 150 && e.t < nextTranscriptAt,
    );
    assert.equal(stale.length, 0, 'no audio of the interrupted turn played after the cut');
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('a cough-length blip while the bot speaks does not interrupt', async () => {
    const wav = await makeBlipFixture(tmp, 1_800, 120);
    const page = await rig.open(wav);
    await makeClient(page, { vad: { model: 'energy' } });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    await waitFor(page, "events.some(e => e.type === 'message')", 45_000);
    const all = await recordedEvents(page);
    const message = all.find((e) => e.type === 'message')?.payload as {
      text: string;
      interrupted: boolean;
    };
    const timeline = all
      .filter((e) => e.type !== 'level')
      .map((e) => `${Math.round(e.t)} ${e.type} ${JSON.stringify(e.payload)}`)
      .join('\n');
    assert.equal(message.interrupted, false, `interrupted; events:\n${timeline}`);
    assert.equal(message.text, LONG_REPLY);
    assert.equal(
      all.filter((e) => e.type === 'transcript').length,
      1,
      `the blip was never sent as an utterance; events:\n${timeline}`,
    );
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  for (const gate of [true, false]) {
    test(
      gate
        ? 'the bot hearing itself through the speakers does not interrupt itself'
        : 'control: without the echo gate the same echo does interrupt',
      async () => {
        const page = await rig.open(join(FIXTURES, '48k/silence.wav'));
        await makeClient(
          page,
          { vad: { model: 'energy' }, ...(gate ? {} : { echoGate: false }) },
          0.5,
        );
        await page.evaluate(async () => {
          const client = (
            window as unknown as {
              client: { start(): Promise<void>; sendText(t: string): Promise<void> };
            }
          ).client;
          await client.start();
          await client.sendText('What are your opening hours?');
        });
        await waitFor(page, "events.some(e => e.type === 'message')", 45_000);
        const message = (await recordedEvents(page)).find((e) => e.type === 'message')?.payload as {
          interrupted: boolean;
        };
        assert.equal(message.interrupted, !gate);
        await page.evaluate(() =>
          (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
        );
      },
    );
  }
});
