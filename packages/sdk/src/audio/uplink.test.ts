import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UplinkBatcher } from './uplink.js';

/** 20 ms capture frames whose samples count up from `start`. */
function frames(count: number, start = 0): Int16Array[] {
  return Array.from({ length: count }, (_, f) =>
    Int16Array.from({ length: 320 }, (_, i) => (start + f * 320 + i) % 32768),
  );
}

describe('UplinkBatcher', () => {
  it('packs 20 ms frames into 100 ms messages without losing or reordering a sample', () => {
    const sent: Int16Array[] = [];
    const uplink = new UplinkBatcher((pcm) => sent.push(pcm), 100);
    for (const frame of frames(12)) uplink.push(frame);
    assert.deepEqual(
      sent.map((m) => m.length),
      [1600, 1600],
      'two full messages after 12 frames; the last 2 frames are held',
    );
    uplink.flush();
    assert.deepEqual(
      sent.map((m) => m.length),
      [1600, 1600, 640],
    );
    const joined = Int16Array.from(sent.flatMap((m) => [...m]));
    assert.deepEqual([...joined], [...Int16Array.from({ length: 12 * 320 }, (_, i) => i)]);
    uplink.flush();
    assert.equal(sent.length, 3, 'flushing an empty batch sends nothing');
  });

  it('sends copies: a held message is not overwritten by later audio', () => {
    const sent: Int16Array[] = [];
    const uplink = new UplinkBatcher((pcm) => sent.push(pcm), 20);
    const [a, b] = frames(2);
    uplink.push(a as Int16Array);
    uplink.push(b as Int16Array);
    assert.equal(sent.length, 2);
    assert.equal(sent[0]?.[0], 0);
    assert.equal(sent[1]?.[0], 320);
  });

  it('splits a frame that straddles a message boundary (sizes that are not a multiple of 20 ms)', () => {
    const sent: Int16Array[] = [];
    const uplink = new UplinkBatcher((pcm) => sent.push(pcm), 50);
    for (const frame of frames(5)) uplink.push(frame);
    uplink.flush();
    assert.deepEqual(
      sent.map((m) => m.length),
      [800, 800],
    );
    assert.equal(sent[1]?.[0], 800);
  });

  it('discard drops the held audio of an abandoned utterance', () => {
    const sent: Int16Array[] = [];
    const uplink = new UplinkBatcher((pcm) => sent.push(pcm), 100);
    for (const frame of frames(3)) uplink.push(frame);
    uplink.discard();
    uplink.flush();
    assert.equal(sent.length, 0);
    for (const frame of frames(5, 7)) uplink.push(frame);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.[0], 7, 'the next utterance starts clean');
  });

  it('refuses frame sizes outside 20–1000 ms', () => {
    assert.throws(() => new UplinkBatcher(() => undefined, 10), RangeError);
    assert.throws(() => new UplinkBatcher(() => undefined, 5000), RangeError);
    assert.throws(() => new UplinkBatcher(() => undefined, Number.NaN), RangeError);
  });
});
