/**
 * Silero VAD v5 on onnxruntime-web (plain WebAssembly backend, one thread), fed with the SDK's
 * own 16 kHz PCM16 frames. This module is the lazy chunk: the client reaches it only through a
 * dynamic `import()`, so onnxruntime-web never lands in the first download.
 *
 * onnxruntime-web is not a dependency of the published SDK (its package holds every wasm variant,
 * ~140 MB). The build vendors its wasm-only ESM build (`ort.wasm.min.mjs`, ~50 KB, which loads
 * its Emscripten glue from the URL it is given instead of referencing wasm files itself) beside
 * this module and points the import below at it; the one binary it runs and its glue sit in
 * `vad/` with the model, referenced with `new URL('./vad/…', import.meta.url)` so bundlers emit
 * exactly those three files.
 *
 * Why not vad-web's `MicVAD`: it builds its own audio graph and downsamples by block averaging
 * (no anti-alias filter); our capture worklet already delivers properly resampled 16 kHz audio.
 * Why not vad-web's `FrameProcessor` + `Silero` classes either: @ricky0123/vad-web 0.0.31 ships
 * CommonJS only (`require()` chains, no ESM build), which the SDK's rollup build (node-resolve,
 * no commonjs plugin) cannot bundle. Both are small, so they are ported here: the v5 model call
 * (576-sample input = 64 samples of context + a 512-sample frame, a `[2,1,128]` state tensor,
 * `sr` as int64) and the speech/redemption/misfire state machine, with the same options (in ms)
 * and the same meaning. The model file itself comes from vad-web's dist (`silero_vad_v5.onnx`).
 */
import * as ort from 'onnxruntime-web/wasm';
import { VadUnavailableError, vadAssetUrls, type VadAssetUrls } from './vad-assets.js';

/** The VAD's files beside this module (`dist/audio/vad/`), as bundlers see them. */
function ownAssetUrls(): VadAssetUrls {
  return {
    model: new URL('./vad/silero_vad_v5.onnx', import.meta.url).href,
    ortGlue: new URL('./vad/ort-wasm-simd-threaded.mjs', import.meta.url).href,
    ortWasm: new URL('./vad/ort-wasm-simd-threaded.wasm', import.meta.url).href,
  };
}

export { VadUnavailableError } from './vad-assets.js';

/**
 * The energy VAD's event shape (energy-vad.ts; a subtype of `VadEvent` in ../vad.ts). Times are
 * ms since the first frame processed (or the last `reset()`).
 */
export type SileroVadEvent =
  /** Speech began. `preroll` holds copies of the frames passed to earlier `process()` calls,
   * oldest first, from at least `preSpeechPadMs` before the onset; the frame passed to this call
   * is NOT included (send preroll, then this frame, then every later one). `startMs` is the
   * start of the 32 ms model frame where speech was first seen. */
  | { type: 'speech-start'; preroll: Int16Array[]; startMs: number }
  /** Speech ended after `redemptionMs` of silence. `durationMs` runs from the onset to the end
   * of the last speech frame (`endMs`); the trailing silence is not counted. */
  | { type: 'speech-end'; durationMs: number; endMs: number }
  /** What started had less than `minSpeechMs` of speech (a cough, a click): drop it. */
  | { type: 'misfire'; durationMs: number }
  /** With `pauseMs`: that much silence inside speech (once per silence), `silenceMs` so far. */
  | { type: 'pause'; silenceMs: number }
  /** With `pauseMs`: speech again after a `pause`, before `redemptionMs` ended it. */
  | { type: 'resume' };

