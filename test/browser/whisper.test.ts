/**
 * In-browser speech recognition (`stt: 'browser'`) in real Chromium against the real relay:
 * the worker protocol with a stand-in recogniser, the real transformers.js worker with a tiny
 * random-weight Whisper (test/fixtures/tiny-whisper, from scripts/make-tiny-whisper.py), the
 * typed failure and the fallback to relay STT, and that transformers.js stays out of the first
 * download. Nothing is downloaded from a model hub.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone, type ChatRequest } from '@voice-bot/relay/testing';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { FIXTURES, REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';

const REPLY = 'We open at ten on Saturday.';
const SDK_DIST = join(REPO_ROOT, 'packages/sdk/dist/browser');
const WIDGET_DIST = join(REPO_ROOT, 'packages/widget/dist/browser');
/** Strings only transformers.js / onnxruntime-web contain. */
const TRANSFORMERS_MARKERS = ['WhisperForConditionalGeneration', 'onnxruntime-web', 'automatic-speech-recognition'];

function lastUser(request: ChatRequest): string {
  const users = request.messages.filter((m): m is { role: 'user'; content: string } => (m as { role?: string }).role === 'user');
  return users.at(-1)?.content ?? '';
}

/** A module and every module it imports statically (what the browser fetches up front). */
async function staticClosure(entry: string): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = await readFile(file, 'utf8');
    for (const match of code.matchAll(/(?:^|[;}\s])(?:import|export)\s*(?:[^'"();]*?\sfrom\s*)?["'](\.{1,2}\/[^"']+)["']/g)) {
      const spec = match[1];
      if (spec) await visit(join(dirname(file), spec));
    }
  };
  await visit(entry);
  return [...seen];
}

type Win = Window & { client: unknown; events: { type: string; payload: unknown }[]; sent: { json: string[]; binary: number } };

/** Runs in the page: a client that records its events, and a spy on what the socket sends. */
async function makeClient(page: Page, relayUrl: string, key: string, extra: Record<string, unknown>): Promise<void> {
  await page.evaluate(
    async (relayUrl, key, extra) => {
      const w = window as unknown as Win;
      w.sent = { json: [], binary: 0 };
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data: string | ArrayBufferLike | Blob | ArrayBufferView) {
        if (typeof data === 'string') w.sent.json.push(data);
        else w.sent.binary++;
        return send.call(this, data);
      };
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const client = new sdk.VoiceBotClient({ relayUrl, clientKey: key, assetBaseUrl: '/sdk/', vad: { model: 'energy' }, persistence: false, ...extra });
      w.events = [];
      for (const type of ['state', 'ready', 'transcript', 'message', 'error', 'stt-progress', 'stt-ready', 'stt-fallback']) {
        client.on(type, (payload: unknown) => {
          const p = payload instanceof Error ? { code: (payload as Error & { code: string }).code, message: payload.message } : payload;
          w.events.push({ type, payload: p });
        });
      }
      w.client = client;
    },
    relayUrl,
    key,
    extra,
  );
}

async function waitForEvent(page: Page, type: string, predicate = 'true', timeoutMs = 30_000): Promise<unknown> {
  const handle = await page.waitForFunction(
    (type, predicate) => {
      const events = (window as unknown as Win).events;
      const found = events.find((e) => e.type === type && new Function('p', `return ${predicate}`)(e.payload));
      return found ? found.payload : undefined;
    },
    { timeout: timeoutMs, polling: 50 },
    type,
    predicate,
  );
  return handle.jsonValue();
}

const eventsOf = (page: Page, type: string): Promise<unknown[]> =>
  page.evaluate((type) => (window as unknown as Win).events.filter((e) => e.type === type).map((e) => e.payload), type);

