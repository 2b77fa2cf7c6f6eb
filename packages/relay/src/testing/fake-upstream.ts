/**
 * A fake OpenAI-compatible upstream (STT, chat completions, TTS, models) for the relay's tests,
 * benchmarks and offline demo mode. It speaks OpenAI's wire format closely enough that the real
 * `openai` SDK works against it unchanged, and every response can be scripted: content, pacing,
 * HTTP errors, mid-stream connection resets and requests that never answer.
 *
 * Timestamps in {@link RecordedRequest} are `performance.now()` milliseconds.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { serve } from '@hono/node-server';
import { Server, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { pcm16ToWav } from '../pipeline/wav.js';

export { pcm16ToWav };
export { mulberry32 } from './prng.js';

/** Sample rate of the PCM the speech endpoint returns (OpenAI's `pcm` format). */
export const SPEECH_SAMPLE_RATE = 24_000;
/** Bytes per second of 24 kHz s16le mono PCM. */
const SPEECH_BYTES_PER_SECOND = SPEECH_SAMPLE_RATE * 2;

export interface FakeUpstreamOptions {
  /** Path prefix of every endpoint. Default `'/v1'`. */
  basePath?: string;
  /** Scripted delays, all in ms. Default: no delay at all. */
  latency?: {
    /** Delay before the transcription response. */
    sttMs?: number;
    /** Delay before the first chat chunk (the role chunk and the first content piece go out together). */
    llmTtftMs?: number;
    /** Pacing of streamed chat chunks after the first (0/undefined = as fast as possible). */
    tokensPerSecond?: number;
    /** Delay before the first speech byte. */
    ttsTtfbMs?: number;
    /** Pace speech audio at real-time rate (48 000 bytes/s) after the first chunk. */
    ttsRealtime?: boolean;
  };
  /** Transcript for an upload. Default: `I heard N.N seconds of audio.` */
  transcribe?: (req: TranscriptionRequest) => FakeResult<string>;
  /** Reply to a chat request. Default: echoes the last user message. */
  chat?: (req: ChatRequest) => FakeResult<ChatScript>;
  /** Audio for a speech request. Default: {@link synthesizeTone} of the input. */
  speech?: (req: SpeechRequest) => FakeResult<SpeechScript>;
  /**
   * How long an idle keep-alive connection stays open, ms (announced in `Keep-Alive: timeout=…`,
   * which clients such as undici follow). Default: Node's 5 s.
   */
  keepAliveTimeoutMs?: number;
}

/**
 * A scripted failure a handler may return instead of a value.
 * - `http`: OpenAI-shaped error JSON with that status (429 also gets a `retry-after` header).
 * - `cut`: the response starts (with the default content), then the socket is destroyed after
 *   `afterChunks` network chunks or `afterBytes` body bytes (default: halfway through).
 * - `hang`: never answers; the request ends only when the client goes away.
 */
export type FakeFailure =
  | { fail: 'http'; status: number; message?: string; /** seconds, for the `retry-after` header (429 default 1) */ retryAfter?: number }
  | { fail: 'cut'; afterChunks?: number; afterBytes?: number }
  | { fail: 'hang' };

/** What a scripting handler returns: the value, a failure, or a Promise of either. */
export type FakeResult<T> = T | FakeFailure | Promise<T | FakeFailure>;

export interface ChatScript {
  /** Assistant text. Streamed split into words with their leading whitespace. */
  content?: string;
  /** Exact streamed content deltas (overrides the splitting of `content`). */
  contentChunks?: string[];
  /** Function calls; streamed like OpenAI (header delta, then argument fragments). */
  toolCalls?: { id?: string; name: string; arguments: string }[];
  /** Characters per streamed argument fragment. Default 8. */
  chunkSize?: number;
  /** Interleave the argument fragments of parallel calls instead of streaming them one call after another. */
  interleaveToolCalls?: boolean;
  /** Reported usage. Default: a rough estimate. */
  usage?: { prompt_tokens: number; completion_tokens: number };
}