export interface SileroVadOptions {
  /**
   * Directory holding the VAD assets: `silero_vad_v5.onnx`, `ort-wasm-simd-threaded.mjs` and
   * `ort-wasm-simd-threaded.wasm`. Default: the `vad/` folder beside this module.
   */
  assetBaseUrl?: string | URL | undefined;
  /** Model probability at or over which a 32 ms frame counts as speech. Default 0.5. */
  positiveSpeechThreshold?: number;
  /** Probability under which a frame counts towards the end of speech. Default 0.35. */
  negativeSpeechThreshold?: number;
  /** Silence (below the negative threshold) that ends speech. Default 700 ms. */
  redemptionMs?: number;
  /** Audio before the onset returned with `speech-start`. Default 300 ms. */
  preSpeechPadMs?: number;
  /**
   * Silence (below the negative threshold) inside speech that is reported as a `pause`, and speech
   * (at or over the positive one) after it as a `resume`. Default: none (no such events).
   */
  pauseMs?: number;
  /** Speech shorter than this (counting speech frames only) is a `misfire`. Default 250 ms. */
  minSpeechMs?: number;
  /** Give up loading (model + WebAssembly runtime) after this long. Default 15000 ms. */
  loadTimeoutMs?: number;
}

export interface SileroVad {
  /**
   * Feed one frame of 16 kHz mono PCM16 (normally 320 samples = 20 ms; any length works).
   * Calls are queued, so they may be made without awaiting the previous one; events come back
   * in order. After `dispose()` it resolves to `[]`. Rejects with `VadUnavailableError` if
   * inference fails.
   */
  process(frame: Int16Array): Promise<SileroVadEvent[]>;
  /** Speech probability (0..1) of the last 32 ms model frame, for a level meter or debugging. */
  readonly probability: number;
  /** True between `speech-start` and `speech-end`/`misfire`. */
  readonly speaking: boolean;
  /** Silence (model frames under the negative threshold) since the last speech frame of the utterance in progress; 0 outside one. */
  readonly silenceMs: number;
  /**
   * Ends the utterance in progress as `redemptionMs` of silence would have: returns the event it
   * would have reported, or undefined outside one.
   */
  endSpeech(): SileroVadEvent | undefined;
  /** Whether the last model frame sounded like speech (probability at or over the positive threshold). */
  readonly voiced: boolean;
  /** Forget the model state and any speech in progress (no event is emitted). */
  reset(): void;
  /** Release the ONNX session. Pending `process()` calls finish first. */
  dispose(): Promise<void>;
}

const SAMPLE_RATE = 16_000;
/** Silero v5 at 16 kHz: 512-sample frames plus 64 samples of context from the previous one. */
const MODEL_FRAME = 512;
const CONTEXT = 64;
const MS_PER_MODEL_FRAME = (MODEL_FRAME / SAMPLE_RATE) * 1000; // 32

const DEFAULTS = {
  positiveSpeechThreshold: 0.5,
  negativeSpeechThreshold: 0.35,
  redemptionMs: 700,
  preSpeechPadMs: 300,
  minSpeechMs: 250,
  loadTimeoutMs: 15_000,
};

/**
 * Loads the Silero v5 model and the onnxruntime-web WebAssembly runtime from `assetBaseUrl`
 * and returns a VAD for 16 kHz PCM16 frames. Rejects with `VadUnavailableError` if anything
 * cannot be loaded (missing or unreachable files, no WebAssembly, timeout).
 */
