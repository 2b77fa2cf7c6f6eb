/**
 * Child process: the reference relay of the ratio section. The same job as the relay under test,
 * and nothing else: a session, the `/v1/talk` socket, the utterance's frames → STT (multipart WAV)
 * → streamed chat (server-sent events) → the relay's own sentence chunker → TTS per sentence
 * (three requests ahead of playback, as the relay) → audio forwarded in order, with the messages
 * the load generator reads (`ready`, `transcript`, `text_delta` per sentence, `audio_segment`,
 * audio, `done` with the stage timings). HTTP through undici's `request` and Node streams; no
 * authentication, limits, metrics, logging, backpressure, barge-in, retries or tools.
 *
 * It speaks the IPC of relay-server.ts (`ready`, `window-start`/`window-end`, `rss`, `exit`), so
 * levels.ts runs it in the relay's place (`LevelOptions.relayServer`).
 */
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { subscribe } from 'node:diagnostics_channel';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { SUBPROTOCOL } from '@voice-bot/protocol';
import { SentenceChunker } from '../packages/relay/src/pipeline/chunker.js';
import { ProcessProbe, type IpcMessage } from './common.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { upstreamUrl: string; keys?: number };
const upstream = config.upstreamUrl.replace(/\/+$/, '');
const dispatcher = new Agent();
const HEADERS_JSON = { authorization: 'Bearer sk-bench', 'content-type': 'application/json' };
const SYSTEM_PROMPT =
  'You are a friendly voice assistant. Answer briefly, in plain spoken sentences.';
const HISTORY = 20;
const LOOKAHEAD = 3;

interface Message {
  role: 'user' | 'assistant';
  content: string;
}

/** A WAV of 16 kHz PCM16 mono in a multipart body, built in one buffer. */
function transcriptionUpload(frames: Buffer[]): { body: Buffer; contentType: string } {
  const boundary = `ref-${randomBytes(12).toString('hex')}`;
  let pcmBytes = 0;
  for (const f of frames) pcmBytes += f.byteLength;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
  );
  const wav = Buffer.alloc(44);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + pcmBytes, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(16_000, 24);
  wav.writeUInt32LE(32_000, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(pcmBytes, 40);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    body: Buffer.concat([head, wav, ...frames, tail]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

class Session {
  private frames: Buffer[] = [];
  private readonly history: Message[] = [];
  private turnId = 0;
  private busy = false;

  constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        this.frames.push(data);
        return;
      }
      const text = data.toString();
      if (text.includes('"start"')) this.send({ type: 'ready', session_id: 'ref' });
      else if (text.includes('"commit"') && !this.busy) {
        const frames = this.frames;
        this.frames = [];
        this.busy = true;
        this.turn(frames, ++this.turnId)
          .catch((error: unknown) =>
            this.send({
              type: 'error',
              code: 'upstream',
              message: String(error),
              turn_id: this.turnId,
            }),
          )
          .finally(() => (this.busy = false));
      }
    });
  }

  private send(message: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private async turn(frames: Buffer[], id: number): Promise<void> {
    const started = performance.now();
    const upload = transcriptionUpload(frames);
    const stt = await request(`${upstream}/audio/transcriptions`, {
      dispatcher,
      method: 'POST',
      headers: { authorization: 'Bearer sk-bench', 'content-type': upload.contentType },
      body: upload.body,
    });
    if (stt.statusCode !== 200) throw new Error(`stt ${stt.statusCode}`);
    const { text: heard } = (await stt.body.json()) as { text: string };
    const sttMs = performance.now() - started;
    this.send({ type: 'transcript', turn_id: id, text: heard.trim(), final: true });
    this.history.push({ role: 'user', content: heard.trim() });

    const speech = new Speech(this.ws, id);
    const chunker = new SentenceChunker();
    let reply = '';
    const llmStarted = performance.now();
    let ttft: number | undefined;
    const say = (chunks: string[]) => {
      for (const chunk of chunks) {
        this.send({ type: 'text_delta', turn_id: id, delta: chunk });
        speech.enqueue(chunk);
      }
    };
    const chat = await request(`${upstream}/chat/completions`, {
      dispatcher,
      method: 'POST',
      headers: HEADERS_JSON,
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'system', content: SYSTEM_PROMPT }, ...this.history.slice(-HISTORY)],
      }),
    });
    if (chat.statusCode !== 200) throw new Error(`llm ${chat.statusCode}`);
    const decoder = new StringDecoder('utf8');
    let pending = '';
    await new Promise<void>((resolve, reject) => {
      chat.body.on('data', (piece: Buffer) => {
        pending += decoder.write(piece);
        let end: number;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const event = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (!event.startsWith('data: ') || event.startsWith('data: [DONE]')) continue;
          const delta = (
            JSON.parse(event.slice(6)) as { choices?: { delta?: { content?: string } }[] }
          ).choices?.[0]?.delta?.content;
          if (!delta) continue;
          ttft ??= performance.now() - llmStarted;
          reply += delta;
          say(chunker.push(delta));
        }
      });
      chat.body.once('end', resolve);
      chat.body.once('error', reject);
    });
    say(chunker.flush());
    speech.end();
    await speech.done;
    this.history.push({ role: 'assistant', content: reply.trim() });
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    const metrics = {
      stt_ms: Math.round(sttMs),
      llm_ttft_ms: Math.round(ttft ?? 0),
      tts_ttfb_ms: Math.round(speech.ttfbMs ?? 0),
      first_audio_ms: Math.round((speech.firstAudioAt ?? started) - started),
      total_ms: Math.round(performance.now() - started),
    };
    this.send({ type: 'done', turn_id: id, text: reply.trim(), interrupted: false, metrics });
  }
}