export interface SpeechScript {
  /** Raw s16le 24 kHz mono PCM. Default: {@link synthesizeTone} of the input. */
  pcm?: Uint8Array;
  /** Nominal network chunk size in bytes. Default 4800 (100 ms). */
  chunkBytes?: number;
  /**
   * Default true: chunk sizes alternate `chunkBytes + 1` / `chunkBytes - 1` (for an even
   * `chunkBytes`), so every other chunk boundary splits a sample.
   */
  oddSplits?: boolean;
}

export interface TranscriptionRequest {
  model: string;
  language?: string;
  prompt?: string;
  response_format?: string;
  fileName: string;
  wav: WavInfo;
}

export interface WavInfo {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  dataBytes: number;
  durationMs: number;
  /** Interleaved samples converted to 16-bit. */
  samples: Int16Array;
}

export interface ChatRequest {
  model: string;
  /** As sent. */
  messages: unknown[];
  tools?: unknown[];
  stream: boolean;
  /** The whole parsed JSON body. */
  body: Record<string, unknown>;
}

export interface SpeechRequest {
  model: string;
  input: string;
  voice: string;
  response_format: string;
  speed?: number;
}

export type RequestKind = 'transcription' | 'chat' | 'speech' | 'models';

export interface RecordedRequest {
  path: string;
  kind: RequestKind;
  /** Parsed JSON body; for a transcription the {@link TranscriptionRequest} without `wav.samples`. */
  body: unknown;
  /** `performance.now()` at arrival. */
  startedAt: number;
  /** `performance.now()` when the response completed, was cut, or the client went away. */
  endedAt?: number;
  /** The client went away before the response completed. */
  aborted: boolean;
  /** The scripted failure, if one was applied. */
  failure?: FakeFailure['fail'];
  /** HTTP status answered (undefined for `hang`). */
  status?: number;
}

