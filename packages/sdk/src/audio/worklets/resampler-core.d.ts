/** Types for `resampler-core.js` (plain JS so that AudioWorklets can load it unbundled). */

export interface ResamplerOptions {
  /** Cutoff (−6 dB point) as a fraction of the lower Nyquist frequency. Default 0.925 (7.4 kHz at 16 kHz out). */
  cutoff?: number;
  /** Transition bandwidth as a fraction of the lower Nyquist frequency. Default 0.15 (6.8–8.0 kHz at 16 kHz out). */
  transition?: number;
  /** Stopband attenuation target in dB; sets the Kaiser β and the tap count. Default 80. */
  attenuationDb?: number;
  /** Largest exact polyphase table; beyond it neighbouring phases are interpolated. Default 1024. */
  maxPhases?: number;
  /** Internal input chunk size. Default 2048. */
  maxChunk?: number;
}

/** Kaiser β for a stopband attenuation in dB. */
export function kaiserBeta(attenuationDb: number): number;

/**
 * Streaming Kaiser-windowed-sinc polyphase resampler. State (history and fractional phase) is carried
 * across calls, so chunked and one-shot processing produce identical output.
 */
export class StreamingResampler {
  constructor(inRate: number, outRate: number, opts?: ResamplerOptions);
  readonly inRate: number;
  readonly outRate: number;
  /** outRate / inRate = L / M (reduced). */
  readonly L: number;
  readonly M: number;
  readonly passthrough: boolean;
  /** Half filter length in input samples; also the look-ahead latency in input samples. */
  readonly halfTaps: number;
  /** Taps per output sample. */
  readonly taps: number;
  readonly cutoffHz: number;
  readonly stopbandHz: number;
  readonly beta: number;
  /** Forget history and phase. */
  reset(): void;
  /** Upper bound of outputs that `n` more input samples can produce. */
  maxOutputLength(n: number): number;
  /** Allocation-free: resample `input[inStart, inEnd)` into `output` from `outStart`; returns samples written. */
  processInto(
    input: ArrayLike<number>,
    inStart: number,
    inEnd: number,
    output: Float32Array,
    outStart: number,
  ): number;
  /** Resample a block; returns 0..n new samples. */
  process(input: Float32Array): Float32Array;
  /** Feed K zeros to drain the tail, then reset. */
  flush(): Float32Array;
  /** Allocation-free flush into `output` (needs `maxOutputLength(halfTaps)` room); returns samples written. */
  flushInto(output: Float32Array, outStart: number): number;
}
