/**
 * A relay whose shared state answers asynchronously (as a cluster's primary does): `start` waits
 * for the conversation, and what the client sends meanwhile is held and handled in order.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  DEFAULT_LIMITS,
  localState,
  type ConversationStore,
  type SharedState,
} from '@voice-bot/relay';
import {
  FIXTURES,
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  readWav,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

/** In-memory state whose conversation store answers after `delayMs`, or fails. */
function slowState(behaviour: { delayMs: number; fail?: boolean }): SharedState {
  const state = localState({
    conversationTtlMs: DEFAULT_LIMITS.conversationTtlMs,
    maxConversations: DEFAULT_LIMITS.maxConversations,
  });
  const inner = state.conversations;
  const conversations: ConversationStore = {
    open: (id, keyId, bot) =>
      new Promise((resolve, reject) =>
        setTimeout(
          () =>
            behaviour.fail
              ? reject(new Error('store unavailable'))
              : resolve(inner.open(id, keyId, bot)),
          behaviour.delayMs,
        ),
      ),
    touch: (conversation) => inner.touch(conversation),
  };
  return { ...state, conversations };
}

async function openTalk(h: RelayHarness): Promise<TalkClient> {
  const session = await createSession(h.url, { key: h.key, origin: ORIGIN });
  const talk = await connectTalk(
    session.body.ws_url as string,
    session.body.token as string,
    ORIGIN,
  );
  if (!(talk instanceof TalkClient)) throw new Error(`refused ${talk.refused}`);
  return talk;
}

describe('a conversation store that answers late', () => {
  const harnesses: RelayHarness[] = [];
  after(() => Promise.all(harnesses.map((h) => h.close())));

  test('audio, commit and ping sent before ready are held and handled in order', async () => {
    const h = await startRelay({ relay: { state: slowState({ delayMs: 150 }) } });
    harnesses.push(h);
    const talk = await openTalk(h);
    const { pcm } = await readWav(join(FIXTURES, '16k/hours.wav'));
    talk.start();
    talk.send({ type: 'ping', t: 1 });
    await talk.sendPcm(pcm, 100);
    talk.send({ type: 'commit' });
    talk.send({ type: 'ping', t: 2 });
    const done = await talk.next('done', () => true, { timeoutMs: 10_000 });
    assert.deepEqual(talk.of('error'), [], talk.summary());
    const types = talk.messages.map((m) => m.type);
    assert.equal(types[0], 'ready', 'nothing is answered before ready');
    const pongs = talk.of('pong').map((m) => m.t);
    assert.deepEqual(pongs, [1, 2]);
    // The transcript covers the whole utterance: every held frame reached it, in order, before commit.
    const transcript = talk.of('transcript').find((m) => m.turn_id === done.turn_id);
    const seconds = Number(/I heard (\d+\.\d) seconds/.exec(transcript?.text ?? '')?.[1]);
    assert.equal(seconds, Math.round((pcm.byteLength / 32_000) * 10) / 10);
    assert.ok(
      types.indexOf('pong') < types.indexOf('transcript'),
      'the first ping was answered before the turn began',
    );
    talk.close();
  });

  test('a store that fails ends the session with a typed error, not a crash', async () => {
    const h = await startRelay({ relay: { state: slowState({ delayMs: 20, fail: true }) } });
    harnesses.push(h);
    const talk = await openTalk(h);
    talk.start();
    talk.send({ type: 'text', text: 'held, then dropped' });
    const closed = await talk.closed;
    assert.equal(closed.code, 1011);
    assert.deepEqual(
      talk.of('error').map((e) => [e.code, e.fatal]),
      [['internal', true]],
    );
    // The relay keeps serving.
    const again = await createSession(h.url, { key: h.key, origin: ORIGIN });
    assert.equal(again.status, 201);
  });
});
