/**
 * Real-Chromium tests of the Silero VAD (packages/sdk/src/audio/silero-vad.ts) as built for the
 * browser: packages/sdk/dist/browser/silero-vad.js (onnxruntime-web bundled in) with its assets in
 * dist/browser/vad/, all served from a loopback origin. The 16 kHz speech fixtures are cut into
 * 20 ms Int16 frames in the page and fed through `process()`, as the SDK's capture worklet does.
 *
 * Run: npx tsc -b packages/sdk && npx rollup -c &&
 *      node --conditions=source --import tsx --test test/browser/silero-vad.test.ts
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  launchChromium,
  repoRoot,
  serveStatic,
  type Browser,
  type Page,
  type StaticServer,
} from '../support/browser.js';

const SDK_BROWSER = 'packages/sdk/dist/browser';
const FIXTURES_16K = '../shared/fixtures/audio/16k';
const PRE_SPEECH_PAD_MS = 300;
const VERBOSE = process.env['VOICEBOT_TEST_VERBOSE'] === '1';
const log = (...args: unknown[]): void => {
  if (VERBOSE) console.log(...args);
};

interface EventSummary {
  type: 'speech-start' | 'speech-end' | 'misfire';
  /** End of the frame whose process() call returned the event (ms from the start of the file). */
  atMs: number;
  startMs?: number;
  endMs?: number;
  durationMs?: number;
  prerollMs?: number;
  /** The preroll equals the audio right before the frame of this call, sample for sample. */
  prerollContiguous?: boolean;
}
interface RunResult {
  events: EventSummary[];
  frames: number;
  loadMs: number;
  processMs: number;
  /** Median time of one process() call (most calls run the model once). */
  medianCallMs: number;
  maxProbability: number;
  /** Probability trace, one value per 20 ms frame (only in verbose mode). */
  trace?: number[];
}
interface LoadResult {
  ok: boolean;
  name?: string;
  message?: string;
  ms: number;
}
interface VadHarness {
  run(file: string, options: Record<string, number>, trace: boolean): Promise<RunResult>;
  tryLoad(assetBaseUrl: string): Promise<LoadResult>;
}
declare global {
  interface Window {
    vadHarness: VadHarness;
    vadHarnessReady?: boolean;
  }
}

/**
 * In-page harness (plain JS, injected as a module script: functions passed to page.evaluate are
 * kept trivial so no transpiler helpers end up in the page).
 */
const HARNESS = /* js */ `
const FRAME = 320;
const mod = await import('/silero-vad.js');

/** Mono Int16 samples of a 16-bit PCM WAV. */
function parseWav(buffer) {
  const view = new DataView(buffer);
  const tag = (o) => String.fromCharCode(view.getUint8(o), view.getUint8(o + 1), view.getUint8(o + 2), view.getUint8(o + 3));
  if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file');
  let offset = 12, channels = 1, bits = 16, rate = 0;
  while (offset + 8 <= view.byteLength) {
    const id = tag(offset), size = view.getUint32(offset + 4, true), body = offset + 8;
    if (id === 'fmt ') {
      channels = view.getUint16(body + 2, true);
      rate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
    } else if (id === 'data') {
      if (bits !== 16 || rate !== 16000) throw new Error('expected 16-bit 16 kHz PCM, got ' + bits + ' bits ' + rate + ' Hz');
      const n = Math.floor(Math.min(size, view.byteLength - body) / 2 / channels);
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(body + i * 2 * channels, true);
      return out;
    }
    offset = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}

window.vadHarness = {
  /** One VAD for all runs (reset() in between): loading it is the slow part. */
  vad: undefined,
  async run(file, options, trace) {
    const response = await fetch('/fixtures/' + file);
    if (!response.ok) throw new Error(file + ': HTTP ' + response.status);
    const pcm = parseWav(await response.arrayBuffer());
    const t0 = performance.now();
    this.vad ??= await mod.createSileroVad({ assetBaseUrl: '/vad/', ...options });
    const vad = this.vad;
    vad.reset();
    const loadMs = performance.now() - t0;
    const events = [];
    const probs = [];
    const callMs = [];
    let maxProbability = 0;
    let frames = 0;
    for (let i = 0; i + FRAME <= pcm.length; i += FRAME) {
      const frame = pcm.slice(i, i + FRAME);
      const t1 = performance.now();
      const out = await vad.process(frame);
      callMs.push(performance.now() - t1);
      frames++;
      maxProbability = Math.max(maxProbability, vad.probability);
      if (trace) probs.push(Math.round(vad.probability * 100) / 100);
      for (const e of out) {
        const summary = { type: e.type, atMs: (i + FRAME) / 16, startMs: e.startMs, endMs: e.endMs, durationMs: e.durationMs };
        if (e.type === 'speech-start') {
          const total = e.preroll.reduce((n, f) => n + f.length, 0);
          summary.prerollMs = total / 16;
          let contiguous = total <= i && !e.preroll.includes(frame);
          let at = i - total;
          for (const f of e.preroll) {
            for (let k = 0; k < f.length && contiguous; k++) if (f[k] !== pcm[at + k]) contiguous = false;
            at += f.length;
          }
          summary.prerollContiguous = contiguous;
        }
        events.push(summary);
      }
    }
    const processMs = callMs.reduce((a, b) => a + b, 0);
    // 5 calls in 8 run the model (512-sample model frames, 320-sample input frames)
    const medianCallMs = callMs.sort((a, b) => a - b)[Math.floor(callMs.length / 2)];
    return { events, frames, loadMs, processMs, medianCallMs, maxProbability, ...(trace ? { trace: probs } : {}) };
  },
  async tryLoad(assetBaseUrl) {
    const t0 = performance.now();
    try {
      const vad = await mod.createSileroVad({ assetBaseUrl });
      await vad.dispose();
      return { ok: true, ms: performance.now() - t0 };
    } catch (e) {
      return { ok: false, name: e.name, message: e.message, ms: performance.now() - t0 };
    }
  },
};
window.vadHarnessReady = true;
`;