describe('in-browser speech recognition (stt: browser)', () => {
  let h: RelayHarness;
  let key: string;
  const browsers: Browser[] = [];

  before(async () => {
    h = await startRelay({
      upstream: {
        transcribe: () => 'What are your opening hours on Saturday?',
        chat: () => ({ content: REPLY }),
        speech: (request) => ({ pcm: synthesizeTone(request.input) }),
      },
      relay: {
        staticDirs: [
          { urlPath: '/sdk/', dir: SDK_DIST },
          { urlPath: '/models/', dir: join(REPO_ROOT, 'test/fixtures') },
          { urlPath: '/', dir: join(REPO_ROOT, 'test/browser/pages') },
        ],
      },
    });
    key = (await h.keys.create({ origins: [new URL(h.url).origin] })).secret;
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await h.close();
  });

  async function open(fakeMicWav?: string): Promise<Page> {
    const browser = await launchChromium(fakeMicWav ? { fakeMicWav } : {});
    browsers.push(browser);
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    if (process.env['DEBUG_WHISPER']) page.on('console', (m) => console.log('console:', m.text()));
    await page.goto(`${h.url}/sdk.html`);
    return page;
  }

  const transcriptions = (mark: number) => h.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription');
  const chats = (mark: number) => h.upstream.requests.slice(mark).filter((r) => r.kind === 'chat');

  test('transformers.js is in stt-worker.js only: not in the first download nor in voice-bot-sdk.js', async () => {
    const worker = await readFile(join(SDK_DIST, 'stt-worker.js'), 'utf8');
    for (const marker of TRANSFORMERS_MARKERS) assert.ok(worker.includes(marker), `stt-worker.js contains ${marker} (the check can see it)`);
    assert.ok(existsSync(join(SDK_DIST, 'stt/ort-wasm-simd-threaded.asyncify.wasm')), 'onnxruntime wasm is self-hosted beside the SDK');
    assert.ok(existsSync(join(WIDGET_DIST, 'stt-worker.js')) && existsSync(join(WIDGET_DIST, 'stt/ort-wasm-simd-threaded.asyncify.wasm')), 'and beside the widget');
    const first = [join(WIDGET_DIST, 'voice-bot.js'), ...(await staticClosure(join(WIDGET_DIST, 'voice-bot.esm.js')))];
    const sdk = await staticClosure(join(SDK_DIST, 'voice-bot-sdk.js'));
    for (const file of [...first, ...sdk]) {
      const code = await readFile(file, 'utf8');
      for (const marker of TRANSFORMERS_MARKERS) assert.ok(!code.includes(marker), `${file} must not contain ${marker}`);
    }
    // The cross-origin worker shim (a blob: module) is lazy, never in the script tag's first download.
    for (const file of first) assert.ok(!(await readFile(file, 'utf8')).includes('createObjectURL'), `${file} must not create blob: URLs`);
  });

  test('a spoken turn is transcribed in a worker: the relay gets text (source speech) and no audio', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = h.upstream.requests.length;
    const logMark = h.logs.length;
    await makeClient(page, h.url, key, { stt: 'browser', whisper: { workerUrl: '/fake-stt-worker.js', model: 'fake/ok' } });
    await page.evaluate(() => (window as unknown as { client: { start(): Promise<void> } }).client.start());
    const ready = (await waitForEvent(page, 'stt-ready')) as { device: string };
    assert.equal(ready.device, 'wasm');
    const progress = (await eventsOf(page, 'stt-progress')) as { percent: number; loaded: number; total: number; file: string }[];
    assert.deepEqual(progress.map((p) => p.percent), [0, 33, 67, 100]);
    assert.equal(progress.at(-1)?.file, 'onnx/encoder_model.onnx');

    const message = (await waitForEvent(page, 'message')) as { text: string };
    assert.equal(message.text, REPLY);
    const transcript = (await waitForEvent(page, 'transcript', "p.text.startsWith('fake transcript')")) as { text: string };
    const samples = Number(/: (\d+) samples/.exec(transcript.text)?.[1]);
    assert.ok(samples > 16_000 * 1.5 && samples < 16_000 * 12, `the utterance's 16 kHz audio reached the worker (${samples} samples)`);
    assert.ok(Number(/peak ([\d.]+)/.exec(transcript.text)?.[1]) > 0.05, 'as Float32 in [-1, 1] with speech in it');

    const sent = await page.evaluate(() => (window as unknown as Win).sent);
    assert.equal(sent.binary, 0, 'no audio frame left the page');
    const texts = sent.json.map((s) => JSON.parse(s) as { type: string; source?: string; input?: string });
    assert.equal(texts.find((m) => m.type === 'start')?.input, 'text');
    assert.deepEqual(texts.filter((m) => m.type === 'text').map((m) => m.source), ['speech']);
    assert.ok(!texts.some((m) => m.type === 'commit'));
    // relay side: a text session, no STT request, the transcript went to the LLM
    assert.equal(transcriptions(mark).length, 0);
    assert.ok(chats(mark).some((c) => lastUser(c.body as ChatRequest) === transcript.text));
    const started = h.logs.slice(logMark).map((l) => JSON.parse(l) as { msg?: string; input?: string }).filter((l) => l.msg === 'session started');
    assert.ok(started.length > 0 && started.every((l) => l.input === 'text'), 'the relay session has input "text"');
    assert.deepEqual((await eventsOf(page, 'error')), []);
    await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
  });

  test('one inference at a time, in order; URLs resolve beside the bundle', async () => {
    const page = await open();
    const result = await page.evaluate(async () => {
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const stt = new sdk.BrowserStt({ assetBaseUrl: '/sdk/', workerUrl: '/fake-stt-worker.js', model: 'fake/ok' });
      const texts = await Promise.all([1, 2, 3].map((n) => stt.transcribe(new Float32Array(n * 100).fill(0.5))));
      stt.dispose();
      return texts as string[];
    });
    assert.deepEqual(result, ['fake transcript 1: 100 samples, peak 0.50', 'fake transcript 2: 200 samples, peak 0.50', 'fake transcript 3: 300 samples, peak 0.50']);
  });

  test('a model that does not load: typed stt_unavailable (real worker, missing files → 404) and a time limit', async () => {
    const page = await open();
    const cases: Record<string, Record<string, unknown>> = {
      missing: { model: 'no-such/model', loadTimeoutMs: 30_000 },
      hang: { model: 'fake/hang', workerUrl: '/fake-stt-worker.js', loadTimeoutMs: 500 },
      noWorker: { model: 'fake/ok', workerUrl: '/no-such-worker.js' },
    };
    const result = (await page.evaluate(async (cases) => {
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const out: Record<string, { ok?: true; code?: string; message?: string }> = {};
      for (const [name, options] of Object.entries(cases)) {
        const stt = new sdk.BrowserStt({ assetBaseUrl: '/sdk/', modelBaseUrl: '/models/', ...options });
        try {
          await stt.load();
          out[name] = { ok: true };
        } catch (error) {
          out[name] = { code: (error as { code: string }).code, message: (error as Error).message };
        }
        stt.dispose();
      }
      return out;
    }, cases)) as Record<'missing' | 'hang' | 'noWorker', { ok?: true; code?: string; message?: string }>;
    assert.equal(result.missing.code, 'stt_unavailable', JSON.stringify(result.missing));
    assert.match(String(result.missing.message), /no-such\/model|locate|404|config/i);
    assert.equal(result.hang.code, 'stt_unavailable');
    assert.match(String(result.hang.message), /did not load within/);
    assert.equal(result.noWorker.code, 'stt_unavailable');
  });

  test('fallbackToRelay: a failed model switches to relay STT, the utterance still gets answered', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = h.upstream.requests.length;
    await makeClient(page, h.url, key, { stt: 'browser', whisper: { workerUrl: '/fake-stt-worker.js', model: 'fake/broken', fallbackToRelay: true } });
    await page.evaluate(() => (window as unknown as { client: { start(): Promise<void> } }).client.start());
    const fallback = (await waitForEvent(page, 'stt-fallback')) as { code: string; message: string };
    assert.equal(fallback.code, 'stt_unavailable');
    assert.match(fallback.message, /relay/);
    const message = (await waitForEvent(page, 'message')) as { text: string };
    assert.equal(message.text, REPLY);
    assert.equal(transcriptions(mark).length, 1, 'the relay transcribed the utterance');
    const sent = await page.evaluate(() => (window as unknown as Win).sent);
    assert.ok(sent.binary > 0);
    const starts = sent.json.map((s) => JSON.parse(s) as { type: string; input?: string }).filter((m) => m.type === 'start');
    assert.deepEqual(starts.map((s) => s.input), ['text', 'audio'], 'a new session that accepts audio');
    await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
  });

  test('the real transformers.js pipeline in the worker: a tiny random-weight Whisper, self-hosted', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = h.upstream.requests.length;
    await makeClient(page, h.url, key, { stt: 'browser', whisper: { model: 'tiny-whisper', modelBaseUrl: '/models/', dtype: 'fp32', device: 'auto' } });
    const t0 = Date.now();
    await page.evaluate(() => (window as unknown as { client: { start(): Promise<void> } }).client.start());
    const ready = (await waitForEvent(page, 'stt-ready', 'true', 60_000)) as { device: string; loadMs: number };
    assert.equal(ready.device, 'wasm', 'headless Chromium has no WebGPU adapter');
    const progress = (await eventsOf(page, 'stt-progress')) as { percent: number; file: string }[];
    assert.ok(progress.length > 0, 'download progress was reported');
    assert.equal(progress.at(-1)?.percent, 100);
    assert.ok(progress.some((p) => p.file.includes('onnx/')), progress.map((p) => p.file).join(','));
    const transcript = (await waitForEvent(page, 'transcript', 'true', 60_000)) as { text: string };
    assert.equal(typeof transcript.text, 'string');
    assert.ok(transcript.text.length > 0);
    await waitForEvent(page, 'message', 'true', 30_000);
    console.log(`  tiny whisper: loaded + warmed up in ${ready.loadMs} ms, first transcript after ${Date.now() - t0} ms: ${JSON.stringify(transcript.text)}`);
    const sent = await page.evaluate(() => (window as unknown as Win).sent);
    assert.equal(sent.binary, 0);
    assert.equal(transcriptions(mark).length, 0);
    assert.ok(chats(mark).some((c) => lastUser(c.body as ChatRequest) === transcript.text));
    assert.deepEqual(await eventsOf(page, 'error'), []);
    await page.evaluate(() => (window as unknown as { client: { stop(): Promise<void> } }).client.stop());
  });
});
