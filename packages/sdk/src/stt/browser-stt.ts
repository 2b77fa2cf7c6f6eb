/**
 * In-browser speech recognition, main-thread side: starts the Whisper worker (a module worker
 * from the file beside the bundle), loads the model with a time limit, reports download progress
 * and runs one transcription at a time. Free of transformers.js itself, which only the worker
 * imports.
 */
import { VoiceBotError } from '../errors.js';
import type { SttRequest, SttResponse, WhisperDevice, WhisperDtype } from './protocol.js';

export type { WhisperDevice, WhisperDtype } from './protocol.js';

export const DEFAULT_WHISPER_MODEL = 'onnx-community/whisper-tiny.en';

export interface WhisperOptions {
  /** Model id: a folder under `modelBaseUrl` (default `onnx-community/whisper-tiny.en`). */
  model?: string;
  /**
   * Where self-hosted models live (default `models/` beside the bundle, e.g. `/widget/models/`);
   * relative to `assetBaseUrl`. Another origin must send CORS headers.
   */
  modelBaseUrl?: string | URL;
  /** Fall back to the Hugging Face hub when a file is not self-hosted (default false). */
  allowRemoteModels?: boolean;
  /**
   * Keep model files and onnxruntime's wasm in the Cache API (`voice-bot-stt`), so the next visit
   * downloads nothing (default true).
   */
  cache?: boolean;
  /** Weights precision, for all modules or per module (default: transformers.js' choice). */
  dtype?: WhisperDtype | Record<string, WhisperDtype>;
  /** `auto` (default): WebGPU when an adapter exists, else WebAssembly. */
  device?: WhisperDevice;
  /** Spoken language for multilingual models; English-only (`*.en`) models ignore it. */
  language?: string;
  /** When the model cannot load, send audio to the relay's STT instead (default false). */
  fallbackToRelay?: boolean;
  /** Give up loading (download, compile, warm-up) after this long (default 60 000 ms). */
  loadTimeoutMs?: number;
  /**
   * The worker script (default `stt-worker.js` beside the bundle). From another origin it is
   * imported by a `blob:` module worker, which needs CORS on the script (the relay sends it).
   */
  workerUrl?: string | URL;
  /** onnxruntime-web's wasm files (default `stt/` beside the bundle). */
  wasmBaseUrl?: string | URL;
}

export interface SttProgress {
  /** Bytes downloaded so far over all model files seen so far (files from the cache count none). */
  loaded: number;
  total: number;
  /** 0..100. */
  percent: number;
  /** The file that progressed, relative to the model folder. */
  file: string;
}

export interface BrowserSttOptions extends WhisperOptions {
  /** Base the default URLs resolve against (the SDK's asset base). */
  assetBaseUrl: string | URL;
  onProgress?: (progress: SttProgress) => void;
}

/** Joins 16-bit PCM frames into one Float32 buffer in [-1, 1]. */
export function pcm16ToFloat32(frames: readonly Int16Array[]): Float32Array {
  const length = frames.reduce((n, f) => n + f.length, 0);
  const out = new Float32Array(length);
  let offset = 0;
  for (const frame of frames) {
    for (let i = 0; i < frame.length; i++) out[offset + i] = (frame[i] ?? 0) / 32768;
    offset += frame.length;
  }
  return out;
}

const dir = (url: URL): string => (url.href.endsWith('/') ? url.href : `${url.href}/`);

/**
 * A module worker from the script's own URL when it is on the page's origin (`worker-src 'self'`
 * suffices). A page may not start a worker from another origin's script, so then a `blob:` module
 * (the page's origin) imports it instead; `revoke` frees that URL once the worker is running.
 */
