/** Test helpers for audio: WAV fixtures as samples, and DSP measurements. */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseWav } from '@voice-bot/fake-provider';

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Interleaved Int16 samples. */
  samples: Int16Array;
}

/** Repo root (…/main); fixture paths like `../shared/fixtures/audio/16k/hours.wav` resolve against it. */
const repoRoot = resolve(new URL('../..', import.meta.url).pathname);

export function readWav(path: string): Wav {
  const { sampleRate, channels, samples } = parseWav(
    readFileSync(isAbsolute(path) ? path : resolve(repoRoot, path)),
  );
  return { sampleRate, channels, samples };
}

/** Mono view: the first channel of an interleaved WAV. */
export function monoSamples(wav: Wav): Int16Array {
  if (wav.channels === 1) return wav.samples;
  const n = Math.floor(wav.samples.length / wav.channels);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = wav.samples[i * wav.channels] ?? 0;
  return out;
}

export type Samples = ArrayLike<number>;

/** RMS of x[start, end). */
export function rms(x: Samples, start = 0, end = x.length): number {
  let e = 0;
  for (let i = start; i < end; i++) {
    const v = x[i] ?? 0;
    e += v * v;
  }
  return end > start ? Math.sqrt(e / (end - start)) : 0;
}

/** Amplitude of the `freq` component of x[start,end) (Goertzel, exact bin not required). */
export function goertzelAmplitude(
  x: Samples,
  rate: number,
  freq: number,
  start = 0,
  end = x.length,
): number {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < end; i++) {
    const s0 = (x[i] ?? 0) + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const n = end - start;
  const re = s1 - s2 * Math.cos(w);
  const im = s2 * Math.sin(w);
  return (2 * Math.sqrt(re * re + im * im)) / n;
}

/** Number of sign changes (upward and downward) in x[start,end). */
export function zeroCrossings(x: Samples, start = 0, end = x.length): number {
  let n = 0;
  let prev = x[start] ?? 0;
  for (let i = start + 1; i < end; i++) {
    const v = x[i] ?? 0;
    if ((prev < 0 && v >= 0) || (prev >= 0 && v < 0)) n++;
    prev = v;
  }
  return n;
}

/**
 * Least-squares fit of a*sin + b*cos + c at `freq` to x[start,end); returns the fitted amplitude and
 * the RMS of the residual (what is left after removing the ideal sine).
 */
export function sineFit(
  x: Samples,
  rate: number,
  freq: number,
  start = 0,
  end = x.length,
): { amplitude: number; residualRms: number } {
  const w = (2 * Math.PI * freq) / rate;
  // normal equations for [sin, cos, 1]
  let ss = 0,
    sc = 0,
    s1 = 0,
    cc = 0,
    c1 = 0,
    n = 0,
    xs = 0,
    xc = 0,
    x1 = 0;
  for (let i = start; i < end; i++) {
    const s = Math.sin(w * i);
    const c = Math.cos(w * i);
    const v = x[i] ?? 0;
    ss += s * s;
    sc += s * c;
    s1 += s;
    cc += c * c;
    c1 += c;
    n += 1;
    xs += v * s;
    xc += v * c;
    x1 += v;
  }
  const m = [
    [ss, sc, s1, xs],
    [sc, cc, c1, xc],
    [s1, c1, n, x1],
  ];
  for (let col = 0; col < 3; col++) {
    const pivot = m[col]![col]!;
    for (let r = 0; r < 3; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / pivot;
      for (let k = col; k < 4; k++) m[r]![k]! -= f * m[col]![k]!;
    }
  }
  const a = m[0]![3]! / m[0]![0]!;
  const b = m[1]![3]! / m[1]![1]!;
  const d = m[2]![3]! / m[2]![2]!;
  let e = 0;
  for (let i = start; i < end; i++) {
    const r = (x[i] ?? 0) - (a * Math.sin(w * i) + b * Math.cos(w * i) + d);
    e += r * r;
  }
  return { amplitude: Math.hypot(a, b), residualRms: Math.sqrt(e / Math.max(1, end - start)) };
}

export const db = (ratio: number): number => 20 * Math.log10(Math.max(ratio, 1e-12));

/** Float [-1,1] → Int16 exactly as the capture worklet does it. */
export function toInt16(x: Float32Array): Int16Array {
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let v = x[i] ?? 0;
    if (v > 1) v = 1;
    else if (v < -1) v = -1;
    out[i] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
  }
  return out;
}

/** A sine as Float32 (so that Node and an AudioBuffer see bit-identical input). */
export function sine(rate: number, freq: number, n: number, amplitude = 0.5): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}
