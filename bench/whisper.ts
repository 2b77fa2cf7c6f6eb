/**
 * In-browser Whisper (issue #7) on WebAssembly in headless Chromium: the SDK's `stt: 'browser'`
 * path (a module worker running transformers.js), served by a relay with `staticDirs` like the
 * other browser benchmarks.
 *
 * - Through the client (fake microphone looping `48k/hours.wav`, energy VAD): model load +
 *   warm-up (the worker's `ready.loadMs`, and `start()` → `stt-ready` in the page), then for each
 *   utterance that ends once the model is ready: end of speech (the VAD's speech-end, when the
 *   client turns to `thinking`) → `transcript` event, and the last loud captured sample →
 *   `transcript` (adds the VAD's 700 ms end-of-speech silence).
 * - Directly with `BrowserStt` on the 16 kHz fixtures (silence trimmed as the load generator does:
 *   300 ms kept before the speech, 500 ms after): inference ms per utterance (the worker's own
 *   figure) and RTF = inference time ÷ audio duration.
 *
 * Models: the random-weight test model in test/fixtures/tiny-whisper (always; it measures the
 * pipeline — worker, feature extraction, onnxruntime-web — not Whisper's accuracy or its real
 * compute), and a real model when `VOICEBOT_WHISPER_MODEL_DIR` points at a folder holding it, as
 * test/browser/whisper-real-model.test.ts takes it: a model base with
 * `onnx-community/whisper-tiny.en/` (config.json, tokenizer files, `onnx/`) in it, or that model
 * folder itself; `VOICEBOT_WHISPER_MODEL` picks another model id, `VOICEBOT_WHISPER_DTYPE` its
 * weights (default: transformers.js' choice).
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from '../test/support/browser.js';
import { startPageRelay, withBenchPage } from './bench-page.js';
import {
  FIXTURES,
  REPO_ROOT,
  machineBusyMs,
  readWavPcm,
  summarize,
  type Summary,
} from './common.js';
import { trimSilence } from './loadgen.js';

export interface WhisperUtterance {
  audioS: number;
  /** VAD end of speech → `transcript` event */
  endOfSpeechToTranscriptMs: number;
  /** last loud captured sample → `transcript` event */
  lastSpeechToTranscriptMs: number | undefined;
  /** the worker's inference time */
  inferenceMs: number | undefined;
  text: string;
}

export interface WhisperDirect {
  fixture: string;
  audioS: number;
  inferenceMs: number;
  /** `BrowserStt.transcribe()` as the page sees it */
  wallMs: number;
  rtf: number;
  text: string;
}

export interface WhisperModelResult {
  label: string;
  kind: 'test' | 'real';
  model: string;
  dtype: string | undefined;
  device: string | undefined;
  /** the worker's `ready.loadMs`: download, session creation and a 1 s warm-up inference */
  loadMs: number | undefined;
  /** `start()` → the model files' download progress reached 100 % (`stt-progress`) */
  startToDownloadedMs: number | undefined;
  /** `start()` → `stt-ready` in the page */
  startToReadyMs: number | undefined;
  /** `start()` → first `transcript` (whatever the model's state when the visitor spoke) */
  startToFirstTranscriptMs: number | undefined;
  utterances: WhisperUtterance[];
  endOfSpeechToTranscript: Summary;
  lastSpeechToTranscript: Summary;
  clientInference: Summary;
  /** inference ÷ audio duration of the client's utterances */
  clientRtf: Summary;
  /** second load in the same page, for the direct runs */
  directLoadMs: number | undefined;
  direct: WhisperDirect[];
  inference: Summary;
  rtf: Summary;
  loadStart: string;
  loadEnd: string;
  /** CPU cores busy on the whole machine while measuring (this benchmark's Chromium included) */
  machineBusyCores?: number | undefined;
  error?: string;
}

export interface WhisperReport {
  chromium: string;
  models: WhisperModelResult[];
  /** why no real model was measured */
  realModelNote: string | undefined;
}

