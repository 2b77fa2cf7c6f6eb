import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FixedWindow } from './guard.js';

test('FixedWindow: N points per window from its first point, then the wait until it ends', () => {
  const window = new FixedWindow(3, 1000);
  assert.equal(window.take(10_000), undefined);
  assert.equal(window.take(10_100), undefined);
  assert.equal(window.take(10_200), undefined);
  assert.equal(window.take(10_300), 700);
  assert.equal(window.take(10_999), 1);
  assert.equal(window.take(11_000), undefined, 'a new window starts with the next point');
  assert.equal(window.take(11_001), undefined);
});