export interface FakeUpstream {
  /** Mountable Hono app, e.g. `app.route('/_demo', fake.app)`. */
  app: Hono;
  /** Every request, in arrival order (recorded once its body is parsed). */
  requests: RecordedRequest[];
  /** Serves on 127.0.0.1 (`port` 0 = random); `url` includes the base path. */
  listen(port?: number): Promise<{ url: string; close(): Promise<void> }>;
  /**
   * Resolves with the first request (already recorded or future) of `kind` matching `predicate`;
   * the predicate is re-checked whenever a request changes (ends, is aborted…). Default timeout 5 s.
   */
  waitForRequest(kind: RequestKind, predicate?: (req: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
}

// ───────────────────────────── WAV ─────────────────────────────

/** Parses a RIFF/WAVE file (PCM 8/16/24/32-bit or 32-bit float). Throws on anything malformed. */
export function parseWav(bytes: Uint8Array): WavInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt: { format: number; channels: number; sampleRate: number; bitsPerSample: number } | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.byteLength) throw new Error('truncated fmt chunk');
      let format = view.getUint16(body, true);
      if (format === 0xfffe && size >= 40 && body + 26 <= bytes.byteLength) format = view.getUint16(body + 24, true);
      fmt = {
        format,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      const { format, channels, sampleRate, bitsPerSample } = fmt;
      const supported = (format === 1 && [8, 16, 24, 32].includes(bitsPerSample)) || (format === 3 && bitsPerSample === 32);
      if (!supported) throw new Error(`unsupported WAV encoding (format ${format}, ${bitsPerSample} bits)`);
      if (channels < 1 || sampleRate < 1) throw new Error('invalid channel count or sample rate');
      // Streaming writers put 0 or 0xFFFFFFFF here: take what is there.
      const available = bytes.byteLength - body;
      const width = bitsPerSample / 8;
      const frame = width * channels;
      const dataBytes = Math.floor(Math.min(size === 0 ? available : size, available) / frame) * frame;
      const samples = new Int16Array(dataBytes / width);
      for (let i = 0; i < samples.length; i++) {
        const at = body + i * width;
        if (format === 3) samples[i] = Math.round(Math.max(-1, Math.min(1, view.getFloat32(at, true))) * 32767);
        else if (width === 1) samples[i] = ((view.getUint8(at) - 128) << 8);
        else if (width === 2) samples[i] = view.getInt16(at, true);
        else if (width === 3) samples[i] = view.getInt16(at + 1, true);
        else samples[i] = view.getInt32(at, true) >> 16;
      }
      return { sampleRate, channels, bitsPerSample, dataBytes, durationMs: (dataBytes / frame / sampleRate) * 1000, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(fmt ? 'no data chunk' : 'no fmt chunk');
}

// ──────────────────────────── Tone ─────────────────────────────

/**
 * The default speech signal: a soft two-partial tone, one note per word with a smooth envelope
 * and short gaps, ~60 ms per character (clamped to 0.3–20 s, divided by `speed`). Deterministic.
 * Returns s16le mono PCM at `sampleRate` (default 24 kHz).
 */
export function synthesizeTone(text: string, sampleRate = SPEECH_SAMPLE_RATE, speed = 1): Uint8Array {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0) words.push('·');
  const totalMs = Math.min(20_000, Math.max(300, text.trim().length * 60)) / (speed > 0 ? speed : 1);
  const total = Math.max(1, Math.round((totalMs / 1000) * sampleRate));
  const weights = words.map((w) => w.length + 1);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const notes = [261.63, 293.66, 329.63, 392.0, 440.0, 523.25]; // C major pentatonic
  const pcm = new Uint8Array(total * 2);
  const view = new DataView(pcm.buffer);
  let start = 0;
  words.forEach((word, w) => {
    const length = w === words.length - 1 ? total - start : Math.round((total * (weights[w] ?? 1)) / weightSum);
    let hash = 0;
    for (const ch of word) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
    const freq = notes[hash % notes.length] ?? 440;
    const voiced = Math.max(1, Math.round(length * 0.85)); // the rest is a gap between words
    const ramp = Math.max(1, Math.min(Math.round(sampleRate * 0.02), Math.floor(voiced / 2)));
    for (let i = 0; i < voiced && start + i < total; i++) {
      const edge = Math.min(1, i / ramp, (voiced - 1 - i) / ramp);
      const envelope = 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, edge));
      const t = i / sampleRate;
      const value = 0.22 * envelope * (Math.sin(2 * Math.PI * freq * t) + 0.3 * Math.sin(4 * Math.PI * freq * t));
      view.setInt16((start + i) * 2, Math.round(value * 32767), true);
    }
    start += length;
  });
  return pcm;
}

// ─────────────────────────── Helpers ───────────────────────────

interface Step {
  data: Uint8Array;
  /** ms after the request's arrival. */
  at: number;
}

const encoder = new TextEncoder();

