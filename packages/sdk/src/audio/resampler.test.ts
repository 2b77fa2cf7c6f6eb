import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  db,
  goertzelAmplitude,
  rms,
  sine,
  sineFit,
  zeroCrossings,
} from '../../../../test/support/audio-dsp.js';
import { StreamingResampler } from './resampler.js';

/** Feed x in blocks of `block` samples (like AudioWorklet render quanta) and concatenate. */
function runBlocks(r: StreamingResampler, x: Float32Array, block: number): Float32Array {
  const parts: Float32Array[] = [];
  for (let i = 0; i < x.length; i += block)
    parts.push(r.process(x.subarray(i, Math.min(x.length, i + block))));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

for (const inRate of [44100, 48000]) {
  describe(`StreamingResampler ${inRate} → 16000`, () => {
    const skip = 400; // ignore the start-up transient (filter half-length is ≈ 35 output samples)

    test('1 kHz keeps amplitude (±0.1 dB) and frequency', () => {
      const r = new StreamingResampler(inRate, 16000);
      const y = runBlocks(r, sine(inRate, 1000, inRate, 0.5), 128);
      const amp = goertzelAmplitude(y, 16000, 1000, skip, y.length - skip);
      assert.ok(Math.abs(db(amp / 0.5)) < 0.1, `1 kHz gain ${db(amp / 0.5).toFixed(3)} dB`);
      // 1 kHz at 16 kHz: 2 crossings per 16 samples
      const zc = zeroCrossings(y, skip, skip + 16000 * 0.5);
      assert.ok(Math.abs(zc - 1000) <= 2, `zero crossings ${zc} in 0.5 s`);
      const fit = sineFit(y, 16000, 1000, skip, y.length - skip);
      assert.ok(
        db(fit.residualRms / 0.5) < -80,
        `residual ${db(fit.residualRms / 0.5).toFixed(1)} dB`,
      );
    });

    for (const f of [8500, 10000, 12000, 15000, 20000]) {
      test(`${f} Hz is attenuated by ≥ 70 dB`, () => {
        const r = new StreamingResampler(inRate, 16000);
        const y = runBlocks(r, sine(inRate, f, inRate, 0.5), 128);
        const att = db(rms(y, skip, y.length - skip) / (0.5 / Math.SQRT2));
        assert.ok(att < -70, `${f} Hz: ${att.toFixed(1)} dB`);
      });
    }

    test('passband is flat to 6.5 kHz (±0.1 dB)', () => {
      for (const f of [100, 3000, 5000, 6500]) {
        const r = new StreamingResampler(inRate, 16000);
        const y = r.process(sine(inRate, f, inRate / 2, 0.5));
        const g = db(rms(y, skip, y.length - skip) / (0.5 / Math.SQRT2));
        assert.ok(Math.abs(g) < 0.1, `${f} Hz: ${g.toFixed(3)} dB`);
      }
    });

    test('128-sample blocks, odd blocks and one block give identical output of the expected length', () => {
      const x = new Float32Array(inRate * 2);
      let seed = 1;
      for (let i = 0; i < x.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        x[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / inRate) + 0.2 * (seed / 2 ** 32 - 0.5);
      }
      const one = new StreamingResampler(inRate, 16000).process(x);
      const q = runBlocks(new StreamingResampler(inRate, 16000), x, 128);
      const odd = runBlocks(new StreamingResampler(inRate, 16000), x, 37);
      const big = runBlocks(new StreamingResampler(inRate, 16000), x, 5000); // larger than the internal chunk
      assert.deepEqual(q, one);
      assert.deepEqual(odd, one);
      assert.deepEqual(big, one);
      const r = new StreamingResampler(inRate, 16000);
      const expected = (x.length * 16000) / inRate;
      // the filter holds back halfTaps input samples of look-ahead until flush()
      const latencyOut = Math.ceil((r.halfTaps * 16000) / inRate);
      assert.ok(
        one.length <= expected && one.length >= expected - latencyOut - 1,
        `${one.length} vs ${expected}`,
      );
      const tail = r.process(x).length + r.flush().length;
      assert.ok(Math.abs(tail - expected) <= 1, `with flush ${tail} vs ${expected}`);
    });
  });
}

describe('StreamingResampler other rates', () => {
  test('16000 → 16000 is a pass-through', () => {
    const r = new StreamingResampler(16000, 16000);
    const x = sine(16000, 1234, 1000);
    assert.deepEqual(r.process(x), x);
    assert.equal(r.halfTaps, 0);
  });

  for (const [inRate, outRate] of [
    [22050, 16000],
    [96000, 16000],
    [44101, 16000], // coprime: interpolated phase table
    [8000, 16000],
    [24000, 44100],
    [24000, 48000],
  ] as const) {
    test(`${inRate} → ${outRate}: 1 kHz within ±0.1 dB, output length matches`, () => {
      const r = new StreamingResampler(inRate, outRate);
      const x = sine(inRate, 1000, inRate);
      const y = runBlocks(r, x, 128);
      const s = Math.ceil(outRate / 40);
      const amp = goertzelAmplitude(y, outRate, 1000, s, y.length - s);
      assert.ok(Math.abs(db(amp / 0.5)) < 0.1, `gain ${db(amp / 0.5).toFixed(3)} dB`);
      const fit = sineFit(y, outRate, 1000, s, y.length - s);
      assert.ok(
        db(fit.residualRms / 0.5) < -70,
        `residual ${db(fit.residualRms / 0.5).toFixed(1)} dB`,
      );
      const all = y.length + r.flush().length;
      assert.ok(Math.abs(all - (x.length * outRate) / inRate) <= 1, `${all}`);
    });
  }

  test('upsampling 24 kHz → 48 kHz leaves little image energy above 12 kHz', () => {
    const r = new StreamingResampler(24000, 48000);
    const y = r.process(sine(24000, 5000, 24000, 0.5));
    // the image of 5 kHz at 24k-5k = 19 kHz
    const image = goertzelAmplitude(y, 48000, 19000, 200, y.length - 200);
    assert.ok(db(image / 0.5) < -70, `image ${db(image / 0.5).toFixed(1)} dB`);
  });

  test('rejects invalid rates', () => {
    assert.throws(() => new StreamingResampler(0, 16000), RangeError);
  });
});
