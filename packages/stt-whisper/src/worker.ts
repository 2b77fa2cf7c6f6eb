/**
 * The speech-recognition worker: transformers.js Whisper (`automatic-speech-recognition`) off the
 * main thread. The build bundles it, transformers.js included, into `dist/stt-worker.js`, a
 * self-contained module the page starts from its URL: only this file (and worker-assets.ts) import
 * `@huggingface/transformers`, which is therefore a build-time dependency only.
 */
import { pipeline } from '@huggingface/transformers';
import type { SttLoadMessage, SttRequest, SttResponse, WhisperDtype } from './protocol.js';
import { openCache, releaseWasmBytes, useModelBase, useWasm } from './worker-assets.js';

interface WorkerScope {
  postMessage(message: SttResponse): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<SttRequest>) => void): void;
}
const scope = self as unknown as WorkerScope;

type Transcriber = (
  audio: Float32Array,
  options: Record<string, unknown>,
) => Promise<{ text: string } | { text: string }[]>;

let transcriber: Transcriber | undefined;
let loadOptions: SttLoadMessage | undefined;
/** One inference at a time, in arrival order. */
let queue: Promise<void> = Promise.resolve();

async function pickDevice(requested: SttLoadMessage['device']): Promise<'webgpu' | 'wasm'> {
  if (requested !== 'auto') return requested;
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = await gpu?.requestAdapter().catch(() => null);
  return adapter ? 'webgpu' : 'wasm';
}

function transcribeOptions(
  model: string,
  language: string | undefined,
  samples: number,
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  // English-only checkpoints refuse a language or task.
  if (language && !model.endsWith('.en')) {
    options['language'] = language;
    options['task'] = 'transcribe';
  }
  if (samples > 30 * 16_000) {
    options['chunk_length_s'] = 30;
    options['stride_length_s'] = 5;
  }
  return options;
}

async function load(message: SttLoadMessage): Promise<void> {
  const started = performance.now();
  const cache = await openCache(message.cache);
  const modelBase = new URL(message.modelBaseUrl);
  const modelFolder = new URL(`${message.model}/`, modelBase).href;
  const files = new Map<string, { loaded: number; total: number }>();
  let lastPercent = -1;
  const onBytes = (url: string, loaded: number, total: number): void => {
    files.set(url, { loaded, total });
    let sumLoaded = 0;
    let sumTotal = 0;
    for (const f of files.values()) {
      sumLoaded += f.loaded;
      sumTotal += f.total;
    }
    const percent = sumTotal > 0 ? Math.min(100, Math.floor((sumLoaded / sumTotal) * 100)) : 0;
    const done = loaded === total;
    if (percent === lastPercent && !done) return;
    lastPercent = percent;
    const file = url.startsWith(modelFolder) ? url.slice(modelFolder.length) : url;
    scope.postMessage({ type: 'progress', file, loaded: sumLoaded, total: sumTotal, percent });
  };
  useModelBase(modelBase, message.allowRemoteModels, cache, onBytes);
  await useWasm(message.wasmPaths, cache);
  let device = await pickDevice(message.device);
  const create = (d: 'webgpu' | 'wasm') =>
    pipeline('automatic-speech-recognition', message.model, {
      device: d,
      ...(message.dtype ? { dtype: message.dtype as WhisperDtype } : {}),
    }) as unknown as Promise<Transcriber>;
  try {
    transcriber = await create(device);
  } catch (error) {
    if (device !== 'webgpu') throw error;
    device = 'wasm'; // an adapter that cannot run the model: the CPU path still can
    transcriber = await create(device);
  }
  releaseWasmBytes();
  loadOptions = message;
  // Warm-up: the first run compiles kernels and allocates; do it before the visitor speaks.
  await transcriber(new Float32Array(16_000), { max_new_tokens: 4 });
  scope.postMessage({ type: 'ready', device, loadMs: Math.round(performance.now() - started) });
}

scope.addEventListener('message', (event) => {
  const message = event.data;
  if (message.type === 'load') {
    queue = queue.then(() =>
      load(message).catch((error: unknown) => {
        transcriber = undefined;
        scope.postMessage({
          type: 'load-error',
          message: error instanceof Error ? error.message : String(error),
        });
      }),
    );
    return;
  }
  if (message.type === 'transcribe') {
    queue = queue.then(async () => {
      const started = performance.now();
      try {
        if (!transcriber || !loadOptions)
          throw new Error('the speech recognition model is not loaded');
        const output = await transcriber(
          message.audio,
          transcribeOptions(loadOptions.model, loadOptions.language, message.audio.length),
        );
        const text = (
          Array.isArray(output) ? output.map((o) => o.text).join(' ') : output.text
        ).trim();
        scope.postMessage({
          type: 'result',
          id: message.id,
          text,
          ms: Math.round(performance.now() - started),
        });
      } catch (error) {
        scope.postMessage({
          type: 'transcribe-error',
          id: message.id,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    });
  }
});
