// @ts-check
/**
 * Streaming windowed-sinc (Kaiser) polyphase resampler.
 *
 * Plain, dependency-free ES module, shared by the AudioWorklets (`capture-processor.js` and
 * `playback-processor.js` import it; the build bundles it into each) and by Node / the TypeScript
 * SDK (`../resampler.ts` re-exports it; types in `resampler-core.d.ts`).
 *
 * Algorithm
 * - The rate ratio is reduced to `outRate/inRate = L/M` (integers). Output sample `n` sits at
 *   input time `t = n·M/L`. The integer part of `t` and the phase `(n·M) mod L` are tracked with
 *   integers, so there is no drift however long the stream runs.
 * - Every output sample is `y = Σ x[j]·h(t − j)` over the `2K` input samples around `t`, where `h` is a
 *   low-pass windowed sinc (Kaiser window). The cutoff sits at `cutoff · min(inRate,outRate)/2`
 *   (default 0.925 → 7.4 kHz for a 16 kHz output), the transition band is
 *   `transition · min(inRate,outRate)/2` wide (default 0.15 → 6.8..8.0 kHz), and the stopband
 *   attenuation target is `attenuationDb` (default 80 dB) which fixes the Kaiser β and the tap count.
 * - The taps of each phase are precomputed in the constructor (`L` phases when `L ≤ maxPhases`,
 *   otherwise `maxPhases + 1` phases with linear interpolation between neighbouring phases) and each
 *   phase is normalised to unity DC gain.
 * - Input history and fractional phase are carried across calls, so feeding a signal in 128-sample
 *   render quanta produces bit-identical output to feeding it in one block.
 * - Latency: the filter is centred (linear phase) and needs `K` samples of look-ahead, so output
 *   sample `n` is produced once input sample `floor(n·M/L) + K` has arrived. `flush()` feeds `K`
 *   zeros to drain the tail. Output sample 0 is aligned with input sample 0 (no group-delay shift).
 * - `inRate === outRate` is a pure pass-through (no filtering, no latency).
 *
 * `processInto()` never allocates, which is what the worklets use inside `process()`.
 */

