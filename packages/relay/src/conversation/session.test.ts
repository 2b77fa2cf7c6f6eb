/**
 * TalkSession at the level where it lives: a fake socket (records what is sent, reports a queue
 * the test controls) and providers behind a fake `fetch` (the real `openai` client, no network).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  encodeClientMessage,
  parseServerMessage,
  type ClientMessageInput,
  type ServerMessage,
} from '@voice-bot/protocol';
import {
  DEFAULT_BOT,
  DEFAULT_LIMITS,
  type LimitsConfig,
  type ProvidersConfig,
} from '../config/config.js';
import { MemoryConversationStore } from './conversations.js';
import { createLogger } from '../logger.js';
import { createProviderClients } from '../providers/providers.js';
import { TalkSession, type SessionPolicy, type SessionSocket } from './session.js';
import { ToolRunner } from '../tools/runner.js';
import type { ProviderCost } from '../policy/usage.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** OpenAI-shaped answers for chat (SSE) and speech (PCM), counted per endpoint. */
function fakeProviders(reply: string, pcmBytes = 4_800) {
  const calls = { chat: 0, speech: 0 };
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    const signal = init?.signal ?? undefined;
    if (url.endsWith('/chat/completions')) {
      calls.chat++;
      const words = reply.split(/(?<= )/);
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          const encoder = new TextEncoder();
          for (const word of words) {
            if (signal?.aborted) return controller.error(signal.reason);
            controller.enqueue(
              encoder.encode(
                `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content: word }, finish_reason: null }] })}\n\n`,
              ),
            );
            await sleep(1);
          }
          controller.enqueue(
            encoder.encode(
              `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })}\n\ndata: [DONE]\n\n`,
            ),
          );
          controller.close();
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    }
    if (url.endsWith('/audio/speech')) {
      calls.speech++;
      let left = pcmBytes;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await sleep(2);
          if (left <= 0) return controller.close();
          const size = Math.min(960, left);
          left -= size;
          controller.enqueue(new Uint8Array(size));
        },
      });
      return new Response(body, { headers: { 'content-type': 'audio/pcm' } });
    }
    return new Response('{"error":{"message":"not here"}}', {
      status: 404,
      headers: { 'content-type': 'application/json' },
    });
  };
  const stage = {
    baseURL: 'http://provider.invalid/v1',
    apiKey: 'sk-test',
    timeoutMs: 5_000,
    maxRetries: 0,
  };
  const config: ProvidersConfig = {
    stt: { ...stage, model: 'w' },
    llm: { ...stage, model: 'm' },
    tts: { ...stage, model: 't', voice: 'v' },
  };
  return {
    calls,
    config,
    clients: createProviderClients(config, fetch as typeof globalThis.fetch),
  };
}

class FakeSocket implements SessionSocket {
  readonly messages: ServerMessage[] = [];
  audioBytes = 0;
  bufferedAmount = 0;
  closed: { code: number; reason: string } | undefined;
  terminated = false;

  send(data: string | Uint8Array): void {
    if (typeof data === 'string') {
      const message = parseServerMessage(data);
      if (message) this.messages.push(message);
    } else this.audioBytes += data.byteLength;
  }

  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }

  terminate(): void {
    this.terminated = true;
  }

  of<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.messages.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }

  async until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > end)
        throw new Error(`timed out; got ${this.messages.map((m) => m.type).join(',')}`);
      await sleep(5);
    }
  }
}

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
    ...options.policy,
  };
  const conversations = new MemoryConversationStore(60_000, 10);
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
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
    log: createLogger({ level: 'silent', destination: silent }),
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
