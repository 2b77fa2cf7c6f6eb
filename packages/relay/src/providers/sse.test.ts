import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser, SseTooLarge } from './sse.js';

function parse(pieces: string[]): [string, string | undefined][] {
  const events: [string, string | undefined][] = [];
  const parser = new SseParser((data, event) => events.push([data, event]));
  for (const piece of pieces) parser.push(piece);
  return events;
}

const STREAM =
  ': keep-alive\r\n' +
  'data: {"a":1}\r\n\r\n' +
  'event: note\ndata:first\ndata:  second\n\n' +
  'data\rid: 7\rretry: 10\r\r' +
  'data: é😀 unicode\n\n' +
  'data: [DONE]\n\n' +
  'data: never finished';

const EXPECTED: [string, string | undefined][] = [
  ['{"a":1}', undefined],
  ['first\n second', 'note'],
  ['', undefined],
  ['é😀 unicode', undefined],
  ['[DONE]', undefined],
];

test('SseParser: LF, CRLF and CR line ends, comments, multi-line data, event names; an unfinished event is dropped', () => {
  assert.deepEqual(parse([STREAM]), EXPECTED);
});

test('SseParser: the same events however the text is cut (every split point, CRLF cut in two included)', () => {
  for (let i = 0; i <= STREAM.length; i++)
    assert.deepEqual(parse([STREAM.slice(0, i), STREAM.slice(i)]), EXPECTED, `split at ${i}`);
  assert.deepEqual(parse([...STREAM]), EXPECTED, 'one character at a time');
});

test('SseParser: an event that grows without end is refused', () => {
  const parser = new SseParser(() => undefined);
  const line = `data: ${'x'.repeat(2 ** 20)}\n`;
  assert.throws(() => {
    for (let i = 0; i < 8; i++) parser.push(line);
  }, SseTooLarge);
  assert.throws(
    () => new SseParser(() => undefined).push('x'.repeat(5 * 2 ** 20)),
    SseTooLarge,
    'a line with no end',
  );
});
