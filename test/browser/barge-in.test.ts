import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone, type ChatRequest } from '@voice-bot/relay/testing';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { FIXTURES, REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';

const LONG_REPLY =
  'Our opening hours are nine to five on weekdays. On Saturday we open at ten and close at two. ' +
  'On Sunday the clinic is closed, but our emergency line is answered all day. ' +
  'You can also book online at any time, and we will confirm by email within the hour.';

function lastUser(request: ChatRequest): string {
  const users = request.messages.filter((m): m is { role: 'user'; content: string } => (m as { role?: string }).role === 'user');
  return users.at(-1)?.content ?? '';
}

type Events = { type: string; payload: unknown; t: number }[];

/** In the page: a client whose events are recorded, optionally with the bot's playback looped into the mic (echo). */
async function makeClient(page: Page, relayUrl: string, key: string, options: Record<string, unknown>, echoGain = 0): Promise<void> {
  await page.evaluate(
    async (relayUrl, key, options, echoGain) => {
      const w = window as unknown as Record<string, unknown>;
      if (echoGain > 0) {
        // Simulated laptop speakers: what the bot plays reaches the capture worklet's mic input.
        const Native = window.AudioWorkletNode;
        let playback: AudioWorkletNode | undefined;
        window.AudioWorkletNode = class extends Native {
          constructor(context: BaseAudioContext, name: string, init?: AudioWorkletNodeOptions) {
            super(context, name, init);
            if (name === 'voicebot-playback') playback = this;
            if (name === 'voicebot-capture' && playback) {
              const gain = context.createGain();
              gain.gain.value = echoGain;
              playback.connect(gain).connect(this, 0, 0);
            }
          }
        } as typeof AudioWorkletNode;
      }
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const client = new sdk.VoiceBotClient({ relayUrl, clientKey: key, assetBaseUrl: '/sdk/', persistence: false, ...options });
      const events: Events = [];
      for (const type of ['state', 'transcript', 'message', 'error', 'level']) {
        client.on(type, (payload: unknown) => {
          const p = payload instanceof Error ? { code: (payload as Error & { code: string }).code } : payload;
          if (type !== 'level' || (p as { output: number }).output > 0) events.push({ type, payload: p, t: performance.now() });
        });
      }
      w.client = client;
      w.events = events;
    },
    relayUrl,
    key,
    options,
    echoGain,
  );
}

const events = (page: Page) => page.evaluate(() => (window as unknown as { events: Events }).events);

async function waitFor(page: Page, predicate: string, timeoutMs = 30_000): Promise<void> {
  try {
    await page.waitForFunction(
      (predicate) => new Function('events', `return ${predicate}`)((window as unknown as { events: Events }).events),
      { timeout: timeoutMs, polling: 50 },
      predicate,
    );
  } catch (error) {
    const seen = (await events(page)).filter((e) => e.type !== 'level').map((e) => `${Math.round(e.t)} ${e.type} ${JSON.stringify(e.payload)}`);
    throw new Error(`${(error as Error).message} waiting for ${predicate}; events:\n${seen.join('\n')}`);
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
  for (let i = 0; i < blip.length / 2; i++) blip.writeInt16LE(Math.round(20_000 * Math.sin((2 * Math.PI * 300 * i) / rate) * (i % 480 < 240 ? 1 : 0.6)), i * 2);
  const pcm = Buffer.concat([speech, silence(gapMs), blip, silence(4_000)]);
  const header = Buffer.from(source.subarray(0, dataStart));
  header.writeUInt32LE(36 + pcm.length, 4);
  header.writeUInt32LE(pcm.length, dataStart - 4);
  const file = join(dir, 'blip.wav');
  await writeFile(file, Buffer.concat([header, pcm]));
  return file;
}

describe('barge-in and turn-taking in real Chromium', () => {
  let h: RelayHarness;
  let key: string;
  let tmp: string;
  const browsers: Browser[] = [];

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'voicebot-bargein-'));
    h = await startRelay({
      upstream: {
        latency: { ttsRealtime: true },
        transcribe: (request) => (request.wav.durationMs < 3_600 ? 'Stop. Actually, never mind.' : 'What are your opening hours?'),
        chat: (request) => ({ content: lastUser(request).startsWith('Stop') ? 'Okay.' : LONG_REPLY }),
        speech: (request) => ({ pcm: synthesizeTone(request.input) }),
      },
      relay: {
        staticDirs: [
          { urlPath: '/sdk/', dir: join(REPO_ROOT, 'packages/sdk/dist/browser') },
          { urlPath: '/', dir: join(REPO_ROOT, 'test/browser/pages') },
        ],
      },
    });
    key = (await h.keys.create({ origins: [new URL(h.url).origin] })).secret;
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await h.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function open(fakeMicWav: string): Promise<Page> {
    const browser = await launchChromium({ fakeMicWav });
    browsers.push(browser);
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${h.url}/sdk.html`);
    return page;
  }

  test('the visitor interrupts: playback stops, the relay aborts upstream and keeps only what was heard', async () => {
    const page = await open(join(FIXTURES, '48k/barge-in.wav'));
    const mark = h.upstream.requests.length;
    await makeClient(page, h.url, key, { vad: { model: 'energy' } });
    await page.evaluate(() => (window as unknown as { client: { start(): Promise<void> } }).client.start());
    await waitFor(page, "events.some(e => e.type === 'message' && e.payload.interrupted)");
    await waitFor(page, "events.some(e => e.type === 'message' && e.payload.text === 'Okay.')");
    const all = await events(page);
    const cut = all.find((e) => e.type === 'message' && (e.payload as { interrupted: boolean }).interrupted);
    const heard = (cut?.payload as { text: string }).text;
    assert.ok(heard.length > 0 && heard.length < LONG_REPLY.length / 2, `heard ${JSON.stringify(heard)}`);
    assert.ok(LONG_REPLY.startsWith(heard.replace(/…$/, '').split(' ').slice(0, -1).join(' ')), 'what was heard is the start of the reply');
    const transcripts = all.filter((e) => e.type === 'transcript').map((e) => (e.payload as { text: string }).text);
    assert.deepEqual(transcripts, ['What are your opening hours?', 'Stop. Actually, never mind.']);

    const requests = h.upstream.requests.slice(mark);
    assert.ok(requests.some((r) => r.kind === 'speech' && r.aborted), 'a TTS request still streaming was aborted');
    const chats = requests.filter((r) => r.kind === 'chat').map((r) => r.body as { messages: { role: string; content: string }[] });
    assert.equal(chats.length, 2);
    const stored = chats[1]?.messages.filter((m) => m.role === 'assistant').at(-1)?.content;
    assert.equal(stored, heard, 'the next LLM call sees exactly what the visitor heard');

    // stale audio of the interrupted turn is dropped: from just after the cut until the next
    // utterance's transcript (~2 s later), the speaker is silent
    const cutAt = cut?.t ?? 0;
    const nextTranscriptAt = all.filter((e) => e.type === 'transcript')[1]?.t ?? 0;
    assert.ok(nextTranscriptAt - cutAt > 500, 'there is a window to check');
    const stale = all.filter((e) => e.type === 'level' && e.t > cutAt + 150 && e.t < nextTranscriptAt);
    assert.equal(stale.length, 0, 'no audio of the interrupted turn played after the cut');
    await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
  });

  test('a cough-length blip while the bot speaks does not interrupt', async () => {
    const wav = await makeBlipFixture(tmp, 1_800, 120);
    const page = await open(wav);
    await makeClient(page, h.url, key, { vad: { model: 'energy' } });
    await page.evaluate(() => (window as unknown as { client: { start(): Promise<void> } }).client.start());
    await waitFor(page, "events.some(e => e.type === 'message')", 45_000);
    const all = await events(page);
    const message = all.find((e) => e.type === 'message')?.payload as { text: string; interrupted: boolean };
    const timeline = all.filter((e) => e.type !== 'level').map((e) => `${Math.round(e.t)} ${e.type} ${JSON.stringify(e.payload)}`).join('\n');
    assert.equal(message.interrupted, false, `interrupted; events:\n${timeline}`);
    assert.equal(message.text, LONG_REPLY);
    assert.equal(all.filter((e) => e.type === 'transcript').length, 1, `the blip was never sent as an utterance; events:\n${timeline}`);
    await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
  });

  for (const gate of [true, false]) {
    test(gate ? 'the bot hearing itself through the speakers does not interrupt itself' : 'control: without the echo gate the same echo does interrupt', async () => {
      const page = await open(join(FIXTURES, '48k/silence.wav'));
      await makeClient(page, h.url, key, { vad: { model: 'energy' }, ...(gate ? {} : { echoGate: false }) }, 0.5);
      await page.evaluate(async () => {
        const client = (window as unknown as { client: { start(): Promise<void>; sendText(t: string): Promise<void> } }).client;
        await client.start();
        await client.sendText('What are your opening hours?');
      });
      await waitFor(page, "events.some(e => e.type === 'message')", 45_000);
      const message = (await events(page)).find((e) => e.type === 'message')?.payload as { interrupted: boolean };
      assert.equal(message.interrupted, !gate);
      await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
    });
  }
});
