/**
 * TalkSession at the level where it lives: a fake socket (records what is sent, reports a queue
 * the test controls) and providers behind a fake `fetch` (the real `openai` client, no network).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  encodeClientMessage,
  type ClientMessageInput,
} from '@voice-bot/protocol';
import { DEFAULT_BOT, DEFAULT_LIMITS, type LimitsConfig } from '../config/config.js';
import { MemoryConversationStore } from './conversations.js';
import { FakeSocket, fakeProviders, silentLogger, sleep } from './fakes.fixture.js';
import { TalkSession, type SessionPolicy } from './session.js';
import { ToolRunner } from '../tools/runner.js';
import type { ProviderCost } from '../policy/usage.js';

function openSession(
  options: {
    reply?: string;
    pcmBytes?: number;
    limits?: Partial<LimitsConfig>;
    policy?: Partial<SessionPolicy>;
    greeting?: string;
  } = {},
) {
  const providers = fakeProviders(options.reply ?? 'Fine, thanks. ', options.pcmBytes);
  const socket = new FakeSocket();
  const charged: ProviderCost[] = [];
  const policy: SessionPolicy = {
    audioIn: () => undefined,
    beforeTurn: () => undefined,
    sent: () => undefined,
    charge: (cost) => {
      charged.push(cost);
      return undefined;
    },
    count: () => undefined,
    speculate: () => true,
    speculationEnded: () => undefined,
    ...options.policy,
  };
  const conversations = new MemoryConversationStore(60_000, 10);
  const session = new TalkSession({
    id: 'sess_test',
    keyId: 'key_test',
    bot: { ...DEFAULT_BOT, ...(options.greeting ? { greeting: options.greeting } : {}) },
    providers: providers.config,
    clients: providers.clients,
    conversations,
    tools: new ToolRunner([]),
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    textDeltaIntervalMs: 0,
    socket,
    log: silentLogger(),
    policy,
  });
  const send = (message: ClientMessageInput) => session.onText(encodeClientMessage(message));
  return { session, socket, send, calls: providers.calls, charged, conversations };
}

describe('TalkSession', () => {
  test('start, greeting, a typed question: ready, the greeting spoken, the reply streamed and stored', async () => {
    const { session, socket, send } = openSession({ greeting: 'Hello there, how can I help?' });
    send({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'audio' });
    await socket.until(() => socket.of('done').length === 1);
    assert.equal(socket.messages[0]?.type, 'ready');
    assert.equal(socket.of('done')[0]?.text, 'Hello there, how can I help?');
    send({ type: 'text', text: 'How are you?' });
    await socket.until(() => socket.of('done').length === 2);
    const done = socket.of('done')[1];
    assert.equal(done?.text, 'Fine, thanks.');
    assert.equal(done?.metrics.prompt_tokens, 7);
    assert.ok(socket.audioBytes > 0);
    await session.settled();
  });

  test('a request is charged before it is sent; a refused charge sends nothing', async () => {
    let allow = true;
    const { socket, send, calls, charged } = openSession({
      policy: {
        charge: () =>
          allow
            ? undefined
            : {
                code: 'quota_exceeded',
                message: 'used up',
                close: { code: CLOSE_CODES.quotaExceeded, reason: 'quota' },
              },
      },
    });
    send({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'text' });
    await socket.until(() => socket.of('ready').length === 1);
    send({ type: 'text', text: 'One.' });
    await socket.until(() => socket.of('done').length === 1);
    assert.equal(calls.chat, 1);
    assert.equal(charged.length, 0, 'the recording hook was replaced');
    allow = false;
    send({ type: 'text', text: 'Two.' });
    await sleep(50);
    assert.equal(calls.chat, 1, 'no request after a refused charge');
    assert.equal(socket.of('done').length, 1, 'the refused turn ends without a done');
    assert.equal(socket.of('error').at(-1)?.code, 'quota_exceeded');
    assert.equal(socket.closed?.code, CLOSE_CODES.quotaExceeded);
  });

  test('charges carry the estimated prompt and the speech characters', async () => {
    const { socket, send, charged } = openSession();
    send({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'audio' });
    await socket.until(() => socket.of('ready').length === 1);
    send({ type: 'text', text: 'How are you?' });
    await socket.until(() => socket.of('done').length === 1);
    const prompt = charged.find((c) => c.prompt_tokens !== undefined);
    assert.ok(prompt && (prompt.prompt_tokens ?? 0) > 10, `estimated ${prompt?.prompt_tokens}`);
    assert.deepEqual(
      charged.filter((c) => c.tts_chars !== undefined),
      [{ tts_chars: 'Fine, thanks.'.length }],
    );
  });

  test('backpressure: no audio is pulled while the socket is over its bound; a page that never reads is closed with 4006', async () => {
    const { socket, send } = openSession({
      reply: 'A long answer follows here. ',
      pcmBytes: 96_000,
      limits: { maxBufferedBytes: 10_000, slowClientTimeoutMs: 300 },
    });
    send({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'audio' });
    await socket.until(() => socket.of('ready').length === 1);
    send({ type: 'text', text: 'Talk.' });
    await socket.until(() => socket.audioBytes > 0);
    socket.bufferedAmount = 50_000; // the page stopped reading
    await sleep(30);
    const sent = socket.audioBytes;
    await sleep(150);
    assert.equal(socket.audioBytes, sent, 'nothing more was pulled while over the bound');
    socket.bufferedAmount = 0; // it reads again
    await socket.until(() => socket.audioBytes > sent);

    socket.bufferedAmount = 50_000;
    await socket.until(() => socket.closed !== undefined, 2_000);
    assert.equal(socket.closed?.code, CLOSE_CODES.slowClient);
    assert.equal(socket.of('error').at(-1)?.code, 'slow_client');
    await socket.until(() => socket.terminated, 2_000);
  });

  test('new input before the reply starts: the unanswered question stays, at most three in a row', async () => {
    const { socket, send, session, conversations } = openSession();
    send({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'text' });
    await socket.until(() => socket.of('ready').length === 1);
    for (let i = 1; i <= 5; i++) send({ type: 'text', text: `q${i}` });
    await socket.until(() => socket.of('done').some((d) => !d.interrupted));
    await session.settled();
    const id = socket.of('ready')[0]?.conversation_id;
    const { conversation } = conversations.open(id, 'key_test', DEFAULT_BOT.id);
    assert.deepEqual(
      conversation.messages.map((m) => `${m.role}:${m.text}`),
      ['user:q3', 'user:q4', 'user:q5', 'assistant:Fine, thanks.'],
    );
    send({ type: 'stop' });
    assert.equal(socket.closed?.code, CLOSE_CODES.normal);
  });
});