/** TTS requests for the reply's sentences, up to {@link LOOKAHEAD} ahead; audio forwarded in order. */
class Speech {
  private readonly texts: string[] = [];
  private readonly responses: Promise<Awaited<ReturnType<typeof request>>>[] = [];
  private ended = false;
  private playing = 0;
  private wake: (() => void) | undefined;
  firstRequestAt: number | undefined;
  ttfbMs: number | undefined;
  firstAudioAt: number | undefined;
  readonly done: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly turnId: number,
  ) {
    this.done = this.play();
    this.done.catch(() => undefined);
  }

  enqueue(text: string): void {
    this.texts.push(text);
    this.pump();
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  private pump(): void {
    while (
      this.responses.length < this.texts.length &&
      this.responses.length - this.playing < LOOKAHEAD
    ) {
      this.firstRequestAt ??= performance.now();
      const response = request(`${upstream}/audio/speech`, {
        dispatcher,
        method: 'POST',
        headers: HEADERS_JSON,
        body: JSON.stringify({
          model: 'gpt-4o-mini-tts',
          voice: 'alloy',
          input: this.texts[this.responses.length],
          response_format: 'pcm',
        }),
        highWaterMark: 16 * 1024,
      });
      response.catch(() => undefined);
      this.responses.push(response);
    }
  }

  private async play(): Promise<void> {
    for (;;) {
      if (this.playing >= this.texts.length) {
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const index = this.playing;
      const response = await (this.responses[index] as Promise<
        Awaited<ReturnType<typeof request>>
      >);
      if (response.statusCode !== 200) throw new Error(`tts ${response.statusCode}`);
      this.ws.send(
        JSON.stringify({
          type: 'audio_segment',
          turn_id: this.turnId,
          index,
          text: this.texts[index],
        }),
      );
      await new Promise<void>((resolve, reject) => {
        let carry: number | undefined;
        response.body.on('data', (chunk: Buffer) => {
          this.ttfbMs ??= performance.now() - (this.firstRequestAt ?? 0);
          let bytes = chunk;
          if (carry !== undefined) {
            bytes = Buffer.allocUnsafe(chunk.byteLength + 1);
            bytes[0] = carry;
            bytes.set(chunk, 1);
            carry = undefined;
          }
          if (bytes.byteLength % 2 === 1) {
            carry = bytes[bytes.byteLength - 1];
            bytes = bytes.subarray(0, bytes.byteLength - 1);
          }
          if (bytes.byteLength === 0 || this.ws.readyState !== WebSocket.OPEN) return;
          this.firstAudioAt ??= performance.now();
          this.ws.send(bytes);
        });
        response.body.once('end', resolve);
        response.body.once('error', reject);
      });
      this.playing++;
      this.pump();
    }
  }
}

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.once('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/sessions') {
      res.writeHead(404).end();
      return;
    }
    const { port } = server.address() as AddressInfo;
    res.writeHead(201, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        token: randomBytes(16).toString('hex'),
        ws_url: `ws://127.0.0.1:${port}/v1/talk`,
        expires_in: 300,
      }),
    );
  });
});
server.on('upgrade', (req, socket, head) => {
  if (!req.url?.startsWith('/v1/talk')) return void socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => new Session(ws));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const probe = new ProcessProbe();
probe.start();
let connects = 0;
subscribe('net.client.socket', () => connects++);
process.on('message', (m: IpcMessage) => {
  if (m.type === 'window-start') {
    probe.start();
    connects = 0;
  } else if (m.type === 'window-end')
    process.send?.({ type: 'stats', stats: probe.stop(), connects });
  else if (m.type === 'rss') {
    if (m.gc) gc?.();
    const mem = process.memoryUsage();
    process.send?.({
      type: 'rss',
      rssMb: mem.rss / 2 ** 20,
      heapUsedMb: mem.heapUsed / 2 ** 20,
      arrayBuffersMb: mem.arrayBuffers / 2 ** 20,
    });
  } else if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
const { port } = server.address() as AddressInfo;
process.send?.({
  type: 'ready',
  url: `http://127.0.0.1:${port}`,
  keys: Array.from({ length: Math.max(1, config.keys ?? 1) }, (_, i) => `reference-${i}`),
  baselineRssMb: process.memoryUsage.rss() / 2 ** 20,
});