interface Timeline {
  states: { t: number; state: string; lastLoud: { t: number } | undefined }[];
  transcripts: { t: number; text: string }[];
  errors: { code: string; message: string }[];
  worker: {
    ready: { t: number; loadMs: number; device: string }[];
    results: { t: number; id: number; ms: number; text: string }[];
    transcribes: { t: number; id: number; samples: number }[];
  };
}

interface ModelSpec {
  label: string;
  kind: 'test' | 'real';
  model: string;
  modelBaseUrl: string;
  dtype: string | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const LOOP_S = 5.93; // 48k/hours.wav

/**
 * One utterance per transcription request the client posted to the worker: its end of speech is
 * the client's `user-speaking` → `thinking` just before the request (a model still loading holds
 * the request back: those utterances are left out, the model was not ready), its transcript the
 * first `transcript` event after the worker's result.
 */
function pairUtterances(tl: Timeline, readyAt: number): WhisperUtterance[] {
  const out: WhisperUtterance[] = [];
  const ends = tl.states.filter(
    (s, i) => s.state === 'thinking' && tl.states[i - 1]?.state === 'user-speaking',
  );
  for (const request of tl.worker.transcribes) {
    const end = ends.filter((e) => e.t <= request.t).at(-1);
    if (!end || end.t < readyAt || request.t - end.t > 500) continue;
    const result = tl.worker.results.find((r) => r.id === request.id);
    const transcript = result ? tl.transcripts.find((t) => t.t >= result.t) : undefined;
    if (!result || !transcript) continue;
    out.push({
      audioS: request.samples / 16_000,
      endOfSpeechToTranscriptMs: transcript.t - end.t,
      lastSpeechToTranscriptMs: end.lastLoud ? transcript.t - end.lastLoud.t : undefined,
      inferenceMs: result.ms,
      text: transcript.text,
    });
  }
  return out;
}

function base64Pcm(fixture: string): { b64: string; audioS: number } {
  const pcm = trimSilence(readWavPcm(join(FIXTURES, `16k/${fixture}.wav`)).pcm);
  return {
    b64: Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64'),
    audioS: pcm.byteLength / 32_000,
  };
}

async function timeline(page: Page): Promise<Timeline> {
  return (await page.evaluate(
    () => (window as unknown as { __timeline: unknown }).__timeline,
  )) as Timeline;
}

async function measureModel(
  page: Page,
  relayUrl: string,
  key: string,
  spec: ModelSpec,
  o: { utterances: number; fixtures: string[]; repeats: number },
): Promise<WhisperModelResult> {
  const loadStart = load();
  const busyStart = machineBusyMs();
  const t0 = performance.now();
  const whisper = {
    model: spec.model,
    modelBaseUrl: spec.modelBaseUrl,
    ...(spec.dtype ? { dtype: spec.dtype } : {}),
    loadTimeoutMs: 120_000,
  };
  const started = (await page.evaluate(
    async (relayUrl, clientKey, whisper) => {
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const w = window as unknown as {
        __client: unknown;
        __sttReady: unknown;
        __timelineAttach(client: unknown): void;
      };
      const client = new sdk.VoiceBotClient({
        relayUrl,
        clientKey,
        assetBaseUrl: '/sdk/',
        persistence: false,
        vad: { model: 'energy' },
        stt: 'browser',
        whisper,
      });
      w.__timelineAttach(client);
      client.on(
        'stt-ready',
        (info: { device: string; loadMs: number }) =>
          (w.__sttReady = { t: performance.timeOrigin + performance.now(), ...info }),
      );
      client.on('stt-progress', (p: { percent: number }) => {
        const x = window as unknown as { __sttDownloaded?: number };
        if (p.percent >= 100 && x.__sttDownloaded === undefined)
          x.__sttDownloaded = performance.timeOrigin + performance.now();
      });
      w.__client = client;
      const t = performance.timeOrigin + performance.now();
      await client.start();
      return t;
    },
    relayUrl,
    key,
    whisper,
  )) as number;
  const readyHandle = await page.waitForFunction(
    () => (window as unknown as { __sttReady?: unknown }).__sttReady,
    { timeout: 150_000, polling: 100 },
  );
  const ready = (await readyHandle.jsonValue()) as { t: number; device: string; loadMs: number };
  const downloaded = (await page.evaluate(
    () => (window as unknown as { __sttDownloaded?: number }).__sttDownloaded,
  )) as number | undefined;
  const deadline = performance.now() + (o.utterances + 2) * LOOP_S * 1000 + 20_000;
  let tl = await timeline(page);
  while (pairUtterances(tl, ready.t).length < o.utterances && performance.now() < deadline) {
    await sleep(250);
    tl = await timeline(page);
  }
  await page
    .evaluate(() => (window as unknown as { __client: { stop(): Promise<void> } }).__client.stop())
    .catch(() => undefined);
  const utterances = pairUtterances(tl, ready.t).slice(0, o.utterances);
  const firstTranscript = tl.transcripts[0];

  // Direct: a fresh BrowserStt on the fixtures (none in a quick run).
  const inputs = o.fixtures.map((fixture) => ({ fixture, ...base64Pcm(fixture) }));
  const direct =
    inputs.length === 0
      ? { loadMs: undefined, runs: [] }
      : ((await page.evaluate(
          async (whisper, inputs, repeats) => {
            const sdk = await import('/sdk/voice-bot-sdk.js' as string);
            const tl = (window as unknown as { __timeline: Timeline }).__timeline;
            const stt = new sdk.BrowserStt({ assetBaseUrl: '/sdk/', ...whisper });
            const loaded = (await stt.load()) as { loadMs: number };
            const runs: {
              fixture: string;
              wallMs: number;
              workerMs: number | undefined;
              samples: number;
              text: string;
            }[] = [];
            for (let r = 0; r < repeats; r++) {
              for (const input of inputs) {
                const bytes = Uint8Array.from(atob(input.b64), (c) => c.charCodeAt(0));
                const pcm = new Int16Array(bytes.buffer);
                const audio = new Float32Array(pcm.length);
                for (let i = 0; i < pcm.length; i++) audio[i] = (pcm[i] as number) / 32768;
                const before = tl.worker.results.length;
                const t0 = performance.now();
                const text = (await stt.transcribe(audio)) as string;
                const wallMs = performance.now() - t0;
                runs.push({
                  fixture: input.fixture,
                  wallMs,
                  workerMs: tl.worker.results[before]?.ms,
                  samples: pcm.length,
                  text,
                });
              }
            }
            stt.dispose();
            return { loadMs: loaded.loadMs, runs };
          },
          whisper,
          inputs.map(({ fixture, b64 }) => ({ fixture, b64 })),
          o.repeats,
        )) as {
          loadMs: number | undefined;
          runs: {
            fixture: string;
            wallMs: number;
            workerMs: number | undefined;
            samples: number;
            text: string;
          }[];
        });
  const directRuns: WhisperDirect[] = direct.runs.map((r) => {
    const audioS = r.samples / 16_000;
    const inferenceMs = r.workerMs ?? r.wallMs;
    return {
      fixture: r.fixture,
      audioS,
      inferenceMs,
      wallMs: r.wallMs,
      rtf: inferenceMs / 1000 / audioS,
      text: r.text,
    };
  });
  const defined = (xs: (number | undefined)[]) =>
    xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return {
    label: spec.label,
    kind: spec.kind,
    model: spec.model,
    dtype: spec.dtype,
    device: ready.device,
    loadMs: ready.loadMs,
    startToDownloadedMs: downloaded !== undefined ? downloaded - started : undefined,
    startToReadyMs: ready.t - started,
    startToFirstTranscriptMs: firstTranscript ? firstTranscript.t - started : undefined,
    utterances,
    endOfSpeechToTranscript: summarize(utterances.map((u) => u.endOfSpeechToTranscriptMs)),
    lastSpeechToTranscript: summarize(defined(utterances.map((u) => u.lastSpeechToTranscriptMs))),
    clientInference: summarize(defined(utterances.map((u) => u.inferenceMs))),
    clientRtf: summarize(
      defined(
        utterances.map((u) =>
          u.inferenceMs !== undefined ? u.inferenceMs / 1000 / u.audioS : undefined,
        ),
      ),
    ),
    directLoadMs: direct.loadMs,
    direct: directRuns,
    inference: summarize(directRuns.map((r) => r.inferenceMs)),
    rtf: summarize(directRuns.map((r) => r.rtf)),
    loadStart,
    loadEnd: load(),
    machineBusyCores: ((end) =>
      busyStart !== undefined && end !== undefined
        ? (end - busyStart) / (performance.now() - t0)
        : undefined)(machineBusyMs()),
    ...(tl.errors.length > 0
      ? { error: tl.errors.map((e) => `${e.code}: ${e.message}`).join('; ') }
      : {}),
  };
}

export async function measureWhisper(options: {
  utterances: number;
  fixtures: string[];
  repeats: number;
  realModelDir?: string | undefined;
}): Promise<WhisperReport> {
  // A model base holding `<model id>/`, or the model folder itself (as the real-model test takes it).
  const modelId = process.env['VOICEBOT_WHISPER_MODEL'] || 'onnx-community/whisper-tiny.en';
  const realDir = options.realModelDir ? resolve(options.realModelDir) : undefined;
  const realMount =
    realDir === undefined
      ? undefined
      : existsSync(join(realDir, modelId, 'config.json'))
        ? { urlPath: '/real-models/', dir: realDir }
        : existsSync(join(realDir, 'config.json'))
          ? { urlPath: `/real-models/${modelId}/`, dir: realDir }
          : undefined;
  const specs: ModelSpec[] = [
    {
      label: 'tiny-whisper (random weights, d_model 8: the test fixture)',
      kind: 'test',
      model: 'tiny-whisper',
      modelBaseUrl: '/models/',
      dtype: 'fp32',
    },
  ];
  if (realMount)
    specs.push({
      label: modelId,
      kind: 'real',
      model: modelId,
      modelBaseUrl: '/real-models/',
      dtype: process.env['VOICEBOT_WHISPER_DTYPE'] || undefined,
    });
  const { h, key } = await startPageRelay(
    { chat: () => ({ content: 'We open at ten on Saturday.' }) },
    [
      { urlPath: '/models/', dir: join(REPO_ROOT, 'test/fixtures') },
      ...(realMount ? [realMount] : []),
    ],
  );
  const models: WhisperModelResult[] = [];
  let chromium = '';
  try {
    for (const spec of specs) {
      try {
        // a fresh profile per model: its first load is a first visit (nothing cached)
        const result = await withBenchPage(
          `${h.url}/timeline.html`,
          join(FIXTURES, '48k/hours.wav'),
          (page, version) => {
            chromium = version;
            return measureModel(page, h.url, key, spec, options);
          },
        );
        models.push(result);
      } catch (error) {
        models.push({
          label: spec.label,
          kind: spec.kind,
          model: spec.model,
          dtype: spec.dtype,
          device: undefined,
          loadMs: undefined,
          startToDownloadedMs: undefined,
          startToReadyMs: undefined,
          startToFirstTranscriptMs: undefined,
          utterances: [],
          endOfSpeechToTranscript: summarize([]),
          lastSpeechToTranscript: summarize([]),
          clientInference: summarize([]),
          clientRtf: summarize([]),
          directLoadMs: undefined,
          direct: [],
          inference: summarize([]),
          rtf: summarize([]),
          loadStart: load(),
          loadEnd: load(),
          error: (error as Error).message,
        });
      }
    }
  } finally {
    await h.close();
  }
  return {
    chromium,
    models,
    realModelNote: !options.realModelDir
      ? `not run: set VOICEBOT_WHISPER_MODEL_DIR to a folder holding a self-hosted ${modelId} (config.json, tokenizer files, onnx/); this machine reaches no model hub`
      : !realMount
        ? `not run: ${options.realModelDir} holds neither ${modelId}/config.json nor config.json`
        : undefined,
  };
}