function isFailure(value: unknown): value is FakeFailure {
  return typeof value === 'object' && value !== null && 'fail' in value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Resolves true after `ms` (a macrotask turn when ≤ 0), false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    let cancelTimer: () => void;
    const done = (ok: boolean) => {
      cancelTimer();
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    if (ms > 0) {
      const timer = setTimeout(() => done(true), ms);
      cancelTimer = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => done(true));
      cancelTimer = () => clearImmediate(immediate);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function nodeResponse(env: unknown): ServerResponse | undefined {
  if (!isRecord(env)) return undefined;
  const outgoing = env['outgoing'];
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/** Splits text into word-like pieces, each with its leading whitespace; joins back exactly. */
function splitWords(text: string): string[] {
  const pieces: string[] = text.match(/\s*\S+/g) ?? [];
  const used = pieces.reduce((n, p) => n + p.length, 0);
  if (used < text.length) {
    const rest = text.slice(used);
    if (pieces.length > 0) pieces[pieces.length - 1] += rest;
    else pieces.push(rest);
  }
  return pieces;
}

/** Splits by code points (never halves a surrogate pair). */
function splitChars(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out.length > 0 ? out : [''];
}

function chunkSizes(total: number, chunkBytes: number, oddSplits: boolean): number[] {
  const base = Math.max(1, Math.floor(chunkBytes));
  const sizes: number[] = [];
  let at = 0;
  for (let i = 0; at < total; i++) {
    const size = oddSplits && base % 2 === 0 ? (i % 2 === 0 ? base + 1 : Math.max(1, base - 1)) : base;
    const take = Math.min(size, total - at);
    sizes.push(take);
    at += take;
  }
  return sizes;
}

function lastUserText(messages: unknown[]): string | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (!isRecord(message) || message['role'] !== 'user') continue;
    const content = message['content'];
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content
        .map((part) => (isRecord(part) && part['type'] === 'text' ? str(part['text']) ?? '' : ''))
        .join('');
    }
  }
  return undefined;
}

function defaultChat(req: ChatRequest): ChatScript {
  const heard = lastUserText(req.messages)?.trim();
  return {
    content: heard
      ? `You said: ${heard} This is a scripted reply from the offline demo.`
      : 'Hello! This is a scripted reply from the offline demo.',
  };
}

function defaultTranscript(req: TranscriptionRequest): string {
  return `I heard ${(req.wav.durationMs / 1000).toFixed(1)} seconds of audio.`;
}