let server: StaticServer;
let browser: Browser;
let page: Page;
let modelOnlyDir: string;
const requests: string[] = [];

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('request', (request) => {
    requests.push(request.url());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    log(`[page ${m.type()}] ${m.text()}`);
    if (m.type() === 'error' && !m.text().includes('favicon')) errors.push(m.text());
  });
  await page.goto(`${server.url}/`);
  await page.addScriptTag({ type: 'module', content: HARNESS });
  await page
    .waitForFunction(() => window.vadHarnessReady === true, { timeout: 10_000 })
    .catch((err: unknown) => {
      throw new Error(`VAD harness did not load: ${errors.join('; ') || String(err)}`);
    });
  return page;
}

before(async () => {
  await stat(join(repoRoot, SDK_BROWSER, 'silero-vad.js')).catch(() => {
    throw new Error(
      `${SDK_BROWSER}/silero-vad.js is missing: run npx tsc -b packages/sdk && npx rollup -c first`,
    );
  });
  // the model but not the ONNX runtime files: a half-deployed asset directory
  modelOnlyDir = await mkdtemp(join(tmpdir(), 'voicebot-vad-model-only-'));
  await copyFile(
    join(repoRoot, SDK_BROWSER, 'vad/silero_vad_v5.onnx'),
    join(modelOnlyDir, 'silero_vad_v5.onnx'),
  );
  server = await serveStatic({
    '/': SDK_BROWSER,
    '/fixtures': FIXTURES_16K,
    '/model-only': modelOnlyDir,
  });
  browser = await launchChromium();
  page = await openPage();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (modelOnlyDir) await rm(modelOnlyDir, { recursive: true, force: true });
});

describe('Silero VAD build', () => {
  test('vad/ holds the v5 model and only the plain WebAssembly backend of onnxruntime-web', async () => {
    // (the build also writes .br/.gz variants beside each file for the relay to serve)
    const files = (await readdir(join(repoRoot, SDK_BROWSER, 'vad')))
      .filter((f) => !/\.(br|gz)$/.test(f))
      .sort();
    assert.deepEqual(files, [
      'ort-wasm-simd-threaded.mjs',
      'ort-wasm-simd-threaded.wasm',
      'silero_vad_v5.onnx',
    ]);
  });

  test('onnxruntime-web stays out of the SDK entry (lazy chunk only)', async () => {
    const entry = await readFile(join(repoRoot, SDK_BROWSER, 'voice-bot-sdk.js'), 'utf8');
    assert.ok(
      !entry.includes('InferenceSession'),
      'voice-bot-sdk.js must not contain onnxruntime-web',
    );
    const standalone = await readFile(join(repoRoot, SDK_BROWSER, 'silero-vad.js'), 'utf8');
    assert.ok(standalone.includes('InferenceSession'));
  });
});

// Runs first, in the page the fixtures use afterwards: onnxruntime-web keeps global state per page
// and a failed WebAssembly initialisation is permanent, so the failures must not poison it.
describe('Silero VAD loading failures', () => {
  test('a wrong assetBaseUrl rejects quickly with VadUnavailableError', async () => {
    const result = await page.evaluate(
      (base) => window.vadHarness.tryLoad(base),
      `${server.url}/no-such-dir/`,
    );
    log('wrong base:', result);
    assert.equal(result.ok, false);
    assert.equal(result.name, 'VadUnavailableError');
    assert.match(result.message ?? '', /silero_vad_v5\.onnx.*404/);
    assert.ok(result.ms < 3000, `rejected after ${result.ms} ms`);
  });

  test('missing runtime files reject with VadUnavailableError without poisoning onnxruntime-web', async () => {
    const missing = await page.evaluate(() => window.vadHarness.tryLoad('/model-only/'));
    log('model only:', missing);
    assert.equal(missing.ok, false);
    assert.equal(missing.name, 'VadUnavailableError');
    assert.match(missing.message ?? '', /ort-wasm-simd-threaded\.(mjs|wasm).*404/);
    assert.ok(missing.ms < 3000, `rejected after ${missing.ms} ms`);
    // the same page can still load the VAD from the right place (relative URL, no trailing slash)
    const ok = await page.evaluate(() => window.vadHarness.tryLoad('/vad'));
    log('then:', ok);
    assert.equal(ok.ok, true, ok.message);
  });
});

