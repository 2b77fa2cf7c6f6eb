/**
 * `@voice-bot/fake-provider`: a fake OpenAI-compatible provider (STT, chat completions, TTS,
 * embeddings, models) for tests, benchmarks and offline demos. It speaks OpenAI's wire format closely enough
 * that the real `openai` SDK works against it unchanged, and every response can be scripted:
 * content, pacing, HTTP errors, mid-stream connection resets and requests that never answer.
 * Not a provider to deploy.
 *
 * One module per endpoint (`models.ts`, `transcription.ts`, `chat.ts`, `speech.ts`, `embeddings.ts`), all on the
 * per-request machinery of `exchange.ts`; {@link createFakeUpstream} composes them into one Hono app.
 * Timestamps in {@link RecordedRequest} are `performance.now()` milliseconds.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { serve } from '@hono/node-server';
import { Server, ServerResponse } from 'node:http';
import { registerChat } from './chat.js';
import { registerEmbeddings } from './embeddings.js';
import { errorType, Exchange, type Notify } from './exchange.js';
import { registerModels } from './models.js';
import { registerSpeech } from './speech.js';
import { registerTranscription } from './transcription.js';
import type { FakeUpstream, FakeUpstreamOptions, RecordedRequest, RequestKind } from './types.js';

export type {
  ChatRequest,
  ChatScript,
  EmbeddingsRequest,
  FakeFailure,
  FakeResult,
  FakeUpstream,
  FakeUpstreamOptions,
  RecordedRequest,
  RequestKind,
  SpeechRequest,
  SpeechScript,
  TranscriptionRequest,
  WavInfo,
} from './types.js';
export { FAKE_EMBEDDING_DIMENSIONS, embeddingWords, hashedEmbedding } from './embeddings.js';
export { mulberry32 } from './prng.js';
export { structuredReply } from './structured.js';
export { SPEECH_SAMPLE_RATE, synthesizeTone } from './tone.js';
export { parseWav, pcm16ToWav } from './wav.js';

/** Creates the fake upstream. Nothing listens until {@link FakeUpstream.listen}. */
export function createFakeUpstream(options: FakeUpstreamOptions = {}): FakeUpstream {
  const base = (options.basePath ?? '/v1').replace(/\/+$/, '');
  const latency = options.latency ?? {};
  const requests: RecordedRequest[] = [];
  const listeners = new Set<Notify>();
  const notify: Notify = () => {
    for (const listener of [...listeners]) listener();
  };
  const begin = (c: Context, kind: RequestKind) =>
    new Exchange(c, kind, notify, (record) => {
      requests.push(record);
      notify();
    });

  const app = new Hono();
  const endpoint = { app, base, options, latency, begin };
  registerModels(endpoint);
  registerTranscription(endpoint);
  registerChat(endpoint);
  registerSpeech(endpoint);
  registerEmbeddings(endpoint);

  app.notFound((c) => {
    const { type } = errorType(404);
    return c.json(
      {
        error: {
          message: `Invalid URL (${c.req.method} ${c.req.path})`,
          type,
          param: null,
          code: null,
        },
      },
      404,
    );
  });

  app.onError((error, c) => {
    const message = error instanceof Error ? error.message : String(error);
    return c.json(
      {
        error: {
          message: `Fake upstream error: ${message}`,
          type: 'server_error',
          param: null,
          code: null,
        },
      },
      500,
    );
  });

  const waitForRequest = (
    kind: RequestKind,
    predicate: (req: RecordedRequest) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<RecordedRequest> =>
    new Promise((resolve, reject) => {
      const find = () => requests.find((req) => req.kind === kind && predicate(req));
      const found = find();
      if (found) {
        resolve(found);
        return;
      }
      const check = () => {
        const match = find();
        if (!match) return;
        cleanup();
        resolve(match);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake upstream: no matching '${kind}' request within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
    });

  const listen = (port = 0): Promise<{ url: string; close(): Promise<void> }> =>
    new Promise((resolve, reject) => {
      const open = new Set<ServerResponse>();
      let allClosed: (() => void) | undefined;
      const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
        server.off('error', reject);
        const close = async () => {
          const stopped = new Promise<void>((done) => server.close(() => done()));
          // Also ends hanging and streaming requests (their abort signals fire); wait until they have.
          const drained = new Promise<void>((done) =>
            open.size === 0 ? done() : (allClosed = done),
          );
          if (server instanceof Server) server.closeAllConnections();
          await Promise.all([stopped, drained]);
        };
        resolve({ url: `http://127.0.0.1:${info.port}${base}`, close });
      });
      if (server instanceof Server) {
        if (options.keepAliveTimeoutMs !== undefined)
          server.keepAliveTimeout = options.keepAliveTimeoutMs;
        server.on('request', (_req, res: ServerResponse) => {
          open.add(res);
          res.once('close', () => {
            open.delete(res);
            if (open.size === 0) allClosed?.();
          });
        });
      }
      server.once('error', reject);
    });

  return { app, requests, listen, waitForRequest };
}