function errorType(status: number): { type: string; code: string | null } {
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 404) return { type: 'invalid_request_error', code: 'not_found' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

// ─────────────────────────── Exchange ──────────────────────────

type Notify = () => void;

/** One request/response: its record, client-abort detection, pacing and failure modes. */
class Exchange {
  readonly record: RecordedRequest;
  readonly signal: AbortSignal;
  readonly outgoing: ServerResponse | undefined;
  readonly requestId = `req_${randomUUID().replace(/-/g, '')}`;
  private ended = false;

  constructor(
    c: Context,
    kind: RequestKind,
    private readonly notify: Notify,
    private readonly recordRequest: (record: RecordedRequest) => void,
  ) {
    this.record = { path: c.req.path, kind, body: undefined, startedAt: performance.now(), aborted: false };
    this.signal = c.req.raw.signal;
    this.outgoing = nodeResponse(c.env);
    if (this.signal.aborted) this.abort();
    else this.signal.addEventListener('abort', () => this.abort(), { once: true });
  }

  /** Records the request (now that its body is parsed). */
  received(body: unknown): void {
    this.record.body = body;
    this.recordRequest(this.record);
  }

  complete(status: number): void {
    this.record.status ??= status;
    if (this.ended) return;
    this.ended = true;
    this.record.endedAt = performance.now();
    this.notify();
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.record.aborted = true;
    this.record.endedAt = performance.now();
    this.notify();
  }

  /** Waits until `at` ms after arrival; false if the client went away. */
  waitUntil(at: number): Promise<boolean> {
    return sleep(this.record.startedAt + at - performance.now(), this.signal);
  }

  headers(contentType: string, extra: Record<string, string> = {}): Record<string, string> {
    return { 'content-type': contentType, 'x-request-id': this.requestId, 'openai-processing-ms': '1', ...extra };
  }

  error(status: number, message: string, param: string | null = null, extraHeaders: Record<string, string> = {}): Response {
    const { type, code } = errorType(status);
    this.complete(status);
    return new Response(JSON.stringify({ error: { message, type, param, code } }), {
      status,
      headers: this.headers('application/json', extraHeaders),
    });
  }

  /** Answers a scripted failure; `fallback` is the normal response's body (streamed before a `cut`). */
  async failure(failure: FakeFailure, fallback: () => { steps: Step[]; contentType: string }): Promise<Response> {
    this.record.failure = failure.fail;
    if (failure.fail === 'http') {
      const extra: Record<string, string> = {};
      const retryAfter = failure.retryAfter ?? (failure.status === 429 ? 1 : undefined);
      if (retryAfter !== undefined) extra['retry-after'] = String(retryAfter);
      const message =
        failure.message ??
        (failure.status === 429 ? 'Rate limit reached (fake upstream).' : `Scripted failure with status ${failure.status} (fake upstream).`);
      return this.error(failure.status, message, null, extra);
    }
    if (failure.fail === 'hang') {
      await new Promise<void>((resolve) => {
        if (this.signal.aborted) resolve();
        else this.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return new Response(null, { status: 499 });
    }
    const { steps, contentType } = fallback();
    const total = steps.reduce((n, s) => n + s.data.byteLength, 0);
    const cut =
      failure.afterChunks === undefined && failure.afterBytes === undefined
        ? steps.length > 1
          ? { afterChunks: Math.floor(steps.length / 2) }
          : { afterBytes: Math.floor(total / 2) }
        : failure;
    return this.stream(steps, contentType, cut);
  }

  /** A paced streaming response; with `cut`, the connection is reset after that many chunks/bytes. */
  stream(steps: Step[], contentType: string, cut?: { afterChunks?: number; afterBytes?: number }, extraHeaders: Record<string, string> = {}): Response {
    let index = 0;
    let chunks = 0;
    let bytes = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            const cutDue =
              cut !== undefined &&
              ((cut.afterChunks !== undefined && chunks >= cut.afterChunks) || (cut.afterBytes !== undefined && bytes >= cut.afterBytes));
            if (cutDue) {
              this.record.failure = 'cut';
              this.complete(200);
              // With node bindings the adapter cancels the stream once the socket closes.
              if (!(await this.destroyConnection())) controller.error(new Error('fake upstream: connection cut'));
              return;
            }
            const step = steps[index++];
            if (!step) {
              this.complete(200);
              controller.close();
              return;
            }
            if (!(await this.waitUntil(step.at))) {
              // The node adapter cancels the stream when the socket closes; elsewhere, end it here.
              if (!this.outgoing) {
                try {
                  controller.error(new Error('client went away'));
                } catch {
                  // already cancelled
                }
              }
              return;
            }
            let data = step.data;
            if (cut?.afterBytes !== undefined && bytes + data.byteLength > cut.afterBytes) data = data.subarray(0, cut.afterBytes - bytes);
            chunks++;
            bytes += data.byteLength;
            if (data.byteLength > 0) {
              controller.enqueue(data);
              return;
            }
          }
        },
        cancel: () => this.abort(),
      },
      { highWaterMark: 0 },
    );
    this.record.status = 200;
    return new Response(body, { status: 200, headers: this.headers(contentType, extraHeaders) });
  }

  /** A complete, non-streamed response, sent `at` ms after arrival. */
  async respond(at: number, body: string | Uint8Array, contentType: string): Promise<Response> {
    if (!(await this.waitUntil(at))) return new Response(null, { status: 499 });
    this.complete(200);
    return new Response(body, { status: 200, headers: this.headers(contentType) });
  }

  /** Destroys the socket once the headers and the bytes written so far have left. False without node bindings. */
  private async destroyConnection(): Promise<boolean> {
    const outgoing = this.outgoing;
    if (!outgoing) return false;
    const never = new AbortController().signal;
    for (let i = 0; i < 100; i++) {
      const socket = outgoing.socket;
      if (!socket || socket.destroyed) break;
      if (outgoing.headersSent && outgoing.writableLength === 0 && socket.writableLength === 0) break;
      await sleep(2, never);
    }
    outgoing.socket?.destroy();
    return true;
  }
}