/** @param {number} a @param {number} b @returns {number} */
function gcd(a, b) {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (power series). @param {number} x */
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Kaiser β for a given stopband attenuation in dB (Kaiser's empirical formula). @param {number} a */
export function kaiserBeta(a) {
  if (a > 50) return 0.1102 * (a - 8.7);
  if (a >= 21) return 0.5842 * Math.pow(a - 21, 0.4) + 0.07886 * (a - 21);
  return 0;
}

/**
 * @typedef {object} ResamplerOptions
 * @property {number} [cutoff] cutoff (−6 dB point) as a fraction of the lower Nyquist frequency (default 0.925)
 * @property {number} [transition] transition bandwidth as a fraction of the lower Nyquist frequency (default 0.15)
 * @property {number} [attenuationDb] stopband attenuation target in dB (default 80)
 * @property {number} [maxPhases] largest exact polyphase table; beyond it phases are interpolated (default 1024)
 * @property {number} [maxChunk] internal input chunk size (default 2048)
 */

export class StreamingResampler {
  /**
   * @param {number} inRate input sample rate in Hz (rounded to an integer)
   * @param {number} outRate output sample rate in Hz (rounded to an integer)
   * @param {ResamplerOptions} [opts]
   */
  constructor(inRate, outRate, opts = {}) {
    const inR = Math.round(inRate);
    const outR = Math.round(outRate);
    if (!(inR > 0) || !(outR > 0))
      throw new RangeError(`invalid sample rates ${inRate} -> ${outRate}`);
    const g = gcd(inR, outR);
    /** @readonly */ this.inRate = inR;
    /** @readonly */ this.outRate = outR;
    /** output step numerator/denominator: outRate/inRate = L/M */
    /** @readonly */ this.L = outR / g;
    /** @readonly */ this.M = inR / g;
    /** @readonly */ this.passthrough = inR === outR;

    const cutoff = opts.cutoff ?? 0.925;
    const transition = opts.transition ?? 0.15;
    const attenuationDb = opts.attenuationDb ?? 80;
    const maxPhases = opts.maxPhases ?? 1024;
    const maxChunk = opts.maxChunk ?? 2048;

    // Filter in units of input samples: normalised cutoff (cycles per input sample).
    const ratio = Math.min(1, outR / inR); // lower Nyquist relative to the input Nyquist
    const fc = (cutoff * ratio) / 2; // cycles / input sample
    const dw = Math.PI * transition * ratio; // transition width in rad / input sample
    const beta = kaiserBeta(attenuationDb);
    const taps = Math.ceil((attenuationDb - 7.95) / (2.285 * dw)) + 1;
    const K = this.passthrough ? 0 : Math.max(2, Math.ceil(taps / 2));
    const T = 2 * K;
    /** half filter length in input samples (= look-ahead latency) @readonly */ this.halfTaps = K;
    /** taps per output sample @readonly */ this.taps = T;
    /** @readonly */ this.cutoffHz = fc * inR;
    /** @readonly */ this.stopbandHz = (fc + dw / (4 * Math.PI)) * inR;
    /** @readonly */ this.beta = beta;

    const exact = this.L <= maxPhases;
    /** @private */ this.exact = exact;
    const P = exact ? this.L : maxPhases;
    /** @private */ this.P = P;
    const rows = exact ? P : P + 1;
    const coef = new Float32Array(this.passthrough ? 0 : rows * T);
    if (!this.passthrough) {
      const i0b = besselI0(beta);
      const tmp = new Float64Array(T);
      for (let p = 0; p < rows; p++) {
        const f = p / P; // fractional input time of this phase
        let sum = 0;
        const row = p * T;
        for (let k = 0; k < T; k++) {
          const x = f + K - 1 - k; // t - j
          const r = x / K;
          let w = 0;
          if (r > -1 && r < 1) w = besselI0(beta * Math.sqrt(1 - r * r)) / i0b;
          const a = 2 * fc * x;
          const s = a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a);
          const v = 2 * fc * s * w;
          tmp[k] = v;
          sum += v;
        }
        for (let k = 0; k < T; k++) coef[row + k] = /** @type {number} */ (tmp[k]) / sum;
      }
    }
    /** @private */ this.coef = coef;

    /** @private */ this.maxChunk = maxChunk;
    /** @private working buffer: [history | new input] */
    this.buf = new Float32Array(T + maxChunk);
    /** @private number of valid samples in buf */ this.len = 0;
    /** @private buf index of floor(t) for the next output */ this.ip = 0;
    /** @private phase numerator in [0, L) */ this.phase = 0;
    /** @private scratch for flush() */ this.zeros = new Float32Array(Math.max(1, K));
    this.reset();
  }

  /** Forget all history and phase: the next input sample is treated as the start of a new stream. */
  reset() {
    this.buf.fill(0);
    // K-1 zeros of history so that output 0 is aligned with input sample 0.
    this.len = Math.max(0, this.halfTaps - 1);
    this.ip = this.len;
    this.phase = 0;
  }

  /**
   * Upper bound of outputs that `n` more input samples can produce (for sizing output buffers).
   * @param {number} n
   */
  maxOutputLength(n) {
    if (this.passthrough) return n;
    return Math.ceil((n * this.L) / this.M) + 2;
  }

  /**
   * Resample `input[inStart, inEnd)` and write the produced samples to `output` from `outStart`.
   * Never allocates. `output` must have room for `maxOutputLength(inEnd - inStart)` samples.
   * @param {ArrayLike<number>} input
   * @param {number} inStart
   * @param {number} inEnd
   * @param {Float32Array} output
   * @param {number} outStart
   * @returns {number} number of samples written
   */
  processInto(input, inStart, inEnd, output, outStart) {
    if (this.passthrough) {
      let o = outStart;
      for (let i = inStart; i < inEnd; i++) output[o++] = /** @type {number} */ (input[i]);
      return o - outStart;
    }
    const buf = this.buf;
    const coef = this.coef;
    const K = this.halfTaps;
    const T = this.taps;
    const L = this.L;
    const M = this.M;
    const exact = this.exact;
    const P = this.P;
    const cap = buf.length;
    let o = outStart;
    let i = inStart;
    while (i < inEnd) {
      // append as much input as fits
      let len = this.len;
      const n = Math.min(inEnd - i, cap - len);
      for (let k = 0; k < n; k++) buf[len + k] = /** @type {number} */ (input[i + k]);
      len += n;
      i += n;
      let ip = this.ip;
      let phase = this.phase;
      while (ip + K < len) {
        const base = ip - K + 1;
        let acc = 0;
        if (exact) {
          const row = phase * T;
          for (let k = 0; k < T; k++)
            acc += /** @type {number} */ (buf[base + k]) * /** @type {number} */ (coef[row + k]);
        } else {
          const q = (phase * P) / L;
          const qi = Math.floor(q);
          const qf = q - qi;
          const r0 = qi * T;
          const r1 = r0 + T;
          let acc1 = 0;
          for (let k = 0; k < T; k++) {
            const x = /** @type {number} */ (buf[base + k]);
            acc += x * /** @type {number} */ (coef[r0 + k]);
            acc1 += x * /** @type {number} */ (coef[r1 + k]);
          }
          acc += (acc1 - acc) * qf;
        }
        output[o++] = acc;
        phase += M;
        if (phase >= L) {
          const adv = Math.floor(phase / L);
          ip += adv;
          phase -= adv * L;
        }
      }
      // drop samples that no future output needs
      const shift = Math.min(ip - K + 1, len);
      if (shift > 0) {
        buf.copyWithin(0, shift, len);
        len -= shift;
        ip -= shift;
      }
      this.len = len;
      this.ip = ip;
      this.phase = phase;
    }
    return o - outStart;
  }

  /**
   * Convenience wrapper: resample a block, returning a new array with 0..n samples.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    const out = new Float32Array(this.maxOutputLength(input.length));
    const n = this.processInto(input, 0, input.length, out, 0);
    return n === out.length ? out : out.slice(0, n);
  }

  /**
   * Drain the filter tail (feeds K zeros) and reset the state. Returns the remaining output.
   * @returns {Float32Array}
   */
  flush() {
    const out = new Float32Array(this.maxOutputLength(this.zeros.length));
    const n = this.passthrough ? 0 : this.processInto(this.zeros, 0, this.zeros.length, out, 0);
    this.reset();
    return out.slice(0, n);
  }

  /**
   * Allocation-free flush: writes the tail into `output` (needs `maxOutputLength(halfTaps)` room),
   * resets the state and returns the number of samples written.
   * @param {Float32Array} output
   * @param {number} outStart
   */
  flushInto(output, outStart) {
    const n = this.passthrough
      ? 0
      : this.processInto(this.zeros, 0, this.zeros.length, output, outStart);
    this.reset();
    return n;
  }
}