describe('Silero VAD in Chromium', () => {
  const expected: [file: string, utterances: number][] = [
    ['hours.wav', 1],
    ['weather.wav', 1],
    ['book.wav', 1],
    ['stop.wav', 1],
    ['two-turns.wav', 2],
    ['barge-in.wav', 2],
    ['silence.wav', 0],
    ['noise.wav', 0],
  ];
  for (const [file, utterances] of expected) {
    test(`${file}: ${utterances} utterance(s)`, async () => {
      const result = await page.evaluate(
        (f, pad, trace) => window.vadHarness.run(f, { preSpeechPadMs: pad }, trace),
        file,
        PRE_SPEECH_PAD_MS,
        VERBOSE,
      );
      log(file, JSON.stringify({ ...result, trace: undefined }));
      if (result.trace) log(file, 'p per 20 ms:', result.trace.join(' '));
      const ends = result.events.filter((e) => e.type === 'speech-end');
      const starts = result.events.filter((e) => e.type === 'speech-start');
      assert.equal(
        ends.length,
        utterances,
        `speech-end events in ${file}: ${JSON.stringify(result.events)}`,
      );
      assert.equal(
        starts.length,
        utterances,
        `speech-start events in ${file}: ${JSON.stringify(result.events)}`,
      );
      assert.ok(!result.events.some((e) => e.type === 'misfire'), `no misfire in ${file}`);
      // events alternate start, end, start, end …
      result.events.forEach((e, i) =>
        assert.equal(e.type, i % 2 === 0 ? 'speech-start' : 'speech-end'),
      );
      // real-time capable with a wide margin (a model frame is 32 ms of audio; typically 1-3 ms here,
      // the median keeps a loaded CI machine's hiccups out of it)
      assert.ok(
        result.medianCallMs < 10,
        `median process() call ${result.medianCallMs.toFixed(1)} ms`,
      );
      if (utterances === 0) {
        assert.ok(result.maxProbability < 0.5, `max probability ${result.maxProbability}`);
        return;
      }
      const first = starts[0];
      assert.ok(first);
      // every fixture has 0.6 s of silence before the speech
      assert.ok(
        Math.abs(first.atMs - 600) <= 200,
        `first speech-start emitted at ${first.atMs} ms`,
      );
      assert.ok(
        first.startMs !== undefined && Math.abs(first.startMs - 600) <= 200,
        `first onset at ${first.startMs} ms`,
      );
      for (const start of starts) {
        assert.ok(start.startMs !== undefined && start.prerollMs !== undefined);
        assert.equal(
          start.prerollContiguous,
          true,
          'preroll = the audio just before the current frame, which it excludes',
        );
        assert.ok(
          start.prerollMs >= PRE_SPEECH_PAD_MS,
          `preroll ${start.prerollMs} ms < ${PRE_SPEECH_PAD_MS} ms`,
        );
        // …and it reaches back at least preSpeechPadMs before the onset
        const prerollFromMs = start.atMs - 20 - start.prerollMs;
        assert.ok(
          prerollFromMs <= start.startMs - PRE_SPEECH_PAD_MS,
          `preroll starts at ${prerollFromMs} ms, onset ${start.startMs} ms`,
        );
      }
      for (const end of ends) {
        assert.ok(
          end.durationMs !== undefined && end.durationMs > 250,
          `speech-end durationMs ${end.durationMs}`,
        );
      }
      if (utterances === 2) {
        const second = starts[1];
        assert.ok(
          second?.startMs !== undefined && second.startMs > 5500,
          `second onset at ${second?.startMs} ms`,
        );
      }
    });
  }
});

describe('network', () => {
  test('every request stayed on the loopback server', () => {
    assert.ok(requests.length > 0);
    log('requests:', [...new Set(requests)].join('\n  '));
    const outside = requests.filter(
      (url) => !url.startsWith(`${server.url}/`) && !url.startsWith('data:'),
    );
    assert.deepEqual(outside, []);
    assert.ok(requests.some((url) => url.endsWith('/vad/ort-wasm-simd-threaded.wasm')));
    assert.ok(requests.some((url) => url.endsWith('/vad/silero_vad_v5.onnx')));
  });
});
