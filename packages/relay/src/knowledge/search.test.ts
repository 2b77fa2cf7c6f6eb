import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '@voice-bot/fake-provider';
import { dotProducts, topK } from './search.js';

test('dot products (unrolled, any length) and top-k match the plain computation', () => {
  const random = mulberry32(7);
  for (const dimensions of [1, 7, 8, 13, 256]) {
    const rows = 50;
    const matrix = Float32Array.from({ length: rows * dimensions }, () => random() - 0.5);
    const query = Float32Array.from({ length: dimensions }, () => random() - 0.5);
    const scores = dotProducts(matrix, dimensions, rows, query);
    const plain = Array.from({ length: rows }, (_r, row) => {
      let sum = 0;
      for (let k = 0; k < dimensions; k++)
        sum += (matrix[row * dimensions + k] ?? 0) * (query[k] ?? 0);
      return sum;
    });
    plain.forEach((expected, row) => assert.ok(Math.abs((scores[row] ?? 0) - expected) < 1e-4));
    const best = plain
      .map((score, i) => ({ score: Math.fround(scores[i] ?? 0), i }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10)
      .map((x) => x.i);
    assert.deepEqual(topK(scores, 10), best);
  }
  assert.deepEqual(topK(new Float32Array([0.1, 0.3, 0.2]), 5), [1, 2, 0]);
});
