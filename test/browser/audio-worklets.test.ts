/**
 * Real-Chromium tests of the SDK's AudioWorklets (packages/sdk/src/audio/worklets/*.js), loaded
 * unbundled from an http://127.0.0.1 origin under a strict CSP, exactly as the SDK will serve them.
 *
 * Run: node --conditions=source --import tsx --test test/browser/audio-worklets.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { StreamingResampler } from '../../packages/sdk/src/audio/resampler.js';
import {
  db,
  goertzelAmplitude,
  monoSamples,
  readWav,
  rms,
  sineFit,
  toInt16,
  zeroCrossings,
} from '../support/audio-dsp.js';
import {
  launchChromium,
  serveStatic,
  type Browser,
  type Page,
  type StaticServer,
} from '../support/browser.js';

const FIXTURES = '../shared/fixtures/audio';
const VERBOSE = process.env['VOICEBOT_TEST_VERBOSE'] === '1';
const log = (...args: unknown[]): void => {
  if (VERBOSE) console.log(...args);
};

type OfflineSource =
  { kind: 'osc'; freq: number; amplitude: number } | { kind: 'buffer'; samples: number[] };
interface OfflineResult {
  sampleRate: number;
  lengths: number[];
  levels: number[];
  samples: number[];
}
interface MicResult {
  contextRate: number;
  settings: Record<string, unknown>;
  label: string;
  elapsedMs: number;
  lengths: number[];
  levels: number[];
  samples: number[];
}
interface PlaybackMessage {
  type: string;
  droppedMs?: number;
  t?: number;
  turnId?: number;
  playedMs?: number;
  playedSamples?: number;
  silentFromFrame?: number;
  level?: number;
}
interface PlaybackResult {
  sampleRate: number;
  messages: PlaybackMessage[];
  stopped: PlaybackMessage | null;
  drained: PlaybackMessage | null;
  sentStopAfterMs: number;
  frames: number[];
  peaks: number[];
}
interface Harness {
  captureOffline(a: {
    rate: number;
    seconds: number;
    source: OfflineSource;
    channels?: number;
  }): Promise<OfflineResult>;
  captureMic(a: { seconds: number }): Promise<MicResult>;
  captureControls(): Promise<{
    log: { type: string; t: number; level?: number; frames?: number; samples: number }[];
    marks: { mute: number; unmute: number; flush: number };
  }>;
  playback(a: {
    toneMs?: number;
    chunks?: number;
    stopAfterMs: number | null;
    waitMs?: number;
    contextRate?: number;
  }): Promise<PlaybackResult>;
  playbackTurns(): Promise<PlaybackMessage[]>;
}
declare global {
  interface Window {
    harness: Harness;
    harnessReady?: boolean;
  }
}

let server: StaticServer;
let browser: Browser;
let micBrowser: Browser;

async function openHarness(b: Browser): Promise<Page> {
  const page = await b.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('favicon')) errors.push(m.text());
  });
  await page.goto(`${server.url}/pages/index.html`);
  await page
    .waitForFunction(() => window.harnessReady === true, { timeout: 5000 })
    .catch((err: unknown) => {
      throw new Error(`harness did not load: ${errors.join('; ') || String(err)}`);
    });
  return page;
}

before(async () => {
  server = await serveStatic({
    '/worklets': 'packages/sdk/src/audio/worklets',
    '/pages': 'test/browser/pages',
  });
  [browser, micBrowser] = await Promise.all([
    launchChromium(),
    launchChromium({ fakeMicWav: `${FIXTURES}/48k/hours.wav` }),
  ]);
});

after(async () => {
  await Promise.allSettled([browser?.close(), micBrowser?.close()]);
  await server?.close();
});

const SKIP = 400; // output samples of start-up transient to ignore

describe('capture worklet (OfflineAudioContext)', () => {
  let page: Page;
  before(async () => {
    page = await openHarness(browser);
  });
  after(async () => {
    await page?.close();
  });

  for (const rate of [44100, 48000]) {
    test(`${rate} Hz: 1 kHz keeps level and frequency, frames are 320 samples`, async () => {
      const r = await page.evaluate(
        (rate) =>
          window.harness.captureOffline({
            rate,
            seconds: 1,
            source: { kind: 'osc', freq: 1000, amplitude: 0.5 },
          }),
        rate,
      );
      const y = r.samples.map((v) => v / 32768);
      assert.equal(r.sampleRate, rate);
      assert.ok(r.lengths.length >= 48, `${r.lengths.length} frames`);
      assert.ok(
        r.lengths.every((n) => n === 320),
        `frame lengths ${[...new Set(r.lengths)].join(',')}`,
      );
      const amp = goertzelAmplitude(y, 16000, 1000, SKIP, y.length - SKIP);
      assert.ok(Math.abs(db(amp / 0.5)) < 1, `1 kHz gain ${db(amp / 0.5).toFixed(3)} dB`);
      const zc = zeroCrossings(y, SKIP, SKIP + 8000);
      assert.ok(Math.abs(zc - 1000) <= 2, `zero crossings in 0.5 s: ${zc}`);
      // residual after removing an ideal 1 kHz sine: clicks at the 128-frame block boundaries would show up here
      const fit = sineFit(y, 16000, 1000, SKIP, y.length - SKIP);
      const residual = db(fit.residualRms / 0.5);
      assert.ok(residual < -60, `residual vs ideal sine ${residual.toFixed(1)} dB`);
      const level = r.levels[r.levels.length - 1] ?? 0;
      assert.ok(Math.abs(level - 0.5 / Math.SQRT2) < 0.01, `level ${level}`);
      log(`${rate}: 1 kHz gain ${db(amp / 0.5).toFixed(3)} dB, residual ${residual.toFixed(1)} dB`);
    });

    for (const freq of [10000, 12000]) {
      test(`${rate} Hz: ${freq / 1000} kHz is attenuated by ≥ 40 dB`, async () => {
        const r = await page.evaluate(
          (a) =>
            window.harness.captureOffline({
              rate: a.rate,
              seconds: 1,
              source: { kind: 'osc', freq: a.freq, amplitude: 0.9 },
            }),
          { rate, freq },
        );
        const y = r.samples.map((v) => v / 32768);
        const att = db(rms(y, SKIP, y.length - SKIP) / (0.9 / Math.SQRT2));
        // Int16 rounding bounds what is measurable: a residue below ±0.5 LSB rounds to 0 (−inf dB)
        log(`${rate}: ${freq} Hz → ${att.toFixed(1)} dB`);
        assert.ok(att <= -40, `${freq} Hz at ${rate}: ${att.toFixed(1)} dB`);
      });
    }

    test(`${rate} Hz: worklet output equals the Node StreamingResampler bit for bit (state carried across quanta)`, async () => {
      const n = rate; // 1 s
      const x = new Float32Array(n);
      let seed = 7;
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        x[i] =
          0.3 * Math.sin((2 * Math.PI * 440 * i) / rate) +
          0.2 * Math.sin((2 * Math.PI * 3100 * i) / rate) +
          0.2 * Math.sin((2 * Math.PI * 11000 * i) / rate) +
          0.1 * (seed / 2 ** 32 - 0.5);
      }
      const r = await page.evaluate(
        (a) =>
          window.harness.captureOffline({
            rate: a.rate,
            seconds: 1,
            source: { kind: 'buffer', samples: a.samples },
          }),
        { rate, samples: Array.from(x) },
      );
      const expected = toInt16(new StreamingResampler(rate, 16000).process(x));
      assert.ok(
        r.samples.length > 0 && r.samples.length <= expected.length,
        `${r.samples.length} vs ${expected.length} samples`,
      );
      let maxDiff = 0;
      for (let i = 0; i < r.samples.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((r.samples[i] ?? 0) - (expected[i] ?? 0)));
      assert.ok(maxDiff <= 1, `max difference ${maxDiff} LSB over ${r.samples.length} samples`);
    });
  }

  test('downmixes stereo by averaging (left = tone, right = silence → −6 dB)', async () => {
    const r = await page.evaluate(() =>
      window.harness.captureOffline({
        rate: 48000,
        seconds: 0.5,
        channels: 2,
        source: { kind: 'osc', freq: 1000, amplitude: 0.5 },
      }),
    );
    const y = r.samples.map((v) => v / 32768);
    const amp = goertzelAmplitude(y, 16000, 1000, SKIP, y.length - SKIP);
    assert.ok(Math.abs(amp - 0.25) < 0.01, `amplitude ${amp}`);
  });
});

describe('capture worklet controls (realtime AudioContext)', () => {
  test('mute emits no audio (only level 0 ticks), unmute resumes, flush emits the padded partial frame', async () => {
    const page = await openHarness(browser);
    try {
      const { log: msgs, marks } = await page.evaluate(() => window.harness.captureControls());
      log('controls', marks, msgs.map((m) => `${m.type}@${m.t.toFixed(0)}`).join(' '));
      const slack = 60; // message latency between the main thread and the audio thread
      const audio = msgs.filter((m) => m.type === 'audio');
      const levels = msgs.filter((m) => m.type === 'level');
      assert.ok(audio.filter((m) => m.t < marks.mute).length >= 8, 'audio before mute');
      assert.ok(
        audio.every((m) => m.t < marks.mute + slack || m.t > marks.unmute),
        'audio frames while muted',
      );
      assert.ok(
        levels.length >= 8 && levels.every((m) => m.level === 0),
        `${levels.length} level ticks while muted`,
      );
      assert.ok(
        levels.every((m) => m.t > marks.mute && m.t < marks.unmute + slack),
        'level ticks outside the mute',
      );
      const afterUnmute = audio.filter((m) => m.t > marks.unmute + slack && m.t < marks.flush);
      assert.ok(afterUnmute.length >= 8, `${afterUnmute.length} frames after unmute`);
      assert.ok(
        afterUnmute.every((m) => Math.abs((m.level ?? 0) - 0.354) < 0.02),
        'tone level after unmute',
      );
      assert.ok(
        audio.every((m) => m.samples === 320),
        'frame sizes',
      );
      const flushed = msgs.find((m) => m.type === 'flushed');
      assert.ok(flushed, 'no flushed reply');
      assert.ok(flushed.frames === 0 || flushed.frames === 1, `flushed.frames ${flushed.frames}`);
    } finally {
      await page.close();
    }
  });
});

describe('capture worklet on the fake microphone', () => {
  test('captures the hours.wav speech as 320-sample 16 kHz frames', async () => {
    const page = await openHarness(micBrowser);
    try {
      const r = await page.evaluate(() => window.harness.captureMic({ seconds: 6 }));
      log(
        'fake mic',
        JSON.stringify({
          ...r,
          samples: r.samples.length,
          levels: r.levels.length,
          lengths: undefined,
        }),
      );
      assert.ok(
        r.lengths.length >= 250,
        `${r.lengths.length} frames in ${r.elapsedMs.toFixed(0)} ms`,
      );
      assert.ok(
        r.lengths.every((n) => n === 320),
        `frame lengths ${[...new Set(r.lengths)].join(',')}`,
      );
      const y = r.samples.map((v) => v / 32768);
      const ref = monoSamples(readWav(`${FIXTURES}/16k/hours.wav`));
      const refF = Array.from(ref, (v) => v / 32768);

      // speech onset: first 20 ms frame above −40 dBFS
      const frameDb = (x: number[], i: number): number => db(rms(x, i * 320, (i + 1) * 320));
      const onset = (x: number[]): number => {
        for (let i = 0; (i + 1) * 320 <= x.length; i++) if (frameDb(x, i) > -40) return i * 20;
        return -1;
      };
      const capOnset = onset(y);
      const refOnset = onset(refF);
      log(`onset: captured ${capOnset} ms, fixture ${refOnset} ms`);
      assert.ok(capOnset >= 0, 'no speech captured');
      assert.ok(capOnset < 2000, `speech starts late: ${capOnset} ms`);

      // energy: the fixture's speech energy (≈ 3 s) must all be there, at the same level (no AGC)
      const capSpeechRms = rms(y, (capOnset / 1000) * 16000, (capOnset / 1000 + 3.2) * 16000);
      const refSpeechRms = rms(refF, (refOnset / 1000) * 16000, (refOnset / 1000 + 3.2) * 16000);
      log(
        `speech rms: captured ${db(capSpeechRms).toFixed(1)} dBFS, fixture ${db(refSpeechRms).toFixed(1)} dBFS`,
      );
      assert.ok(
        Math.abs(db(capSpeechRms / refSpeechRms)) < 3,
        'speech level differs from the fixture by > 3 dB',
      );

      // content: normalised cross-correlation against the 16 kHz fixture, per 200 ms speech window
      // (each window finds its own lag, so a dropout under CPU load only spoils the windows around it)
      const lag0 = Math.round(((capOnset - refOnset) / 1000) * 16000);
      const win = 3200;
      const windows: { at: number; corr: number; lagMs: number }[] = [];
      for (
        let s0 = Math.round((refOnset / 1000) * 16000);
        s0 + win <= refF.length && windows.length < 15;
        s0 += win
      ) {
        if (db(rms(refF, s0, s0 + win)) < -35) continue;
        let best = -1;
        let bestLag = 0;
        for (let lag = lag0 - 1600; lag <= lag0 + 1600; lag++) {
          let xy = 0;
          let xx = 0;
          let yy = 0;
          for (let i = s0; i < s0 + win; i++) {
            const a = refF[i] ?? 0;
            const b = y[i + lag] ?? 0;
            xy += a * b;
            xx += a * a;
            yy += b * b;
          }
          const c = xy / Math.sqrt(xx * yy || 1);
          if (c > best) {
            best = c;
            bestLag = lag;
          }
        }
        windows.push({ at: s0 / 16, corr: best, lagMs: bestLag / 16 });
      }
      log(
        'xcorr per window',
        windows
          .map((w) => `${w.at.toFixed(0)}ms:${w.corr.toFixed(3)}@${w.lagMs.toFixed(2)}`)
          .join(' '),
      );
      const matching = windows.filter((w) => w.corr > 0.95).length;
      assert.ok(windows.length >= 10, `${windows.length} speech windows`);
      assert.ok(
        matching >= windows.length * 0.6,
        `captured audio does not match the fixture: ${windows.map((w) => w.corr.toFixed(2)).join(' ')}`,
      );

      // after the file ends (%noloop) the fake device keeps delivering silence rather than looping
      const tail = rms(y, y.length - 8000, y.length);
      assert.ok(db(tail) < -60, `tail ${db(tail).toFixed(1)} dBFS: the file looped?`);
    } finally {
      await page.close();
    }
  });
});

describe('playback worklet', () => {
  let page: Page;
  before(async () => {
    page = await openHarness(browser);
  });
  after(async () => {
    await page?.close();
  });

  test('stop after ~300 ms: reports what was actually played and is silent from the next quantum', async () => {
    const r = await page.evaluate(() =>
      window.harness.playback({ toneMs: 1000, chunks: 10, stopAfterMs: 300, waitMs: 300 }),
    );
    log(
      'playback',
      r.sampleRate,
      JSON.stringify(
        r.messages.map((m) => [m.type, m.playedMs?.toFixed(1), (m.t ?? 0).toFixed(0)]),
      ),
    );
    const stopped = r.stopped;
    assert.ok(stopped, 'no stopped reply');
    assert.equal(stopped.turnId, 7);
    const playedMs = stopped.playedMs ?? -1;
    assert.ok(playedMs >= 200 && playedMs <= 500, `stopped.playedMs ${playedMs}`);
    assert.equal(stopped.playedSamples, Math.round((playedMs * 24000) / 1000));
    const played = r.messages.filter((m) => m.type === 'played');
    assert.ok(played.length >= 2, `${played.length} played messages`);
    const progress = played.map((m) => m.playedMs ?? 0);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      'played progress must be monotonic',
    );
    assert.deepEqual([...new Set(played.map((m) => m.turnId))], [7], 'played.turnId');
    assert.ok(
      played.some((m) => (m.level ?? 0) > 0.3),
      'played.level should reflect the 0.5-amplitude tone (rms 0.354)',
    );
    assert.equal(
      r.messages.filter((m) => m.type === 'drained').length,
      0,
      'stopped playback must not report drained',
    );

    // the output tap: loud up to silentFromFrame, silent from it on
    const silentFrom = stopped.silentFromFrame ?? -1;
    const idx = r.frames.indexOf(silentFrom);
    assert.ok(idx > 0, `recorder has no block at frame ${silentFrom}`);
    assert.ok((r.peaks[idx - 1] ?? 0) > 0.4, `block before stop has peak ${r.peaks[idx - 1]}`);
    const after = r.peaks.slice(idx);
    assert.ok(after.length > 10 && after.every((p) => p === 0), 'output not silent after stop');

    // played counts what was rendered: compare with the tone blocks the tap saw
    const loudBlocks = r.peaks.slice(0, idx).filter((p) => p > 0.1).length;
    const tapMs = (loudBlocks * 128 * 1000) / r.sampleRate;
    assert.ok(
      Math.abs(tapMs - playedMs) < 10,
      `tap saw ${tapMs.toFixed(1)} ms, worklet reports ${playedMs.toFixed(1)} ms`,
    );
  });

  test('plays everything and reports drained at 48 kHz', async () => {
    const r = await page.evaluate(() =>
      window.harness.playback({
        toneMs: 400,
        chunks: 4,
        stopAfterMs: null,
        waitMs: 700,
        contextRate: 48000,
      }),
    );
    assert.equal(r.sampleRate, 48000);
    const drained = r.drained;
    assert.ok(drained, 'no drained message');
    assert.equal(drained.turnId, 7);
    assert.equal(drained.playedSamples, 9600);
    assert.ok(
      Math.abs((drained.playedMs ?? 0) - 400) < 0.01,
      `drained.playedMs ${drained.playedMs}`,
    );
    const loudBlocks = r.peaks.filter((p) => p > 0.1).length;
    const tapMs = (loudBlocks * 128 * 1000) / r.sampleRate;
    assert.ok(Math.abs(tapMs - 400) < 8, `tap saw ${tapMs.toFixed(1)} ms`);
    // the tone through the 24k→48k upsampler: check it is clean (no block-boundary clicks)
    assert.ok(
      r.peaks.every((p) => p < 0.52),
      'overshoot / clicks in playback',
    );
  });

  test('per-turn counters across back-to-back turns; overflow drops the oldest audio', async () => {
    const msgs = await page.evaluate(() => window.harness.playbackTurns());
    log(
      'turns',
      msgs.map((m) => `${m.type}:${m.turnId}:${m.playedSamples ?? m.droppedMs}`).join(' '),
    );
    const played = msgs.filter((m) => m.type === 'played');
    const turns = played.map((m) => m.turnId);
    for (const turn of [1, 2]) {
      const finals = played.filter((m) => m.turnId === turn).map((m) => m.playedSamples ?? 0);
      assert.ok(
        finals.every((n) => n <= 4800),
        `turn ${turn} progress beyond its length: ${finals.join(',')}`,
      );
    }
    assert.deepEqual([...new Set(turns)].slice(0, 2), [1, 2], `played turns ${turns.join(',')}`);
    // the last progress report of turn 1 is its full length
    const lastOf1 = played.filter((m) => m.turnId === 1).at(-1);
    assert.ok(
      lastOf1 && Math.abs((lastOf1.playedSamples ?? 0) - 4800) <= 200,
      `turn 1 final ${lastOf1?.playedSamples}`,
    );
    const drained = msgs.filter((m) => m.type === 'drained');
    assert.equal(drained.length, 1, 'one drained after both turns');
    assert.equal(drained[0]?.turnId, 2);
    assert.equal(drained[0]?.playedSamples, 4800);
    const overflow = msgs.find((m) => m.type === 'overflow');
    assert.ok(overflow, 'no overflow message');
    assert.equal(overflow.turnId, 3);
    assert.ok(Math.abs((overflow.droppedMs ?? 0) - 500) < 1, `droppedMs ${overflow.droppedMs}`);
    const stopped = msgs.find((m) => m.type === 'stopped');
    assert.ok(stopped && stopped.turnId === 3, 'stopped for turn 3');
    assert.ok(
      (stopped.playedMs ?? 0) > 30 && (stopped.playedMs ?? 0) < 300,
      `turn 3 played ${stopped.playedMs} ms`,
    );
  });
});