function startWorker(url: URL): { worker: Worker; revoke: () => void } {
  const options: WorkerOptions = { type: 'module', name: 'voice-bot-stt' };
  if (url.origin === location.origin) return { worker: new Worker(url, options), revoke: () => undefined };
  const shim = URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};\n`], { type: 'text/javascript' }));
  try {
    return { worker: new Worker(shim, options), revoke: () => URL.revokeObjectURL(shim) };
  } catch (error) {
    URL.revokeObjectURL(shim);
    throw error;
  }
}

export class BrowserStt {
  private worker: Worker | undefined;
  private loading: Promise<{ device: 'webgpu' | 'wasm'; loadMs: number }> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (text: string) => void; reject: (error: VoiceBotError) => void }>();
  private failure: VoiceBotError | undefined;

  constructor(private readonly options: BrowserSttOptions) {}

  get model(): string {
    return this.options.model ?? DEFAULT_WHISPER_MODEL;
  }

  /** Starts the worker and loads the model (once). Rejects with `stt_unavailable`. */
  load(): Promise<{ device: 'webgpu' | 'wasm'; loadMs: number }> {
    this.loading ??= this.startLoading();
    return this.loading;
  }

  private startLoading(): Promise<{ device: 'webgpu' | 'wasm'; loadMs: number }> {
    const base = new URL(this.options.assetBaseUrl, location.href);
    const timeoutMs = this.options.loadTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      let revoke = (): void => undefined;
      const fail = (message: string, cause?: unknown): void => {
        clearTimeout(timer);
        revoke();
        this.failure = new VoiceBotError('stt_unavailable', `In-browser speech recognition is unavailable: ${message}`, { cause });
        this.teardown(this.failure);
        reject(this.failure);
      };
      const timer = setTimeout(() => fail(`the model did not load within ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
      let worker: Worker;
      try {
        ({ worker, revoke } = startWorker(new URL(this.options.workerUrl ?? 'stt-worker.js', base)));
      } catch (error) {
        fail('the worker could not start', error);
        return;
      }
      this.worker = worker;
      worker.addEventListener('error', (event) => {
        event.preventDefault();
        fail(event.message || 'the worker script failed to load', event.error);
      });
      worker.addEventListener('message', (event: MessageEvent<SttResponse>) => {
        revoke();
        const message = event.data;
        switch (message.type) {
          case 'progress':
            this.options.onProgress?.({ loaded: message.loaded, total: message.total, percent: message.percent, file: message.file });
            return;
          case 'ready':
            clearTimeout(timer);
            resolve({ device: message.device, loadMs: message.loadMs });
            return;
          case 'load-error':
            fail(message.message);
            return;
          case 'result':
            this.settle(message.id, message.text);
            return;
          case 'transcribe-error':
            this.settle(message.id, new VoiceBotError('stt_unavailable', `Speech recognition failed: ${message.message}`));
            return;
        }
      });
      const request: SttRequest = {
        type: 'load',
        model: this.model,
        modelBaseUrl: dir(new URL(this.options.modelBaseUrl ?? 'models/', base)),
        allowRemoteModels: this.options.allowRemoteModels ?? false,
        cache: this.options.cache ?? true,
        wasmPaths: dir(new URL(this.options.wasmBaseUrl ?? 'stt/', base)),
        device: this.options.device ?? 'auto',
        ...(this.options.dtype ? { dtype: this.options.dtype } : {}),
        ...(this.options.language ? { language: this.options.language } : {}),
      };
      worker.postMessage(request);
    });
  }

  private settle(id: number, result: string | VoiceBotError): void {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    if (typeof result === 'string') waiter.resolve(result);
    else waiter.reject(result);
  }

  /**
   * Transcribes 16 kHz mono audio. Waits for the model; calls queue up so only one inference runs
   * at a time, in order.
   */
  transcribe(audio: Float32Array): Promise<string> {
    const run = async (): Promise<string> => {
      await this.load();
      const worker = this.worker;
      if (!worker || this.failure) throw this.failure ?? new VoiceBotError('stt_unavailable', 'Speech recognition was stopped.');
      const id = this.nextId++;
      const done = new Promise<string>((resolve, reject) => this.pending.set(id, { resolve, reject }));
      const request: SttRequest = { type: 'transcribe', id, audio };
      worker.postMessage(request, [audio.buffer as ArrayBuffer]);
      return done;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private teardown(error: VoiceBotError): void {
    this.worker?.terminate();
    this.worker = undefined;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** Stops the worker; pending transcriptions reject. */
  dispose(): void {
    this.failure ??= new VoiceBotError('stt_unavailable', 'Speech recognition was stopped.');
    this.teardown(this.failure);
  }
}