// ─────────────────────────── The app ───────────────────────────

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

  app.get(`${base}/models`, (c) => {
    const ex = begin(c, 'models');
    ex.received(null);
    ex.complete(200);
    const created = 1_700_000_000;
    const data = ['whisper-1', 'gpt-4o-mini-transcribe', 'gpt-4o-mini', 'gpt-4.1-mini', 'tts-1', 'gpt-4o-mini-tts'].map((id) => ({
      id,
      object: 'model',
      created,
      owned_by: 'fake-upstream',
    }));
    return new Response(JSON.stringify({ object: 'list', data }), { headers: ex.headers('application/json') });
  });

  app.post(`${base}/audio/transcriptions`, async (c) => {
    const ex = begin(c, 'transcription');
    let form: FormData;
    try {
      form = await c.req.raw.formData();
    } catch {
      ex.received(null);
      return ex.error(400, 'Could not parse multipart form data.');
    }
    const file = form.get('file');
    const model = str(form.get('model')) ?? '';
    const language = str(form.get('language'));
    const prompt = str(form.get('prompt'));
    const responseFormat = str(form.get('response_format')) ?? 'json';
    const meta = {
      model,
      ...(language !== undefined ? { language } : {}),
      ...(prompt !== undefined ? { prompt } : {}),
      ...(form.has('response_format') ? { response_format: responseFormat } : {}),
      fileName: typeof file === 'object' && file !== null ? file.name : '',
    };
    if (typeof file !== 'object' || file === null) {
      ex.received(meta);
      return ex.error(400, "Missing required parameter: 'file'.", 'file');
    }
    let wav: WavInfo;
    try {
      wav = parseWav(new Uint8Array(await file.arrayBuffer()));
    } catch (error) {
      ex.received({ ...meta, fileBytes: file.size });
      const reason = error instanceof Error ? error.message : String(error);
      return ex.error(400, `Invalid file format: ${reason}. The fake upstream only decodes WAV.`);
    }
    const { samples: _samples, ...wavMeta } = wav;
    ex.received({ ...meta, wav: wavMeta });
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!['json', 'text', 'verbose_json', 'srt', 'vtt'].includes(responseFormat)) {
      return ex.error(400, `Invalid value for 'response_format': ${responseFormat}.`, 'response_format');
    }
    const request: TranscriptionRequest = { ...meta, wav };
    const result = await (options.transcribe ?? defaultTranscript)(request);
    const seconds = wav.durationMs / 1000;
    const render = (text: string): { body: string; contentType: string } => {
      const usage = { type: 'duration', seconds: Math.ceil(seconds) };
      switch (responseFormat) {
        case 'text':
          return { body: `${text}\n`, contentType: 'text/plain; charset=utf-8' };
        case 'verbose_json':
          return {
            body: JSON.stringify({ task: 'transcribe', language: language ?? 'english', duration: seconds, text, segments: [], usage }),
            contentType: 'application/json',
          };
        case 'srt':
        case 'vtt': {
          const stamp = (s: number, sep: string) =>
            `${new Date(s * 1000).toISOString().slice(11, 19)}${sep}${String(Math.round((s % 1) * 1000)).padStart(3, '0')}`;
          const cue = `${stamp(0, responseFormat === 'srt' ? ',' : '.')} --> ${stamp(seconds, responseFormat === 'srt' ? ',' : '.')}\n${text}\n`;
          return { body: responseFormat === 'srt' ? `1\n${cue}\n` : `WEBVTT\n\n${cue}\n`, contentType: 'text/plain; charset=utf-8' };
        }
        default:
          return { body: JSON.stringify({ text, usage }), contentType: 'application/json' };
      }
    };
    if (isFailure(result)) {
      return ex.failure(result, () => {
        const { body, contentType } = render(defaultTranscript(request));
        return { steps: [{ data: encoder.encode(body), at: latency.sttMs ?? 0 }], contentType };
      });
    }
    const { body, contentType } = render(result);
    return ex.respond(latency.sttMs ?? 0, body, contentType);
  });

  app.post(`${base}/chat/completions`, async (c) => {
    const ex = begin(c, 'chat');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      ex.received(null);
      return ex.error(400, 'We could not parse the JSON body of your request.');
    }
    ex.received(body);
    if (!isRecord(body)) return ex.error(400, 'The request body must be a JSON object.');
    const model = str(body['model']);
    const messages = body['messages'];
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!Array.isArray(messages) || messages.length === 0) return ex.error(400, "Missing required parameter: 'messages'.", 'messages');
    const tools = Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : undefined;
    const stream = body['stream'] === true;
    const streamOptions = body['stream_options'];
    const includeUsage = isRecord(streamOptions) && streamOptions['include_usage'] === true;
    const request: ChatRequest = { model, messages, ...(tools ? { tools } : {}), stream, body };
    const result = await (options.chat ?? defaultChat)(request);

    const id = `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const ttft = latency.llmTtftMs ?? 0;
    const interval = latency.tokensPerSecond ? 1000 / latency.tokensPerSecond : 0;

    const plan = (script: ChatScript) => {
      const pieces = script.contentChunks ?? (script.content !== undefined ? splitWords(script.content) : []);
      const content = script.contentChunks ? script.contentChunks.join('') : script.content;
      const calls = (script.toolCalls ?? []).map((call, i) => ({
        id: call.id ?? `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
        name: call.name,
        arguments: call.arguments,
        fragments: splitChars(call.arguments, Math.max(1, script.chunkSize ?? 8)),
        index: i,
      }));
      const finishReason = calls.length > 0 ? 'tool_calls' : 'stop';
      const promptTokens = script.usage?.prompt_tokens ?? Math.ceil(JSON.stringify(messages).length / 4);
      const completionTokens =
        script.usage?.completion_tokens ??
        Math.max(1, pieces.length + calls.reduce((n, call) => n + Math.ceil((call.name.length + call.arguments.length) / 4), 0));
      const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
      return { pieces, content, calls, finishReason, usage };
    };

    const sse = (script: ChatScript): Step[] => {
      const { pieces, calls, finishReason, usage } = plan(script);
      const steps: Step[] = [];
      let tick = 0;
      const push = (payload: Record<string, unknown>, paced: boolean) => {
        if (paced && steps.length > 0) tick++;
        const chunk = {
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          service_tier: 'default',
          system_fingerprint: 'fp_fake',
          ...payload,
          ...(includeUsage && !('usage' in payload) ? { usage: null } : {}),
        };
        steps.push({ data: encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`), at: ttft + tick * interval });
      };
      const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      });
      push(choice({ role: 'assistant', content: calls.length > 0 && pieces.length === 0 ? null : '', refusal: null }), false);
      pieces.forEach((piece, i) => push(choice({ content: piece }), i > 0));
      const header = (call: (typeof calls)[number]) =>
        choice({ tool_calls: [{ index: call.index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] });
      const fragment = (call: (typeof calls)[number], text: string) =>
        choice({ tool_calls: [{ index: call.index, function: { arguments: text } }] });
      if (script.interleaveToolCalls) {
        calls.forEach((call) => push(header(call), true));
        const rounds = Math.max(0, ...calls.map((call) => call.fragments.length));
        for (let r = 0; r < rounds; r++) {
          for (const call of calls) {
            const text = call.fragments[r];
            if (text !== undefined) push(fragment(call, text), true);
          }
        }
      } else {
        for (const call of calls) {
          push(header(call), true);
          for (const text of call.fragments) push(fragment(call, text), true);
        }
      }
      push(choice({}, finishReason), false);
      if (includeUsage) push({ choices: [], usage }, false);
      steps.push({ data: encoder.encode('data: [DONE]\n\n'), at: ttft + tick * interval });
      return steps;
    };

    const completion = (script: ChatScript): string => {
      const { content, calls, finishReason, usage } = plan(script);
      return JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: content ?? null,
              refusal: null,
              annotations: [],
              ...(calls.length > 0
                ? { tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })) }
                : {}),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
      });
    };

    if (isFailure(result)) {
      return ex.failure(result, () => {
        const script = defaultChat(request);
        return stream
          ? { steps: sse(script), contentType: 'text/event-stream; charset=utf-8' }
          : { steps: [{ data: encoder.encode(completion(script)), at: ttft }], contentType: 'application/json' };
      });
    }
    if (stream) return ex.stream(sse(result), 'text/event-stream; charset=utf-8', undefined, { 'cache-control': 'no-cache' });
    const tokens = plan(result).pieces.length;
    return ex.respond(ttft + Math.max(0, tokens - 1) * interval, completion(result), 'application/json');
  });

  app.post(`${base}/audio/speech`, async (c) => {
    const ex = begin(c, 'speech');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      ex.received(null);
      return ex.error(400, 'We could not parse the JSON body of your request.');
    }
    ex.received(body);
    if (!isRecord(body)) return ex.error(400, 'The request body must be a JSON object.');
    const model = str(body['model']);
    const input = str(body['input']);
    const voice = str(body['voice']);
    const format = str(body['response_format']) ?? 'mp3';
    const speed = typeof body['speed'] === 'number' ? body['speed'] : undefined;
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!input) return ex.error(400, "Invalid 'input': string too short. Expected a string with minimum length 1.", 'input');
    if (!voice) return ex.error(400, "Missing required parameter: 'voice'.", 'voice');
    if (speed !== undefined && (speed < 0.25 || speed > 4)) return ex.error(400, "Invalid 'speed': expected 0.25 to 4.", 'speed');
    if (format !== 'pcm' && format !== 'wav') {
      return ex.error(400, `The fake upstream only implements response_format 'pcm' and 'wav', not '${format}'.`, 'response_format');
    }
    const request: SpeechRequest = { model, input, voice, response_format: format, ...(speed !== undefined ? { speed } : {}) };
    const result = await (options.speech ?? ((req: SpeechRequest): SpeechScript => ({})))(request);
    const contentType = format === 'wav' ? 'audio/wav' : 'audio/pcm';

    const steps = (script: SpeechScript): Step[] => {
      const pcm = script.pcm ?? synthesizeTone(input, SPEECH_SAMPLE_RATE, speed ?? 1);
      const bytes = format === 'wav' ? pcm16ToWav(pcm, SPEECH_SAMPLE_RATE) : pcm;
      const ttfb = latency.ttsTtfbMs ?? 0;
      const out: Step[] = [];
      let offset = 0;
      for (const size of chunkSizes(bytes.byteLength, script.chunkBytes ?? 4800, script.oddSplits ?? true)) {
        const at = ttfb + (latency.ttsRealtime ? (offset / SPEECH_BYTES_PER_SECOND) * 1000 : 0);
        out.push({ data: bytes.subarray(offset, offset + size), at });
        offset += size;
      }
      return out;
    };

    if (isFailure(result)) return ex.failure(result, () => ({ steps: steps({}), contentType }));
    return ex.stream(steps(result), contentType);
  });

  app.notFound((c) => {
    const { type } = errorType(404);
    return c.json({ error: { message: `Invalid URL (${c.req.method} ${c.req.path})`, type, param: null, code: null } }, 404);
  });

  app.onError((error, c) => {
    const message = error instanceof Error ? error.message : String(error);
    return c.json({ error: { message: `Fake upstream error: ${message}`, type: 'server_error', param: null, code: null } }, 500);
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
          const drained = new Promise<void>((done) => (open.size === 0 ? done() : (allClosed = done)));
          if (server instanceof Server) server.closeAllConnections();
          await Promise.all([stopped, drained]);
        };
        resolve({ url: `http://127.0.0.1:${info.port}${base}`, close });
      });
      if (server instanceof Server) {
        if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
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
