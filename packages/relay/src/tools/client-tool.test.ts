import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerMessage } from '@voice-bot/protocol';
import { MAX_PENDING_CLIENT_CALLS, PageToolCalls, clientTool } from './client-tool.js';
import { ToolRunner } from './runner.js';
import { ToolError } from './types.js';

function page(names: string[] = ['show']) {
  const calls = new PageToolCalls();
  calls.announce(names);
  const sent: ServerMessage[] = [];
  const context = (signal = new AbortController().signal) => ({
    turnId: 1,
    signal,
    notify: (message: ServerMessage) => sent.push(message),
  });
  return { calls, sent, context };
}

const callIdOf = (message: ServerMessage | undefined): string =>
  message?.type === 'tool_call' ? message.call_id : assert.fail('not a tool_call');

test('a call goes to the page and resolves with its answer; a second answer is unknown', async () => {
  const { calls, sent, context } = page();
  const result = calls.call('show', { section: 'prices' }, context());
  const message = sent[0];
  assert.equal(message?.type, 'tool_call');
  const id = callIdOf(message);
  assert.equal(calls.settle({ type: 'tool_result', call_id: id, ok: true, result: [1] }), true);
  assert.deepEqual(await result, [1]);
  assert.equal(calls.settle({ type: 'tool_result', call_id: id, ok: true }), false);
  assert.equal(calls.waiting, 0);
});

test('abort: the call rejects as cancelled, the page gets tool_cancel, nothing stays pending', async () => {
  const { calls, sent, context } = page();
  const controller = new AbortController();
  const result = calls.call('show', {}, context(controller.signal));
  controller.abort();
  await assert.rejects(result, (e: unknown) => e instanceof ToolError && e.message === 'cancelled');
  assert.deepEqual(sent[1], { type: 'tool_cancel', call_id: callIdOf(sent[0]) });
  assert.equal(calls.waiting, 0);
});

test('unregistered tools fail at once; waiting calls are bounded; close rejects them all', async () => {
  const { calls, context } = page();
  await assert.rejects(calls.call('other', {}, context()), /not available on this page/);
  const waiting = Array.from({ length: MAX_PENDING_CLIENT_CALLS }, () =>
    calls.call('show', {}, context()),
  );
  await assert.rejects(calls.call('show', {}, context()), /too many page tool calls/);
  calls.cancelAll();
  for (const call of waiting) await assert.rejects(call, /cancelled/);
  assert.equal(calls.waiting, 0);
});

test('the runner offers page-side tools only when the page has them', () => {
  const runner = new ToolRunner([clientTool({ name: 'show', description: 'Shows a section' })]);
  assert.equal(runner.hasClientTools, true);
  assert.deepEqual(runner.definitions(), []);
  assert.deepEqual(
    runner
      .definitions(page(['show']).calls)
      .map((d) => (d as { function: { name: string } }).function.name),
    ['show'],
  );
  assert.deepEqual(runner.definitions(page(['else']).calls), []);
});
