/**
 * In-browser speech recognition, main-thread side: starts the Whisper worker (a module worker
 * from `stt-worker.js`, beside this module), loads the model with a time limit, reports download
 * progress and runs one transcription at a time. Free of transformers.js itself, which only the
 * worker contains.
 */
import {
  DEFAULT_WHISPER_MODEL,
  VoiceBotError,
  type SpeechRecognizer,
  type SpeechRecognizerOptions,
} from '@voice-bot/sdk';
import type { SttRequest, SttResponse } from './protocol.js';

export type BrowserSttOptions = SpeechRecognizerOptions;

/** onnxruntime-web's build that transformers.js runs, as the build copies it into `stt/`. */
const ORT_BASENAME = 'ort-wasm-simd-threaded.asyncify';

/**
 * The files this module needs, beside it in `dist/` (`stt-worker.js`, `stt/`). Written as
 * `new URL('./…', import.meta.url)` so that Vite, webpack (and Rollup with an import-meta-assets
 * plugin) emit them with the app; a bundler may rename them, so the worker gets both wasm URLs.
 */
function ownFiles(): { worker: URL; mjs: URL; wasm: URL } {
  return {
    worker: new URL('./stt-worker.js', import.meta.url),
    mjs: new URL('./stt/ort-wasm-simd-threaded.asyncify.mjs', import.meta.url),
    wasm: new URL('./stt/ort-wasm-simd-threaded.asyncify.wasm', import.meta.url),
  };
}

const dir = (url: URL): string => (url.href.endsWith('/') ? url.href : `${url.href}/`);

/**
 * A module worker from the script's own URL when it is on the page's origin (`worker-src 'self'`
 * suffices). A page may not start a worker from another origin's script, so then a `blob:` module
 * (the page's origin) imports it instead; `revoke` frees that URL once the worker is running.
 */
function startWorker(url: URL): { worker: Worker; revoke: () => void } {
  const options: WorkerOptions = { type: 'module', name: 'voice-bot-stt' };
  if (url.origin === location.origin)
    return { worker: new Worker(url, options), revoke: () => undefined };
  const shim = URL.createObjectURL(
    new Blob([`import ${JSON.stringify(url.href)};\n`], { type: 'text/javascript' }),
  );
  try {
    return { worker: new Worker(shim, options), revoke: () => URL.revokeObjectURL(shim) };
  } catch (error) {
    URL.revokeObjectURL(shim);
    throw error;
  }
}

export class BrowserStt implements SpeechRecognizer {
  private worker: Worker | undefined;
  private loading: Promise<{ device: 'webgpu' | 'wasm'; loadMs: number }> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (text: string) => void; reject: (error: VoiceBotError) => void }
  >();
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
    // With the SDK's `assetBaseUrl` the self-hosted layout applies: stt-worker.js, stt/, models/ under
    // it (relative options resolve against it too). Without one: this package's own files, models
    // in /models/ on the page's origin, relative options against the page.
    const assetBase =
      this.options.assetBaseUrl === undefined
        ? undefined
        : new URL(this.options.assetBaseUrl, location.href);
    const base = assetBase ?? new URL(location.href);
    const wasmFolder = this.options.wasmBaseUrl ?? (assetBase ? 'stt/' : undefined);
    const own = ownFiles();
    const wasmPaths = wasmFolder
      ? {
          mjs: new URL(`${ORT_BASENAME}.mjs`, dir(new URL(wasmFolder, base))).href,
          wasm: new URL(`${ORT_BASENAME}.wasm`, dir(new URL(wasmFolder, base))).href,
        }
      : { mjs: own.mjs.href, wasm: own.wasm.href };
    const workerUrl =
      this.options.workerUrl !== undefined
        ? new URL(this.options.workerUrl, base)
        : assetBase
          ? new URL('stt-worker.js', assetBase)
          : own.worker;
    const modelBaseUrl = dir(
      new URL(this.options.modelBaseUrl ?? (assetBase ? 'models/' : '/models/'), base),
    );
    const timeoutMs = this.options.loadTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      let revoke = (): void => undefined;
      const fail = (message: string, cause?: unknown): void => {
        clearTimeout(timer);
        revoke();
        this.failure = new VoiceBotError(
          'stt_unavailable',
          `In-browser speech recognition is unavailable: ${message}`,
          { cause },
        );
        this.teardown(this.failure);
        reject(this.failure);
      };
      const timer = setTimeout(
        () => fail(`the model did not load within ${Math.round(timeoutMs / 1000)} s`),
        timeoutMs,
      );
      let worker: Worker;
      try {
        ({ worker, revoke } = startWorker(workerUrl));
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
            this.options.onProgress?.({
              loaded: message.loaded,
              total: message.total,
              percent: message.percent,
              file: message.file,
            });
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
            this.settle(
              message.id,
              new VoiceBotError('stt_unavailable', `Speech recognition failed: ${message.message}`),
            );
            return;
        }
      });
      const request: SttRequest = {
        type: 'load',
        model: this.model,
        modelBaseUrl,
        allowRemoteModels: this.options.allowRemoteModels ?? false,
        cache: this.options.cache ?? true,
        wasmPaths,
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
      if (!worker || this.failure)
        throw (
          this.failure ?? new VoiceBotError('stt_unavailable', 'Speech recognition was stopped.')
        );
      const id = this.nextId++;
      const done = new Promise<string>((resolve, reject) =>
        this.pending.set(id, { resolve, reject }),
      );
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
