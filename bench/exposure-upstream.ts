/**
 * Child process: the fake OpenAI-compatible upstream of the exposure section (bench/exposure.ts).
 *
 * - Chat streams a long reply: `sentences` sentences, each naming the session that asked (the
 *   client's text starts with `[s<i>]`), e.g. "Part 3 of the long story for listener 17 goes on…".
 * - TTS answers every sentence with `sentenceBytes` of 24 kHz PCM16 (the same tone for every
 *   sentence), unpaced: as fast as the relay reads it.
 * - Every response body goes through a counter, so the figures are the bytes this process actually
 *   handed to its sockets, per session (`@hono/node-server` writes a streamed body only as its socket
 *   drains, so a relay that stops reading a TTS body stops the count).
 *
 * IPC: sends `{type:'ready', url}`; `counts` answers `{type:'counts', total, sessions}` (bytes per
 * session: speech, chat, speech requests); `reset` zeroes the counters.
 */
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import type { IpcMessage } from './common.js';

export interface ExposureUpstreamConfig {
  sentences: number;
  sentenceBytes: number;
  /** Delay before the first chat chunk, ms. */
  llmTtftMs: number;
}

export interface SessionBytes {
  speech: number;
  chat: number;
  speechRequests: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ExposureUpstreamConfig;

/** The reply for session `tag`: one sentence per part (≥ 20 and < 250 characters: one TTS chunk each). */
function longReply(tag: string, sentences: number): string {
  const parts: string[] = [];
  for (let i = 1; i <= sentences; i++)
    parts.push(`Part ${i} of the long story for listener ${tag} goes on for a while longer.`);
  return parts.join(' ');
}

/** The same soft tone for every sentence (its content does not matter to the relay). */
function tone(bytes: number): Uint8Array {
  const samples = new Int16Array(Math.floor(bytes / 2));
  for (let i = 0; i < samples.length; i++)
    samples[i] = Math.round(3000 * Math.sin((2 * Math.PI * 220 * i) / 24_000));
  return new Uint8Array(samples.buffer);
}

if (process.send) {
  const pcm = tone(config.sentenceBytes);
  const upstream = createFakeUpstream({
    latency: { llmTtftMs: config.llmTtftMs, tokensPerSecond: 0, ttsTtfbMs: 0, ttsRealtime: false },
    chat: (req) => {
      const users = req.messages.filter((m) => (m as { role?: string }).role === 'user') as {
        content?: unknown;
      }[];
      const last = String(users.at(-1)?.content ?? '');
      const tag = /\[s(\d+)\]/.exec(last)?.[1] ?? 'x';
      return { content: longReply(tag, config.sentences) };
    },
    speech: () => ({ pcm }),
  });
  // The fake records every request for tests; a benchmark only needs the recent ones.
  const trim = setInterval(
    () => upstream.requests.splice(0, Math.max(0, upstream.requests.length - 1000)),
    2000,
  );
  trim.unref();

  let total = 0;
  let sessions = new Map<string, SessionBytes>();
  const entry = (tag: string): SessionBytes => {
    let e = sessions.get(tag);
    if (!e) sessions.set(tag, (e = { speech: 0, chat: 0, speechRequests: 0 }));
    return e;
  };

  const server = serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req: Request) => {
      const path = new URL(req.url).pathname;
      const kind = path.endsWith('/audio/speech')
        ? 'speech'
        : path.endsWith('/chat/completions')
          ? 'chat'
          : undefined;
      let tag = 'x';
      if (kind) {
        try {
          const body = (await req.clone().json()) as {
            input?: string;
            messages?: { role?: string; content?: unknown }[];
          };
          const text =
            kind === 'speech'
              ? String(body.input ?? '')
              : String(body.messages?.filter((m) => m.role === 'user').at(-1)?.content ?? '');
          tag =
            (kind === 'speech' ? /listener (\d+)/.exec(text) : /\[s(\d+)\]/.exec(text))?.[1] ?? 'x';
        } catch {
          // not JSON: the fake answers 400 itself
        }
      }
      const res = await upstream.app.fetch(req);
      if (!kind || !res.body) return res;
      const counter = entry(tag);
      if (kind === 'speech') counter.speechRequests++;
      const reader = res.body.getReader();
      // highWaterMark 0: a chunk is pulled from the fake only when the server's writer asks for one.
      const body = new ReadableStream<Uint8Array>(
        {
          pull: async (controller) => {
            const next = await reader.read();
            if (next.done) {
              controller.close();
              return;
            }
            total += next.value.byteLength;
            counter[kind] += next.value.byteLength;
            controller.enqueue(next.value);
          },
          cancel: (reason) => reader.cancel(reason),
        },
        { highWaterMark: 0 },
      );
      return new Response(body, { status: res.status, headers: res.headers });
    },
  }) as Server;
  // Idle keep-alive connections stay open (see bench/upstream-server.ts).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) =>
    server.listening ? resolve() : server.once('listening', () => resolve()),
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  process.on('message', (m: IpcMessage) => {
    if (m.type === 'counts')
      process.send?.({ type: 'counts', total, sessions: Object.fromEntries(sessions) });
    else if (m.type === 'reset') {
      total = 0;
      sessions = new Map();
      process.send?.({ type: 'reset-done' });
    } else if (m.type === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url: `http://127.0.0.1:${port}/v1` });
}