export async function createSileroVad(options: SileroVadOptions): Promise<SileroVad> {
  const opts = { ...DEFAULTS, ...definedOnly(options) };
  checkOptions(opts);
  const { pauseMs } = options;
  if (pauseMs !== undefined && !(pauseMs >= 0 && Number.isFinite(pauseMs)))
    throw new RangeError('createSileroVad: pauseMs must be a finite number ≥ 0');
  let urls: VadAssetUrls;
  try {
    urls = options.assetBaseUrl === undefined ? ownAssetUrls() : vadAssetUrls(options.assetBaseUrl);
  } catch (error) {
    throw new VadUnavailableError(`Invalid VAD asset base URL: ${String(options.assetBaseUrl)}`, {
      cause: error,
    });
  }
  if (typeof WebAssembly !== 'object')
    throw new VadUnavailableError('WebAssembly is not available in this browser.');

  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(
        new VadUnavailableError(`Loading the Silero VAD timed out after ${opts.loadTimeoutMs} ms.`),
      );
    }, opts.loadTimeoutMs);
  });
  const loading = loadSession(urls, abort.signal);
  try {
    const session = await Promise.race([loading, timeout]);
    return new SileroVadImpl(session, opts, pauseMs);
  } catch (error) {
    // a session that arrives after the timeout is released, not leaked
    loading
      .then(
        (s) => s.release(),
        () => undefined,
      )
      .catch(() => undefined);
    throw error instanceof VadUnavailableError
      ? error
      : new VadUnavailableError('The Silero VAD could not be started.', { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

async function loadSession(urls: VadAssetUrls, signal: AbortSignal): Promise<ort.InferenceSession> {
  // Fetch the model and check the runtime files exist before touching onnxruntime-web: a failed
  // initialisation of its WebAssembly module is permanent for the page (every later
  // InferenceSession.create() throws "previous call to 'initWasm()' failed").
  const [model, ...probes] = await Promise.allSettled([
    fetchModel(urls.model, signal),
    probe(urls.ortGlue, signal),
    probe(urls.ortWasm, signal),
  ]);
  const problems = [model, ...probes].flatMap((r) =>
    r.status === 'rejected' ? [r.reason as unknown] : [],
  );
  if (problems.length > 0 || model.status !== 'fulfilled') {
    const messages = problems.map((p) => (p instanceof Error ? p.message : String(p)));
    throw problems.length === 1 && problems[0] instanceof VadUnavailableError
      ? problems[0]
      : new VadUnavailableError(messages.join(' '), { cause: problems[0] });
  }

  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation (SharedArrayBuffer)
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = { mjs: urls.ortGlue, wasm: urls.ortWasm };

  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model.value, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new VadUnavailableError(`The ONNX runtime could not load the Silero VAD (${message}).`, {
      cause: error,
    });
  }
  for (const name of ['input', 'state', 'sr']) {
    if (!session.inputNames.includes(name)) {
      await session.release();
      throw new VadUnavailableError(`${urls.model} is not a Silero v5 model (no "${name}" input).`);
    }
  }
  return session;
}

async function fetchModel(url: string, signal: AbortSignal): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal, credentials: 'same-origin' });
  } catch (error) {
    throw new VadUnavailableError(`The Silero VAD model could not be downloaded from ${url}.`, {
      cause: error,
    });
  }
  if (!response.ok)
    throw new VadUnavailableError(
      `The Silero VAD model could not be downloaded from ${url} (HTTP ${response.status}).`,
    );
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length < 1024)
    throw new VadUnavailableError(`${url} is not an ONNX model (${bytes.length} bytes).`);
  return bytes;
}

/** HEAD request: fails on a network error or 404/410; other statuses are left to the real load. */
async function probe(url: string, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'HEAD', signal, credentials: 'same-origin' });
  } catch (error) {
    throw new VadUnavailableError(`The ONNX runtime file ${url} could not be reached.`, {
      cause: error,
    });
  }
  if (response.status === 404 || response.status === 410) {
    throw new VadUnavailableError(
      `The ONNX runtime file ${url} was not found (HTTP ${response.status}).`,
    );
  }
}

type ResolvedOptions = typeof DEFAULTS;

