import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeldOutput } from './held-output.js';

describe('HeldOutput', () => {
  test('keeps messages and audio in order until released; afterwards nothing is kept', () => {
    const hold = new HeldOutput(1_000);
    const pcm = new Uint8Array(100);
    hold.message({ type: 'status', state: 'thinking' });
    hold.audio(pcm);
    hold.message({ type: 'text_delta', turn_id: 1, delta: 'Hi' });
    assert.equal(
      hold.size,
      '{"type":"status","state":"thinking"}'.length +
        100 +
        '{"type":"text_delta","turn_id":1,"delta":"Hi"}'.length,
    );
    const items = hold.release();
    assert.deepEqual(items, [
      { type: 'status', state: 'thinking' },
      pcm,
      { type: 'text_delta', turn_id: 1, delta: 'Hi' },
    ]);
    assert.equal(hold.holding, false);
    hold.message({ type: 'status', state: 'speaking' });
    assert.deepEqual(hold.release(), [], 'released once');
  });

  test('past its bound, room() waits until the hold is released or dropped', async () => {
    for (const end of ['release', 'drop'] as const) {
      const hold = new HeldOutput(150);
      hold.audio(new Uint8Array(150));
      assert.equal(hold.room(), undefined, 'at the bound: room');
      hold.audio(new Uint8Array(2));
      const wait = hold.room();
      assert.ok(wait, 'over the bound: a promise');
      assert.equal(hold.room(), wait, 'one promise for every waiter');
      let settled = false;
      void wait.then(() => (settled = true));
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(settled, false);
      if (end === 'release') hold.release();
      else hold.drop();
      await wait;
      assert.equal(hold.room(), undefined);
    }
  });

  test('a dropped hold throws away what it held and whatever comes after', () => {
    const hold = new HeldOutput(10);
    hold.audio(new Uint8Array(4));
    hold.drop();
    assert.equal(hold.dropped, true);
    hold.message({ type: 'status', state: 'thinking' });
    assert.equal(hold.size, 0);
    assert.deepEqual(hold.release(), []);
  });
});
