import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageTracker } from '../../policy/usage.js';
import { CHANNEL, type RequestMessage } from './messages.js';
import { PrimaryState } from './primary.js';

const state = () => new PrimaryState({ conversationTtlMs: 60_000, maxConversations: 100 });
let nextId = 1;
const ask = <M extends Exclude<RequestMessage, { op: 'metrics' }>>(
  primary: PrimaryState,
  worker: number,
  op: M['op'],
  args: M['args'],
) => primary.request(worker, { channel: CHANNEL, id: nextId++, op, args } as M);

test('a token id is claimed once across workers', async () => {
  const primary = state();
  const expiresAt = Date.now() / 1000 + 600;
  assert.equal(await ask(primary, 1, 'token.claim', { jti: 'a', expiresAt }), true);
  assert.equal(await ask(primary, 2, 'token.claim', { jti: 'a', expiresAt }), false);
  assert.equal(await ask(primary, 2, 'token.claim', { jti: 'b', expiresAt }), true);
});

test('concurrency slots add up over workers, and a dead worker frees its own', () => {
  const primary = state();
  assert.equal(ask(primary, 1, 'slots.reserve', { keyId: 'k', max: 2 }), true);
  primary.notice(1, { channel: CHANNEL, op: 'slots.opened', args: { keyId: 'k' } });
  assert.equal(ask(primary, 2, 'slots.reserve', { keyId: 'k', max: 2 }), true);
  assert.equal(
    ask(primary, 1, 'slots.reserve', { keyId: 'k', max: 2 }),
    false,
    'one open on 1 + one reserved on 2',
  );
  assert.deepEqual(ask(primary, 1, 'slots.count', { keyId: 'k' }), { open: 1, reserved: 1 });
  primary.notice(2, { channel: CHANNEL, op: 'slots.cancel', args: { keyId: 'k' } });
  assert.equal(ask(primary, 2, 'slots.reserve', { keyId: 'k', max: 2 }), true);
  primary.notice(2, { channel: CHANNEL, op: 'slots.opened', args: { keyId: 'k' } });
  primary.workerGone(1);
  assert.deepEqual(ask(primary, 2, 'slots.count', { keyId: 'k' }), { open: 1, reserved: 0 });
  // What worker 1 still had in the pipe when it died is ignored.
  primary.notice(1, { channel: CHANNEL, op: 'slots.opened', args: { keyId: 'k' } });
  assert.equal(ask(primary, 1, 'slots.reserve', { keyId: 'k', max: 5 }), false);
  assert.deepEqual(ask(primary, 2, 'slots.count', { keyId: 'k' }), { open: 1, reserved: 0 });
  primary.notice(2, { channel: CHANNEL, op: 'slots.closed', args: { keyId: 'k' } });
  assert.deepEqual(ask(primary, 2, 'slots.count', { keyId: 'k' }), { open: 0, reserved: 0 });
  assert.equal(ask(primary, 2, 'slots.reserve', { keyId: 'k', max: 0 }), true, '0 = no limit');
});

test('usage synced by two workers adds up exactly; the reply is the totals quotas use', () => {
  const primary = state();
  const one = new UsageTracker();
  one.addAudioIn('k', 3200);
  one.add('k', { turns: 1, prompt_tokens: 10, completion_tokens: 5 });
  one.error('k', 'rate_limited');
  const two = new UsageTracker();
  two.addAudioIn('k', 1602);
  two.add('k', { turns: 2, completion_tokens: 7 });
  two.error('k', 'rate_limited');
  ask(primary, 1, 'usage.sync', { seq: 1, days: one.export() });
  const totals = ask(primary, 2, 'usage.sync', { seq: 1, days: two.export() });
  assert.deepEqual(totals, { k: { audioBytes: 4802, tokens: 22, ttsChars: 0 } });
  // A batch sent again (its answer timed out) is counted once; a worker that exited counts no more.
  assert.deepEqual(ask(primary, 2, 'usage.sync', { seq: 1, days: two.export() }), totals);
  const [today] = ask(primary, 1, 'usage.history', { keyId: 'k', days: 1 }) as {
    turns: number;
    audio_in_ms: number;
    errors: Record<string, number>;
  }[];
  assert.equal(today?.turns, 3);
  assert.equal(today?.audio_in_ms, 4802 / 32);
  assert.deepEqual(today?.errors, { rate_limited: 2 });
});

test('a conversation opened on one worker resumes on another, only for its key and bot', () => {
  const primary = state();
  const opened = ask(primary, 1, 'conversation.open', {
    requestedId: undefined,
    keyId: 'k',
    bot: 'b',
  }) as { conversation: { id: string; messages: unknown[] }; resumed: boolean };
  assert.equal(opened.resumed, false);
  // Worker 1 works on its copy (as after IPC), then hands it back.
  const copy = structuredClone(opened.conversation);
  copy.messages.push({ role: 'user', text: 'hi' });
  primary.notice(1, {
    channel: CHANNEL,
    op: 'conversation.put',
    args: { conversation: copy as never },
  });
  const resumed = ask(primary, 2, 'conversation.open', {
    requestedId: copy.id,
    keyId: 'k',
    bot: 'b',
  }) as typeof opened;
  assert.equal(resumed.resumed, true);
  assert.deepEqual(resumed.conversation.messages, [{ role: 'user', text: 'hi' }]);
  const otherKey = ask(primary, 2, 'conversation.open', {
    requestedId: copy.id,
    keyId: 'other',
    bot: 'b',
  }) as typeof opened;
  assert.equal(otherKey.resumed, false);
  assert.notEqual(otherKey.conversation.id, copy.id);
  // A copy may not take over a conversation of another key.
  primary.notice(2, {
    channel: CHANNEL,
    op: 'conversation.put',
    args: { conversation: { ...copy, keyId: 'other', messages: [] } as never },
  });
  const again = ask(primary, 1, 'conversation.open', {
    requestedId: copy.id,
    keyId: 'k',
    bot: 'b',
  }) as typeof opened;
  assert.equal(again.conversation.messages.length, 1);
});
