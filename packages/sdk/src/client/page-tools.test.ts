import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientMessageInput } from '../protocol/index.js';
import { PageToolRunner, type ClientTool } from './page-tools.js';

function runner(tools: ClientTool[]) {
  const sent: ClientMessageInput[] = [];
  const map = new Map(tools.map((tool) => [tool.name, tool]));
  const run = new PageToolRunner(map, (message) => sent.push(message) > 0);
  const call = (name: string, args: unknown = {}, id = 'c1') =>
    run.handle({ type: 'tool_call', turn_id: 3, call_id: id, name, args });
  const settled = () => new Promise((resolve) => setTimeout(resolve, 0));
  return { run, sent, call, settled };
}

test('a handler’s result (sync or async) goes back as tool_result', async () => {
  const seen: unknown[] = [];
  const { sent, call, settled } = runner([
    {
      name: 'show',
      handler: async (args, { turnId }) => {
        seen.push(args, turnId);
        return { shown: (args as { section: string }).section };
      },
    },
  ]);
  call('show', { section: 'prices' });
  await settled();
  assert.deepEqual(seen, [{ section: 'prices' }, 3]);
  assert.deepEqual(sent, [
    { type: 'tool_result', call_id: 'c1', ok: true, result: { shown: 'prices' } },
  ]);
});

test('failures are answered, never left hanging: a throw, an unknown tool, a result over 8 KB', async () => {
  const { sent, call, settled } = runner([
    {
      name: 'broken',
      handler: () => {
        throw new Error('no such section');
      },
    },
    { name: 'big', handler: () => 'x'.repeat(9_000) },
  ]);
  call('broken', {}, 'a');
  call('missing', {}, 'b');
  call('big', {}, 'c');
  await settled();
  assert.deepEqual(
    sent.map((m) => (m.type === 'tool_result' ? [m.call_id, m.ok, m.error] : m.type)),
    [
      ['a', false, 'no such section'],
      ['b', false, 'missing is not registered on this page'],
      ['c', false, 'the result is 9002 bytes of JSON; the limit is 8192'],
    ],
  );
});

test('tool_cancel aborts the handler’s signal and nothing is sent', async () => {
  let signal: AbortSignal | undefined;
  let finish: (value: unknown) => void = () => undefined;
  const { run, sent, call, settled } = runner([
    {
      name: 'slow',
      handler: (_args, context) => {
        signal = context.signal;
        return new Promise((resolve) => (finish = resolve));
      },
    },
  ]);
  call('slow');
  run.handle({ type: 'tool_cancel', call_id: 'c1' });
  assert.equal(signal?.aborted, true);
  finish('late');
  await settled();
  assert.deepEqual(sent, []);
});
