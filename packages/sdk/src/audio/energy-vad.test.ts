import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { monoSamples, readWav } from '../../../../test/support/audio-dsp.js';
import { EnergyVad, frameDbfs, type EnergyVadOptions, type VadEvent } from './energy-vad.js';

const FIXTURES = '../shared/fixtures/audio/16k';

interface Run {
  events: (VadEvent & { atMs: number })[];
  utterances: { startMs: number; endMs: number }[];
}

function run(samples: Int16Array, opts?: EnergyVadOptions, frame = 320): Run {
  const vad = new EnergyVad(opts);
  const events: Run['events'] = [];
  for (let i = 0; i + frame <= samples.length; i += frame) {
    for (const e of vad.process(samples.subarray(i, i + frame)))
      events.push({ ...e, atMs: (i * 1000) / 16000 });
  }
  const utterances: Run['utterances'] = [];
  let start = -1;
  for (const e of events) {
    if (e.type === 'speech-start') start = e.startMs;
    if (e.type === 'speech-end') utterances.push({ startMs: start, endMs: e.endMs });
  }
  return { events, utterances };
}

function fixture(name: string): Int16Array {
  const wav = readWav(`${FIXTURES}/${name}.wav`);
  assert.equal(wav.sampleRate, 16000);
  return monoSamples(wav);
}

const describeRun = (r: Run): string =>
  r.events
    .map((e) => `${e.type}@${e.atMs}${e.type === 'speech-end' ? `(${e.durationMs}ms)` : ''}`)
    .join(' ');

describe('EnergyVad on the 16 kHz fixtures', () => {
  for (const [name, count] of [
    ['hours', 1],
    ['weather', 1],
    ['book', 1],
    ['stop', 1],
    ['two-turns', 2],
    ['barge-in', 2],
    ['silence', 0],
    ['noise', 0],
  ] as const) {
    test(`${name}.wav: ${count} utterance(s)`, () => {
      const r = run(fixture(name));
      assert.equal(r.utterances.length, count, describeRun(r));
      assert.equal(r.events.filter((e) => e.type === 'misfire').length, 0, describeRun(r));
      const starts = r.events.filter((e) => e.type === 'speech-start').length;
      assert.equal(starts, count, describeRun(r));
      const first = r.utterances[0];
      if (first) {
        assert.ok(Math.abs(first.startMs - 600) <= 150, `onset at ${first.startMs} ms`);
        assert.ok(first.endMs > first.startMs + 500, `utterance ${first.startMs}..${first.endMs}`);
      }
    });
  }

  test('quieter speech (fixtures at −20 dB, a typical laptop mic) is still found', () => {
    for (const [name, count] of [
      ['hours', 1],
      ['stop', 1],
      ['barge-in', 2],
    ] as const) {
      const r = run(Int16Array.from(fixture(name), (v) => Math.round(v / 10)));
      assert.equal(r.utterances.length, count, `${name}: ${describeRun(r)}`);
    }
  });

  test('utterance boundaries match the fixture layout (two-turns: hours then book)', () => {
    const r = run(fixture('two-turns'));
    const [a, b] = r.utterances;
    assert.ok(a && b, describeRun(r));
    // hours speech ≈ 0.6–3.7 s; book starts after hours' 2 s trailing silence + 0.6 s lead-in
    assert.ok(a.endMs > 3400 && a.endMs < 3900, `first ends at ${a.endMs}`);
    assert.ok(b.startMs > 6300 && b.startMs < 6700, `second starts at ${b.startMs}`);
  });

  test('speech-end arrives redemptionMs after the last speech frame', () => {
    const r = run(fixture('hours'), { redemptionMs: 700 });
    const end = r.events.find((e) => e.type === 'speech-end');
    assert.ok(end && end.type === 'speech-end', describeRun(r));
    assert.ok(
      Math.abs(end.atMs + 20 - (end.endMs + 700)) <= 20,
      `event at ${end.atMs}, speech ended ${end.endMs}`,
    );
  });

  test('preroll holds preSpeechPadMs of audio from before the onset', () => {
    const vad = new EnergyVad({ preSpeechPadMs: 300 });
    const x = fixture('weather');
    let start: Extract<VadEvent, { type: 'speech-start' }> | undefined;
    for (let i = 0; i + 320 <= x.length && !start; i += 320) {
      start = vad
        .process(x.subarray(i, i + 320))
        .find((e) => e.type === 'speech-start') as typeof start;
    }
    assert.ok(start, 'no speech-start');
    assert.equal(start.preroll.length, 15);
    assert.ok(start.preroll.every((f) => f.length === 320));
    // the pre-roll is contiguous audio ending right before the onset frame
    const onsetSample = (start.startMs * 16000) / 1000;
    const expected = x.subarray(onsetSample - 15 * 320, onsetSample);
    const got = new Int16Array(15 * 320);
    start.preroll.forEach((f, i) => got.set(f, i * 320));
    assert.deepEqual(got, expected);
  });

  test('a short stop-like click is a misfire, and works with 10 ms frames', () => {
    const x = new Int16Array(16000 * 3);
    for (let i = 16000; i < 16000 + 1600; i++) x[i] = Math.round(8000 * Math.sin(i / 3)); // 100 ms burst
    const r = run(x, undefined, 160);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['speech-start', 'misfire'],
    );
  });

  test('a background that gets loud and stays loud ends the utterance instead of sticking', () => {
    const x = new Int16Array(16000 * 10);
    let seed = 3;
    for (let i = 16000; i < x.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      x[i] = Math.round((seed / 2 ** 32 - 0.5) * 2 * 1500); // ≈ −31 dBFS white noise from 1 s on
    }
    const r = run(x);
    const types = r.events.map((e) => e.type);
    assert.equal(types[0], 'speech-start');
    assert.ok(types.length === 2 && types[1] !== 'speech-start', describeRun(r));
    const last = r.events[r.events.length - 1];
    assert.ok(last && last.atMs < 6000, `ended at ${last?.atMs}`);
  });

  test('frameDbfs', () => {
    assert.equal(frameDbfs(new Int16Array(320)), -100);
    const full = new Int16Array(320).fill(-32768);
    assert.ok(Math.abs(frameDbfs(full)) < 1e-9);
  });
});

