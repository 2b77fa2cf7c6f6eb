/**
 * Fakes for the conversation core's unit tests (no network): providers behind a fake `fetch`
 * (the real `openai` client, OpenAI's wire format) and a socket that records what is sent.
 */
import { Writable } from 'node:stream';
import { parseServerMessage, type ServerMessage } from '@voice-bot/protocol';
import type { ProvidersConfig } from '../config/config.js';
import { createLogger } from '../logger.js';
import { createProviderClients } from '../providers/providers.js';
import type { SessionSocket } from './session.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** OpenAI-shaped answers for chat (SSE) and speech (PCM), counted per endpoint. */
export function fakeProviders(
  reply: string,
  pcmBytes = 4_800,
  options: { chatStatus?: number } = {},
) {
  const calls = { chat: 0, speech: 0 };
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    const signal = init?.signal ?? undefined;
    if (url.endsWith('/chat/completions')) {
      calls.chat++;
      if (options.chatStatus) {
        return new Response('{"error":{"message":"scripted failure","type":"server_error"}}', {
          status: options.chatStatus,
          headers: { 'content-type': 'application/json' },
        });
      }
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

export class FakeSocket implements SessionSocket {
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

/** A logger that writes nowhere. */
export function silentLogger() {
  return createLogger({
    level: 'silent',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });
}