function definedOnly(options: SileroVadOptions): Partial<ResolvedOptions> {
  const out: Partial<ResolvedOptions> = {};
  for (const key of Object.keys(DEFAULTS) as (keyof ResolvedOptions)[]) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function checkOptions(o: ResolvedOptions): void {
  const bad = (what: string): never => {
    throw new RangeError(`createSileroVad: ${what}`);
  };
  if (!(o.positiveSpeechThreshold > 0 && o.positiveSpeechThreshold <= 1))
    bad('positiveSpeechThreshold must be in (0, 1]');
  if (!(o.negativeSpeechThreshold >= 0 && o.negativeSpeechThreshold <= o.positiveSpeechThreshold)) {
    bad('negativeSpeechThreshold must be in [0, positiveSpeechThreshold]');
  }
  for (const key of ['redemptionMs', 'preSpeechPadMs', 'minSpeechMs', 'loadTimeoutMs'] as const) {
    if (!(o[key] >= 0 && Number.isFinite(o[key]))) bad(`${key} must be a finite number ≥ 0`);
  }
}

interface HistoryFrame {
  frame: Int16Array;
  /** Sample index (from the first frame ever processed) just after the frame's last sample. */
  end: number;
}

class SileroVadImpl implements SileroVad {
  private readonly sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(SAMPLE_RATE)]), [1]);
  private state = zeroState();
  /** Model input: CONTEXT samples carried over, then MODEL_FRAME new ones. */
  private readonly input = new Float32Array(CONTEXT + MODEL_FRAME);
  private filled = 0;
  /** Samples received so far. */
  private samples = 0;
  private history: HistoryFrame[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private lastProbability = 0;

  // segment state, as in vad-web's FrameProcessor
  private inSpeech = false;
  private speechFrames = 0;
  private redemptionCounter = 0;
  private onset = 0;
  private lastSpeechEnd = 0;
  /** A `pause` was reported for the current silence. */
  private paused = false;

  private readonly redemptionFrames: number;
  private readonly minSpeechFrames: number;
  private readonly padSamples: number;
  /** Model frames of silence that make a pause (Infinity: none). */
  private readonly pauseFrames: number;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly options: ResolvedOptions,
    pauseMs: number | undefined,
  ) {
    this.redemptionFrames = Math.max(1, Math.floor(options.redemptionMs / MS_PER_MODEL_FRAME));
    this.pauseFrames =
      pauseMs === undefined ? Infinity : Math.max(1, Math.ceil(pauseMs / MS_PER_MODEL_FRAME));
    this.minSpeechFrames = Math.floor(options.minSpeechMs / MS_PER_MODEL_FRAME);
    this.padSamples = Math.round((options.preSpeechPadMs * SAMPLE_RATE) / 1000);
  }

  get probability(): number {
    return this.lastProbability;
  }

  get speaking(): boolean {
    return this.inSpeech;
  }

  get silenceMs(): number {
    return this.inSpeech ? this.redemptionCounter * MS_PER_MODEL_FRAME : 0;
  }

  endSpeech(): SileroVadEvent | undefined {
    return this.inSpeech ? this.finish() : undefined;
  }

  /** Whether the last model frame sounded like speech. */
  get voiced(): boolean {
    return this.lastProbability >= this.options.positiveSpeechThreshold;
  }

  process(frame: Int16Array): Promise<SileroVadEvent[]> {
    const copy = frame.slice(); // callers may reuse their buffer
    const run = this.queue.then(() => this.processNow(copy));
    this.queue = run.catch(() => undefined);
    return run;
  }

  reset(): void {
    this.state = zeroState();
    this.input.fill(0);
    this.filled = 0;
    this.samples = 0;
    this.history = [];
    this.inSpeech = false;
    this.speechFrames = 0;
    this.redemptionCounter = 0;
    this.paused = false;
    this.lastProbability = 0;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    await this.session.release();
  }

  private async processNow(frame: Int16Array): Promise<SileroVadEvent[]> {
    if (this.disposed) return [];
    const events: SileroVadEvent[] = [];
    /** Indices in `events` of speech starts, to attach prerolls to once the frame is done. */
    const starts: number[] = [];
    const frameStart = this.samples;
    for (let i = 0; i < frame.length; i++) {
      this.input[CONTEXT + this.filled++] = (frame[i] ?? 0) / 32768;
      if (this.filled < MODEL_FRAME) continue;
      this.filled = 0;
      const probability = await this.infer();
      if (this.disposed) return [];
      const end = frameStart + i + 1;
      const event = this.step(probability, end - MODEL_FRAME, end);
      if (event) {
        if (event.type === 'speech-start') starts.push(events.length);
        events.push(event);
      }
    }
    for (const index of starts) {
      const event = events[index];
      if (event?.type !== 'speech-start') continue;
      const from = (event.startMs * SAMPLE_RATE) / 1000 - this.padSamples;
      event.preroll = this.history.filter((h) => h.end > from).map((h) => h.frame);
    }
    this.samples += frame.length;
    this.history.push({ frame, end: this.samples });
    // keep just enough history for the preroll of an onset in the next model frame
    const nextFrameStart = this.samples - this.filled;
    while ((this.history[0]?.end ?? Infinity) <= nextFrameStart - this.padSamples)
      this.history.shift();
    return events;
  }

  /** Runs the model on `input` (context + 512 new samples) and rolls the context forward. */
  private async infer(): Promise<number> {
    const tensor = new ort.Tensor('float32', this.input.slice(), [1, CONTEXT + MODEL_FRAME]);
    let output: ort.InferenceSession.OnnxValueMapType;
    try {
      output = await this.session.run({ input: tensor, state: this.state, sr: this.sr });
    } catch (error) {
      throw new VadUnavailableError('Silero VAD inference failed.', { cause: error });
    }
    this.input.copyWithin(0, MODEL_FRAME, MODEL_FRAME + CONTEXT);
    const stateN = output['stateN'];
    const probability = output['output']?.data[0];
    if (!stateN || typeof probability !== 'number')
      throw new VadUnavailableError('Silero VAD returned an unexpected output.');
    this.state = stateN;
    this.lastProbability = probability;
    return probability;
  }

  /**
   * vad-web's FrameProcessor logic for one model frame covering samples [start, end): speech
   * starts on the first frame at or over the positive threshold and ends after `redemptionMs` of
   * frames under the negative one (frames in between neither extend nor end it). With `pauseMs`,
   * the silence reaching it is a `pause`, and the next frame at or over the positive threshold a
   * `resume`.
   */
  private step(probability: number, start: number, end: number): SileroVadEvent | undefined {
    const { positiveSpeechThreshold, negativeSpeechThreshold } = this.options;
    let event: SileroVadEvent | undefined;
    if (probability >= positiveSpeechThreshold) {
      this.speechFrames++;
      this.redemptionCounter = 0;
      this.lastSpeechEnd = end;
      if (!this.inSpeech) {
        this.inSpeech = true;
        this.paused = false;
        this.onset = start;
        event = { type: 'speech-start', preroll: [], startMs: ms(start) };
      } else if (this.paused) {
        this.paused = false;
        event = { type: 'resume' };
      }
    } else if (this.inSpeech && probability < negativeSpeechThreshold) {
      if (++this.redemptionCounter >= this.redemptionFrames) event = this.finish();
      else if (!this.paused && this.redemptionCounter >= this.pauseFrames) {
        this.paused = true;
        event = { type: 'pause', silenceMs: this.redemptionCounter * MS_PER_MODEL_FRAME };
      }
    }
    if (!this.inSpeech) this.speechFrames = 0;
    return event;
  }

  /** The end of the utterance in progress: `speech-end`, or `misfire` with too little speech. */
  private finish(): SileroVadEvent {
    this.inSpeech = false;
    this.redemptionCounter = 0;
    this.paused = false;
    const durationMs = ms(this.lastSpeechEnd - this.onset);
    const event: SileroVadEvent =
      this.speechFrames >= this.minSpeechFrames
        ? { type: 'speech-end', durationMs, endMs: ms(this.lastSpeechEnd) }
        : { type: 'misfire', durationMs };
    this.speechFrames = 0;
    return event;
  }
}

function ms(samples: number): number {
  return (samples * 1000) / SAMPLE_RATE;
}

function zeroState(): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(2 * 1 * 128), [2, 1, 128]);
}
