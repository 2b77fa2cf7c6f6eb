/**
 * One Turn at the level where it lives: providers behind a fake `fetch` (the real `openai`
 * client), the session's callbacks recorded. No socket, no network.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServerMessage } from '@voice-bot/protocol';
import { DEFAULT_BOT } from '../config/config.js';
import type { ProviderCost } from '../policy/usage.js';
import { ToolRunner } from '../tools/runner.js';
import type { Conversation } from './conversations.js';
import { fakeProviders, silentLogger } from './fakes.fixture.js';
import { Turn, rememberUserText } from './turn.js';

function conversation(): Conversation {
  return {
    id: 'conv_test',
    keyId: 'key_test',
    bot: DEFAULT_BOT.id,
    messages: [],
    pageMetadata: {},
    toolMetadata: {},
    updatedAt: 0,
  };
}

function setup(
  options: {
    reply?: string;
    chatStatus?: number;
    output?: 'audio' | 'text';
    allow?: () => boolean;
  } = {},
) {
  const providers = fakeProviders(options.reply ?? 'Fine, thanks. ', 4_800, {
    ...(options.chatStatus ? { chatStatus: options.chatStatus } : {}),
  });
  const sent: ServerMessage[] = [];
  const charged: ProviderCost[] = [];
  const counted: ProviderCost[] = [];
  let audioBytes = 0;
  const talk = conversation();
  const turn = (id: number) =>
    new Turn(id, {
      bot: DEFAULT_BOT,
      providers: providers.config,
      clients: providers.clients,
      conversation: talk,
      output: options.output ?? 'text',
      outputSampleRate: 24_000,
      maxHistoryMessages: 40,
      tools: new ToolRunner([]),
      maxToolRounds: 3,
      textDeltaIntervalMs: 0,
      room: () => undefined,
      charge: (cost) => {
        // The request has not gone out yet when the charge is asked for.
        charged.push({
          ...cost,
          ...(cost.prompt_tokens !== undefined ? { chats_before: providers.calls.chat } : {}),
        } as ProviderCost);
        return options.allow?.() ?? true;
      },
      count: (cost) => counted.push(cost),
      send: (message) => sent.push(message),
      sendAudio: (pcm) => (audioBytes += pcm.byteLength),
      log: silentLogger(),
    });
  return { turn, sent, charged, counted, talk, calls: providers.calls, audio: () => audioBytes };
}

describe('Turn', () => {
  test('charges the estimated prompt before the request, then counts the reported usage against it', async () => {
    const { turn, sent, charged, counted, talk } = setup();
    await turn(1).run({ kind: 'text', text: 'How are you?' });
    const done = sent.find((m) => m.type === 'done');
    assert.equal(done?.type === 'done' && done.text, 'Fine, thanks.');
    assert.equal(charged.length, 1);
    const [charge] = charged as (ProviderCost & { chats_before: number })[];
    assert.equal(charge?.chats_before, 0, 'charged before the chat request was made');
    const estimate = charge?.prompt_tokens ?? 0;
    assert.ok(estimate > 10, `estimate ${estimate}`);
    // The fake reports 7 prompt and 3 completion tokens: the estimate is corrected to them.
    assert.deepEqual(counted, [{ prompt_tokens: 7 - estimate, completion_tokens: 3 }]);
    assert.deepEqual(
      talk.messages.map((m) => `${m.role}:${m.text}`),
      ['user:How are you?', 'assistant:Fine, thanks.'],
    );
  });

  test('speech: each sentence is charged its characters before its request; audio is forwarded', async () => {
    const { turn, charged, calls, audio } = setup({
      output: 'audio',
      reply: 'Here is the first sentence. And here the second one. ',
    });
    await turn(1).run({ kind: 'text', text: 'Talk.' });
    assert.deepEqual(
      charged.filter((c) => c.tts_chars !== undefined).map((c) => c.tts_chars),
      ['Here is the first sentence.'.length, 'And here the second one.'.length],
    );
    assert.equal(calls.speech, 2);
    assert.equal(audio(), 2 * 4_800);
  });

  test('a refused charge sends no request and ends the turn without a done', async () => {
    const { turn, sent, calls } = setup({ allow: () => false });
    await turn(1).run({ kind: 'text', text: 'Hello?' });
    assert.equal(calls.chat, 0);
    assert.equal(sent.filter((m) => m.type === 'done' || m.type === 'error').length, 0);
  });

  test('interrupted before its request went out: nothing is sent, nothing is charged', async () => {
    const { turn, charged, calls, sent } = setup();
    const first = turn(1);
    first.interrupt(0);
    await first.run({ kind: 'text', text: 'Never mind.' });
    assert.equal(calls.chat, 0);
    assert.equal(charged.length, 0);
    const done = sent.find((m) => m.type === 'done');
    assert.equal(done?.type === 'done' && done.interrupted, true);
  });

  test('a provider failure ends the turn with a typed error; the estimate stays charged', async () => {
    const { turn, sent, charged, counted } = setup({ chatStatus: 500 });
    await turn(1).run({ kind: 'text', text: 'Hello?' });
    const error = sent.find((m) => m.type === 'error');
    assert.equal(error?.type === 'error' && error.code, 'upstream_llm');
    assert.equal(error?.type === 'error' && error.turn_id, 1);
    assert.equal(charged.length, 1);
    assert.deepEqual(counted, [{ completion_tokens: 0 }]);
  });
});

test('unanswered questions in a row: the last three are kept, in order', () => {
  const talk = conversation();
  for (let i = 1; i <= 5; i++) rememberUserText(talk, `q${i}`, i);
  assert.deepEqual(
    talk.messages.map((m) => m.text),
    ['q3', 'q4', 'q5'],
  );
  talk.messages.push({ role: 'assistant', text: 'An answer.', turnId: 5 });
  rememberUserText(talk, 'q6', 6);
  assert.deepEqual(
    talk.messages.map((m) => m.text),
    ['q3', 'q4', 'q5', 'An answer.', 'q6'],
  );
});