describe('EnergyVad pauses (pauseMs)', () => {
  const loud = (): Int16Array => Int16Array.from({ length: 320 }, (_, i) => (i % 2 ? 8000 : -8000));
  const quiet = (): Int16Array => new Int16Array(320);
  /** Feeds `pattern` ('s' 20 ms of speech, '.' 20 ms of silence); events with the ms they came at. */
  const feed = (vad: EnergyVad, pattern: string): string[] => {
    const out: string[] = [];
    [...pattern].forEach((c, i) => {
      for (const e of vad.process(c === 's' ? loud() : quiet()))
        out.push(e.type === 'pause' ? `pause(${e.silenceMs})@${i * 20}` : `${e.type}@${i * 20}`);
    });
    return out;
  };

  test('silence of pauseMs in speech is a pause, speech after it a resume; the end comes at redemptionMs', () => {
    const vad = new EnergyVad({ pauseMs: 200, redemptionMs: 600 });
    const events = feed(
      vad,
      `${'s'.repeat(20)}${'.'.repeat(15)}${'s'.repeat(10)}${'.'.repeat(35)}`,
    );
    assert.deepEqual(events, [
      'speech-start@0',
      'pause(200)@580',
      'resume@700',
      'pause(200)@1080',
      'speech-end@1480',
    ]);
  });

  test('without pauseMs: no pause or resume events (the detector as it always was)', () => {
    const vad = new EnergyVad({ redemptionMs: 600 });
    const events = feed(
      vad,
      `${'s'.repeat(20)}${'.'.repeat(15)}${'s'.repeat(10)}${'.'.repeat(35)}`,
    );
    assert.deepEqual(events, ['speech-start@0', 'speech-end@1480']);
  });

  test('silenceMs counts the silence in speech; endSpeech() ends it as redemption would, and the next speech starts anew', () => {
    const vad = new EnergyVad({ pauseMs: 200, redemptionMs: 1200, minSpeechMs: 250 });
    feed(vad, `${'s'.repeat(20)}${'.'.repeat(8)}`);
    assert.equal(vad.silenceMs, 160);
    const end = vad.endSpeech();
    assert.equal(end?.type, 'speech-end');
    assert.equal(vad.speaking, false);
    assert.equal(vad.silenceMs, 0);
    assert.equal(vad.endSpeech(), undefined, 'nothing to end');
    assert.deepEqual(feed(vad, 'ss'), ['speech-start@0']);
    assert.equal(vad.endSpeech()?.type, 'misfire', '40 ms of speech is too short');
  });

  test('hours.wav ("Hi there. What are your opening hours on Saturday?"): its inner pause is a pause and a resume, not an end', () => {
    const r = run(fixture('hours'), { pauseMs: 220, redemptionMs: 1200 });
    const types = r.events.map((e) => e.type);
    assert.deepEqual(
      types,
      ['speech-start', 'pause', 'resume', 'pause', 'speech-end'],
      describeRun(r),
    );
    const [, innerPause, resume] = r.events;
    const gap = (resume?.atMs ?? 0) - (innerPause?.atMs ?? 0) + 220;
    assert.ok(gap > 250 && gap < 450, `inner silence ≈ ${gap} ms`);
  });

  test('a complete question has no inner pause: weather.wav pauses once, at its end', () => {
    const r = run(fixture('weather'), { pauseMs: 220, redemptionMs: 1200 });
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['speech-start', 'pause', 'speech-end'],
      describeRun(r),
    );
  });
});
