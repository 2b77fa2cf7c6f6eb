/**
 * The public types of the fake provider: its options, what scripting handlers receive and return,
 * and what it records. Timestamps in {@link RecordedRequest} are `performance.now()` milliseconds.
 */
import type { Hono } from 'hono';

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
  /** Vectors for an embeddings request, one per input. Default: a hashed bag of words of each. */
  embed?: (req: EmbeddingsRequest) => FakeResult<(Float32Array | number[])[]>;
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
  | {
      fail: 'http';
      status: number;
      message?: string;
      /** seconds, for the `retry-after` header (429 default 1) */ retryAfter?: number;
    }
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

export interface EmbeddingsRequest {
  model: string;
  input: string[];
  /** As asked (`dimensions`), else the fake's default (256). */
  dimensions: number;
}

export type RequestKind = 'transcription' | 'chat' | 'speech' | 'models' | 'embeddings';

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
  waitForRequest(
    kind: RequestKind,
    predicate?: (req: RecordedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedRequest>;
}
