import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heardText } from './heard.js';

const RATE = 24_000;
const ms = (n: number) => (n / 1000) * RATE * 2;
const segments = [
  { text: 'Our opening hours are nine to five.', bytes: ms(2000) },
  { text: 'On Saturday we open at ten and close at two.', bytes: ms(3000) },
];

test('keeps whole segments that were fully played and the played share of the next', () => {
  assert.equal(heardText(segments, 0, RATE), '');
  assert.equal(heardText(segments, 2000, RATE), 'Our opening hours are nine to five.');
  assert.equal(
    heardText(segments, 3500, RATE),
    'Our opening hours are nine to five. On Saturday we open at…',
  );
  assert.equal(
    heardText(segments, 10_000, RATE),
    'Our opening hours are nine to five. On Saturday we open at ten and close at two.',
  );
});

test('a segment still streaming is measured by the speaking rate of the finished ones', () => {
  const streaming = [
    { text: 'Our opening hours are nine to five.', bytes: ms(2000) },
    { text: 'On Saturday we open at ten and close at two.', bytes: ms(500), complete: false },
  ];
  // 44 chars at the first segment's rate (2000 ms / 35 chars) ≈ 2514 ms; 1300 ms in is just over half of it
  assert.equal(
    heardText(streaming, 2000 + 1300, RATE),
    'Our opening hours are nine to five. On Saturday we open at…',
  );
  assert.equal(
    heardText([{ text: 'One two three four', bytes: ms(100), complete: false }], 600, RATE),
    'One two…',
  );
});
