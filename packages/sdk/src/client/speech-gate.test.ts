import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VadEvent } from '../vad.js';
import { MAX_HELD_FRAMES, SpeechGate, type SpeechGateOptions } from './speech-gate.js';

/** A 20 ms frame tagged with `id` (its first sample), so tests can follow frames through the gate. */
const frame = (id: number): Int16Array => Int16Array.of(id, 0, 0);
const ids = (frames: readonly Int16Array[]): number[] => frames.map((f) => f[0] ?? -1);

/** A gate whose decisions are recorded, in order, as `confirm [ids]`, `audio id`, `end`, `discard misfire|short`. */
function recorded(options: SpeechGateOptions = {}) {
  const log: string[] = [];
  const held: number[][] = [];
  const gate = new SpeechGate(options, {
    confirm: (frames) => {
      held.push(ids(frames));
      log.push(`confirm ${frames.length}`);
    },
    audio: (f) => log.push(`audio ${f[0]}`),
    end: () => log.push('end'),
    pause: (silenceMs) => log.push(`pause ${silenceMs}`),
    resume: () => log.push('resume'),
    discard: (misfire) => log.push(`discard ${misfire ? 'misfire' : 'short'}`),
  });
  let next = 1000;
  /** Feeds frames (voiced or not), each with the given events on the first one. */
  const feed = (voicing: boolean[], events: VadEvent[] = []): number[] => {
    const fed: number[] = [];
    voicing.forEach((voiced, i) => {
      const id = next++;
      fed.push(id);
      gate.process(frame(id), i === 0 ? events : [], voiced);
    });
    return fed;
  };
  return { gate, log, held, feed };
}

const start = (preroll: number[] = []): VadEvent[] => [
  { type: 'speech-start', preroll: preroll.map(frame) },
];
const voiced = (n: number): boolean[] => Array.from({ length: n }, () => true);
const silent = (n: number): boolean[] => Array.from({ length: n }, () => false);

describe('SpeechGate', () => {
  it('the decision window is minInterruptionMs (250 by default), at least minSpeechMs, in 20 ms frames', () => {
    assert.equal(recorded().gate.windowFrames, 13);
    assert.equal(recorded({ minInterruptionMs: 100 }).gate.windowFrames, 5);
    assert.equal(recorded({ minInterruptionMs: 100, minSpeechMs: 400 }).gate.windowFrames, 20);
  });

  it('holds speech back until the window is voiced, then passes the pre-speech pad and the held frames, in order, and streams the rest', () => {
    const { gate, log, held, feed } = recorded();
    assert.equal(gate.status, 'silent');
    const first = feed(voiced(12), start([1, 2, 3]));
    assert.equal(gate.status, 'pending');
    assert.deepEqual(log, [], 'nothing passes while pending');
    const last = feed(voiced(1));
    assert.equal(gate.status, 'confirmed');
    assert.deepEqual(log, ['confirm 16']);
    assert.deepEqual(held[0], [1, 2, 3, ...first, ...last]);
    const more = feed(voiced(2));
    assert.deepEqual(
      log.slice(1),
      more.map((id) => `audio ${id}`),
    );
    feed([false], [{ type: 'speech-end', durationMs: 600 }]);
    assert.deepEqual(log.slice(3), ['end'], 'the frame that ends speech is not part of it');
    assert.equal(gate.status, 'silent');
    feed(voiced(3));
    assert.equal(log.length, 4, 'nothing passes between utterances');
  });

  it('confirms once 70% of the last window is voiced (the bot’s echo, not voiced, does not count)', () => {
    const { gate, log, feed } = recorded();
    feed([...silent(4), ...voiced(9)], start());
    assert.equal(gate.status, 'pending', '9 of 13 voiced');
    feed(voiced(1));
    assert.equal(gate.status, 'confirmed', 'the window slid: 10 of the last 13 voiced');
    assert.deepEqual(log, ['confirm 14']);
  });

  it('a cough: the detector’s misfire drops it, and nothing passes', () => {
    const { gate, log, feed } = recorded();
    feed(voiced(5), start([1, 2]));
    feed([true], [{ type: 'misfire' }]);
    assert.deepEqual(log, ['discard misfire']);
    assert.equal(gate.status, 'silent');
  });

  it('speech that ends before it is confirmed is discarded, not ended', () => {
    const { log, feed } = recorded();
    feed([...voiced(3), ...silent(10)], start());
    feed([false], [{ type: 'speech-end', durationMs: 260 }]);
    assert.deepEqual(log, ['discard short']);
  });

  it(`holds at most ${MAX_HELD_FRAMES} frames (the oldest go)`, () => {
    const { held, feed } = recorded();
    const preroll = Array.from({ length: 45 }, (_, i) => i + 1);
    const fed = feed([...silent(10), ...voiced(10)], start(preroll));
    assert.equal(held[0]?.length, MAX_HELD_FRAMES);
    assert.deepEqual(held[0], [...preroll, ...fed].slice(-MAX_HELD_FRAMES));
  });

  it('a new onset restarts the decision (held frames and window); reset() forgets the utterance', () => {
    const { gate, log, held, feed } = recorded();
    feed(voiced(12), start([1]));
    const second = feed(voiced(13), start([2]));
    assert.deepEqual(held[0], [2, ...second], 'only the second onset’s audio');
    assert.equal(log.length, 1);
    gate.reset();
    assert.equal(gate.status, 'silent');
    feed(voiced(5));
    feed([false], [{ type: 'speech-end', durationMs: 500 }]);
    assert.deepEqual(
      log,
      ['confirm 14', 'discard short'],
      'after reset() the utterance is gone: its end is not an end',
    );
  });

  it('pauses and resumes of confirmed speech are passed on before the frame they came with; before confirmation they mean nothing', () => {
    const { gate, log, feed } = recorded();
    feed(voiced(5), start());
    feed([false], [{ type: 'pause', silenceMs: 220 }]);
    feed([true], [{ type: 'resume' }]);
    assert.deepEqual(log, [], 'pending speech: no pause, no resume');
    feed(voiced(13));
    log.length = 0;
    const [paused] = feed([false], [{ type: 'pause', silenceMs: 220 }]);
    const [resumed] = feed([true], [{ type: 'resume' }]);
    assert.deepEqual(log, ['pause 220', `audio ${paused}`, 'resume', `audio ${resumed}`]);
    assert.equal(gate.status, 'confirmed', 'a pause does not end the utterance');
  });

  it('apply(): the end of an utterance the client decided (the detector’s endSpeech() event) ends or discards it', () => {
    const { gate, log, feed } = recorded();
    feed(voiced(13), start());
    gate.apply([{ type: 'speech-end', durationMs: 260 }]);
    assert.deepEqual(log, ['confirm 13', 'end']);
    assert.equal(gate.status, 'silent');
    feed(voiced(4), start());
    gate.apply([{ type: 'misfire' }]);
    assert.deepEqual(log.slice(2), ['discard misfire']);
  });
});
