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
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { synthesizeTone, type ChatRequest } from '@voice-bot/fake-provider';
import type { Page } from '../support/browser.js';
import {
  eventsOf,
  createPageClient,
  SDK_DIST,
  sdkPageRelay,
  waitForEvent,
} from '../support/page-client.js';
import { FIXTURES, REPO_ROOT, lastUser } from '../support/relay.js';
import { staticClosure } from '../support/static-imports.js';
import { MODELS, sentBy, spyOnSockets } from '../support/stt-page.js';

const REPLY = 'We open at ten on Saturday.';
const WIDGET_DIST = join(REPO_ROOT, 'packages/widget/dist/browser');
/** Strings only transformers.js / onnxruntime-web contain. */
const TRANSFORMERS_MARKERS = [
  'WhisperForConditionalGeneration',
  'onnxruntime-web',
  'automatic-speech-recognition',
];

/** The client events the tests look at. */
const EVENTS = [
  'state',
  'ready',
  'transcript',
  'message',
  'error',
  'stt-progress',
  'stt-ready',
  'stt-fallback',
];

describe('in-browser speech recognition (stt: browser)', () => {
  const rig = sdkPageRelay(
    {
      transcribe: () => 'What are your opening hours on Saturday?',
      chat: () => ({ content: REPLY }),
      speech: (request) => ({ pcm: synthesizeTone(request.input) }),
    },
    [{ urlPath: '/models/', dir: MODELS }],
  );

  /** The SDK test page, with what its sockets send counted (`sentBy`). */
  const open = (fakeMicWav?: string): Promise<Page> =>
    rig.open(fakeMicWav, async (page) => {
      if (process.env['DEBUG_WHISPER'])
        page.on('console', (m) => console.log('console:', m.text()));
      await spyOnSockets(page);
    });
  /** A client with the energy detector and no persistence, recording EVENTS. */
  const makeClient = (page: Page, extra: Record<string, unknown>): Promise<void> =>
    createPageClient(
      page,
      rig.h.url,
      rig.key,
      { vad: { model: 'energy' }, persistence: false, ...extra },
      EVENTS,
    );

  const transcriptions = (mark: number) =>
    rig.h.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription');
  const chats = (mark: number) =>
    rig.h.upstream.requests.slice(mark).filter((r) => r.kind === 'chat');

  test('transformers.js is in stt-worker.js only: not in the first download nor in voice-bot-sdk.js', async () => {
    const worker = await readFile(join(SDK_DIST, 'stt-worker.js'), 'utf8');
    for (const marker of TRANSFORMERS_MARKERS)
      assert.ok(worker.includes(marker), `stt-worker.js contains ${marker} (the check can see it)`);
    assert.ok(
      existsSync(join(SDK_DIST, 'stt/ort-wasm-simd-threaded.asyncify.wasm')),
      'onnxruntime wasm is self-hosted beside the SDK',
    );
    assert.ok(
      existsSync(join(WIDGET_DIST, 'stt-worker.js')) &&
        existsSync(join(WIDGET_DIST, 'stt/ort-wasm-simd-threaded.asyncify.wasm')),
      'and beside the widget',
    );
    const first = [
      join(WIDGET_DIST, 'voice-bot.js'),
      ...staticClosure(join(WIDGET_DIST, 'voice-bot.esm.js')),
    ];
    const sdk = staticClosure(join(SDK_DIST, 'voice-bot-sdk.js'));
    for (const file of [...first, ...sdk]) {
      const code = await readFile(file, 'utf8');
      for (const marker of TRANSFORMERS_MARKERS)
        assert.ok(!code.includes(marker), `${file} must not contain ${marker}`);
    }
    // The cross-origin worker shim (a blob: module) is lazy, never in the script tag's first download.
    for (const file of first)
      assert.ok(
        !(await readFile(file, 'utf8')).includes('createObjectURL'),
        `${file} must not create blob: URLs`,
      );
  });

  test('a spoken turn is transcribed in a worker: the relay gets text (source speech) and no audio', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = rig.h.upstream.requests.length;
    const logMark = rig.h.logs.length;
    await makeClient(page, {
      stt: 'browser',
      whisper: { workerUrl: '/fake-stt-worker.js', model: 'fake/ok' },
    });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    const ready = (await waitForEvent(page, 'stt-ready')) as { device: string };
    assert.equal(ready.device, 'wasm');
    const progress = (await eventsOf(page, 'stt-progress')) as {
      percent: number;
      loaded: number;
      total: number;
      file: string;
    }[];
    assert.deepEqual(
      progress.map((p) => p.percent),
      [0, 33, 67, 100],
    );
    assert.equal(progress.at(-1)?.file, 'onnx/encoder_model.onnx');

    const message = (await waitForEvent(page, 'message')) as { text: string };
    assert.equal(message.text, REPLY);
    const transcript = (await waitForEvent(
      page,
      'transcript',
      "p.text.startsWith('fake transcript')",
    )) as { text: string };
    const samples = Number(/: (\d+) samples/.exec(transcript.text)?.[1]);
    assert.ok(
      samples > 16_000 * 1.5 && samples < 16_000 * 12,
      `the utterance's 16 kHz audio reached the worker (${samples} samples)`,
    );
    assert.ok(
      Number(/peak ([\d.]+)/.exec(transcript.text)?.[1]) > 0.05,
      'as Float32 in [-1, 1] with speech in it',
    );

    const sent = await sentBy(page);
    assert.equal(sent.binary, 0, 'no audio frame left the page');
    const texts = sent.json.map(
      (s) => JSON.parse(s) as { type: string; source?: string; input?: string },
    );
    assert.equal(texts.find((m) => m.type === 'start')?.input, 'text');
    assert.deepEqual(
      texts.filter((m) => m.type === 'text').map((m) => m.source),
      ['speech'],
    );
    assert.ok(!texts.some((m) => m.type === 'commit'));
    // relay side: a text session, no STT request, the transcript went to the LLM
    assert.equal(transcriptions(mark).length, 0);
    assert.ok(chats(mark).some((c) => lastUser(c.body as ChatRequest) === transcript.text));
    const started = rig.h.logs
      .slice(logMark)
      .map((l) => JSON.parse(l) as { msg?: string; input?: string })
      .filter((l) => l.msg === 'session started');
    assert.ok(
      started.length > 0 && started.every((l) => l.input === 'text'),
      'the relay session has input "text"',
    );
    assert.deepEqual(await eventsOf(page, 'error'), []);
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('one inference at a time, in order; URLs resolve beside the bundle', async () => {
    const page = await open();
    const result = await page.evaluate(async () => {
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const stt = new sdk.BrowserStt({
        assetBaseUrl: '/sdk/',
        workerUrl: '/fake-stt-worker.js',
        model: 'fake/ok',
      });
      const texts = await Promise.all(
        [1, 2, 3].map((n) => stt.transcribe(new Float32Array(n * 100).fill(0.5))),
      );
      stt.dispose();
      return texts as string[];
    });
    assert.deepEqual(result, [
      'fake transcript 1: 100 samples, peak 0.50',
      'fake transcript 2: 200 samples, peak 0.50',
      'fake transcript 3: 300 samples, peak 0.50',
    ]);
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
        const stt = new sdk.BrowserStt({
          assetBaseUrl: '/sdk/',
          modelBaseUrl: '/models/',
          ...options,
        });
        try {
          await stt.load();
          out[name] = { ok: true };
        } catch (error) {
          out[name] = { code: (error as { code: string }).code, message: (error as Error).message };
        }
        stt.dispose();
      }
      return out;
    }, cases)) as Record<
      'missing' | 'hang' | 'noWorker',
      { ok?: true; code?: string; message?: string }
    >;
    assert.equal(result.missing.code, 'stt_unavailable', JSON.stringify(result.missing));
    assert.match(String(result.missing.message), /no-such\/model|locate|404|config/i);
    assert.equal(result.hang.code, 'stt_unavailable');
    assert.match(String(result.hang.message), /did not load within/);
    assert.equal(result.noWorker.code, 'stt_unavailable');
  });

  test('fallbackToRelay: a failed model switches to relay STT, the utterance still gets answered', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = rig.h.upstream.requests.length;
    await makeClient(page, {
      stt: 'browser',
      whisper: { workerUrl: '/fake-stt-worker.js', model: 'fake/broken', fallbackToRelay: true },
    });
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    const fallback = (await waitForEvent(page, 'stt-fallback')) as {
      code: string;
      message: string;
    };
    assert.equal(fallback.code, 'stt_unavailable');
    assert.match(fallback.message, /relay/);
    const message = (await waitForEvent(page, 'message')) as { text: string };
    assert.equal(message.text, REPLY);
    assert.equal(transcriptions(mark).length, 1, 'the relay transcribed the utterance');
    const sent = await sentBy(page);
    assert.ok(sent.binary > 0);
    const starts = sent.json
      .map((s) => JSON.parse(s) as { type: string; input?: string })
      .filter((m) => m.type === 'start');
    assert.deepEqual(
      starts.map((s) => s.input),
      ['text', 'audio'],
      'a new session that accepts audio',
    );
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });

  test('the real transformers.js pipeline in the worker: a tiny random-weight Whisper, self-hosted', async () => {
    const page = await open(join(FIXTURES, '48k/hours.wav'));
    const mark = rig.h.upstream.requests.length;
    await makeClient(page, {
      stt: 'browser',
      whisper: { model: 'tiny-whisper', modelBaseUrl: '/models/', dtype: 'fp32', device: 'auto' },
    });
    const t0 = Date.now();
    await page.evaluate(() =>
      (window as unknown as { client: { start(): Promise<void> } }).client.start(),
    );
    const ready = (await waitForEvent(page, 'stt-ready', 'true', 60_000)) as {
      device: string;
      loadMs: number;
    };
    assert.equal(ready.device, 'wasm', 'headless Chromium has no WebGPU adapter');
    const progress = (await eventsOf(page, 'stt-progress')) as { percent: number; file: string }[];
    assert.ok(progress.length > 0, 'download progress was reported');
    assert.equal(progress.at(-1)?.percent, 100);
    assert.ok(
      progress.some((p) => p.file.includes('onnx/')),
      progress.map((p) => p.file).join(','),
    );
    const transcript = (await waitForEvent(page, 'transcript', 'true', 60_000)) as { text: string };
    assert.equal(typeof transcript.text, 'string');
    assert.ok(transcript.text.length > 0);
    await waitForEvent(page, 'message', 'true', 30_000);
    console.log(
      `  tiny whisper: loaded + warmed up in ${ready.loadMs} ms, first transcript after ${Date.now() - t0} ms: ${JSON.stringify(transcript.text)}`,
    );
    const sent = await sentBy(page);
    assert.equal(sent.binary, 0);
    assert.equal(transcriptions(mark).length, 0);
    assert.ok(chats(mark).some((c) => lastUser(c.body as ChatRequest) === transcript.text));
    assert.deepEqual(await eventsOf(page, 'error'), []);
    await page.evaluate(() =>
      (window as unknown as { client: { stop(): Promise<void> } }).client.stop(),
    );
  });
});
