import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import {
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  encodeClientMessage,
  parseServerMessage,
  type ClientMessageInput,
  type ServerMessage,
  type ServerMessageOf,
  type ServerMessageType,
} from '@voice-bot/protocol';
import {
  createRelay,
  createLogger,
  openStorage,
  type KeyStore,
  type Relay,
  type RelayOptions,
  type SharedState,
  type Storage,
} from '@voice-bot/relay';
import {
  createFakeUpstream,
  parseWav,
  type ChatRequest,
  type FakeUpstreamOptions,
} from '@voice-bot/fake-provider';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const FIXTURES = resolve(REPO_ROOT, '../shared/fixtures/audio');
export const ORIGIN = 'http://app.test';

/** Reads a WAV fixture as PCM16LE bytes. */
export async function readWav(
  path: string,
): Promise<{ sampleRate: number; channels: number; pcm: Uint8Array }> {
  const { sampleRate, channels, samples } = parseWav(await readFile(path));
  return {
    sampleRate,
    channels,
    pcm: new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength),
  };
}

/** The content of the last user message in a chat request ('' if there is none), for steering scripted replies. */
export function lastUser(request: ChatRequest): string {
  const users = request.messages.filter(
    (m): m is { role: 'user'; content: string } => (m as { role?: string }).role === 'user',
  );
  return users.at(-1)?.content ?? '';
}

/** Collects pino's JSON lines so tests can assert what was (not) logged. */
export function captureLogs(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

export interface RelayHarness {
  relay: Relay;
  url: string;
  upstream: ReturnType<typeof createFakeUpstream>;
  keys: KeyStore;
  /** The relay's database (SQLite in `dataDir`, or `options.databaseUrl`). */
  storage: Storage;
  dataDir: string;
  /** A key allowed on ORIGIN for every bot. */
  key: string;
  keyId: string;
  logs: string[];
  close(): Promise<void>;
}

export async function startRelay(
  options: {
    upstream?: FakeUpstreamOptions;
    relay?: Partial<RelayOptions>;
    /** the SDK's retries per provider call (default 0 here; the relay's own default is 1) */ maxRetries?: number;
    /** PostgreSQL instead of SQLite in the temp data dir */
    databaseUrl?: string;
    /** how often the database is pinged (ms; default 5000) */
    pingMs?: number;
    /** The relay's shared state, made from its storage (e.g. `redisState`); default in-process. */
    sharedState?: (storage: Storage) => Promise<SharedState>;
  } = {},
): Promise<RelayHarness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-test-'));
  const upstream = createFakeUpstream(options.upstream);
  const served = await upstream.listen(0);
  const { lines, logger } = captureLogs();
  const storage = await openStorage({
    dataDir,
    databaseUrl: options.databaseUrl,
    logger,
    ...(options.pingMs ? { pingMs: options.pingMs } : {}),
  });
  const keys = storage.keys;
  const { record, secret } = await keys.create({ origins: [ORIGIN], label: 'test' });
  const stage = {
    baseURL: served.url,
    apiKey: 'sk-upstream-secret',
    timeoutMs: 5_000,
    maxRetries: options.maxRetries ?? 0,
  };
  const state = await options.sharedState?.(storage);
  const relay = createRelay({
    storage,
    logger,
    ...(state ? { state } : {}),
    tokenSecret: 'test-secret-test-secret-test-secret-0123',
    providers: {
      stt: { ...stage, model: 'whisper-1' },
      llm: { ...stage, model: 'gpt-4o-mini' },
      tts: { ...stage, model: 'gpt-4o-mini-tts', voice: 'alloy' },
    },
    ...options.relay,
  });
  const { url } = await relay.listen(0);
  return {
    relay,
    url,
    upstream,
    keys,
    storage,
    dataDir,
    key: secret,
    keyId: record.id,
    logs: lines,
    async close() {
      await relay.close();
      await storage.close();
      await served.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function createSession(
  url: string,
  init: { key?: string; origin?: string; bot?: string },
): Promise<{
  status: number;
  body: {
    token?: string;
    ws_url?: string;
    expires_at?: string;
    error?: { code: string; message: string };
  };
  headers: Headers;
}> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  if (init.origin) headers.origin = init.origin;
  const res = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers,
    body: JSON.stringify(init.bot ? { bot: init.bot } : {}),
  });
  return { status: res.status, body: (await res.json()) as never, headers: res.headers };
}

/** Opens `/v1/talk` with a token; resolves with the HTTP status when the upgrade is refused. */
export function connectTalk(
  wsUrl: string,
  token: string | undefined,
  origin: string | undefined,
): Promise<TalkClient | { refused: number }> {
  const protocols = token ? [SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`] : [SUBPROTOCOL];
  const ws = new WebSocket(wsUrl, protocols, {
    handshakeTimeout: 10_000,
    ...(origin ? { origin } : {}),
  });
  return new Promise((resolvePromise, reject) => {
    ws.once('open', () => resolvePromise(new TalkClient(ws)));
    ws.once('unexpected-response', (_req, res) => {
      resolvePromise({ refused: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** A protocol-level test client: records every event and binary frame. */
export class TalkClient {
  readonly messages: ServerMessage[] = [];
  readonly audio: { turnId: number | undefined; bytes: Uint8Array }[] = [];
  /** Messages and audio frames interleaved in arrival order. */
  readonly timeline: (
    { kind: 'json'; message: ServerMessage } | { kind: 'audio'; bytes: Uint8Array }
  )[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];
  private lastTurnId: number | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const buf = data as Buffer;
        const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        this.audio.push({ turnId: this.lastTurnId, bytes });
        this.timeline.push({ kind: 'audio', bytes });
      } else {
        const message = parseServerMessage(String(data));
        if (!message) throw new Error(`relay sent an invalid message: ${String(data)}`);
        if ('turn_id' in message && message.turn_id !== undefined)
          this.lastTurnId = message.turn_id;
        this.messages.push(message);
        this.timeline.push({ kind: 'json', message });
      }
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
    this.closed = new Promise((resolvePromise) =>
      ws.once('close', (code, reason) => resolvePromise({ code, reason: reason.toString() })),
    );
    this.closed.then(() => {
      for (const wake of this.waiters) wake();
    });
  }

  send(message: ClientMessageInput): void {
    this.ws.send(encodeClientMessage(message));
  }

  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  start(extra: Partial<Extract<ClientMessageInput, { type: 'start' }>> = {}): void {
    this.send({
      type: 'start',
      protocol_version: PROTOCOL_VERSION,
      input: 'audio',
      output: 'audio',
      ...extra,
    });
  }

  /** Streams PCM16 in frames of `frameMs` (no pacing unless `realtime`). */
  async sendPcm(pcm: Uint8Array, frameMs = 40, realtime = false): Promise<void> {
    const frameBytes = (16_000 * 2 * frameMs) / 1000;
    for (let offset = 0; offset < pcm.byteLength; offset += frameBytes) {
      this.ws.send(pcm.subarray(offset, Math.min(offset + frameBytes, pcm.byteLength)));
      if (realtime) await new Promise((r) => setTimeout(r, frameMs));
    }
  }

  /** Waits for the next message of `type` (after `from`, an index into `messages`) matching `predicate`. */
  async next<T extends ServerMessageType>(
    type: T,
    predicate: (message: ServerMessageOf<T>) => boolean = () => true,
    { from = 0, timeoutMs = 5_000 }: { from?: number; timeoutMs?: number } = {},
  ): Promise<ServerMessageOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages
        .slice(from)
        .find(
          (m): m is ServerMessageOf<T> => m.type === type && predicate(m as ServerMessageOf<T>),
        );
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error(`socket closed while waiting for ${type}; got ${this.summary()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${type}; got ${this.summary()}`);
      await new Promise<void>((resolvePromise) => {
        const timer = setTimeout(resolvePromise, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolvePromise();
        });
      });
    }
  }

  of<T extends ServerMessageType>(type: T): ServerMessageOf<T>[] {
    return this.messages.filter((m): m is ServerMessageOf<T> => m.type === type);
  }

  /** PCM received after each `audio_segment` of a turn, keyed by segment index. */
  segmentAudio(turnId: number): Map<number, Buffer> {
    const out = new Map<number, Buffer[]>();
    let current: number | undefined;
    for (const entry of this.timeline) {
      if (entry.kind === 'json') {
        const m = entry.message;
        if (m.type === 'audio_segment') current = m.turn_id === turnId ? m.index : undefined;
        else if ('turn_id' in m && m.turn_id !== turnId) current = undefined;
        if (current !== undefined && !out.has(current)) out.set(current, []);
      } else if (current !== undefined) {
        out.get(current)?.push(Buffer.from(entry.bytes));
      }
    }
    return new Map([...out].map(([index, parts]) => [index, Buffer.concat(parts)]));
  }

  audioBytes(turnId?: number): number {
    return this.audio
      .filter((a) => turnId === undefined || a.turnId === turnId)
      .reduce((n, a) => n + a.bytes.byteLength, 0);
  }

  summary(): string {
    return this.messages.map((m) => (m.type === 'error' ? `error(${m.code})` : m.type)).join(',');
  }

  close(): void {
    this.ws.close();
  }
}

/** Session token + open socket + `start` → `ready`, for tests that are about turns. */
export async function openStartedTalk(
  harness: RelayHarness,
  start: Partial<Extract<ClientMessageInput, { type: 'start' }>> = {},
): Promise<TalkClient> {
  const session = await createSession(harness.url, { key: harness.key, origin: ORIGIN });
  if (session.status !== 201 || !session.body.token || !session.body.ws_url)
    throw new Error(`session refused: ${JSON.stringify(session.body)}`);
  const talk = await connectTalk(session.body.ws_url, session.body.token, ORIGIN);
  if (!(talk instanceof TalkClient)) throw new Error(`upgrade refused: ${talk.refused}`);
  talk.start(start);
  await talk.next('ready');
  return talk;
}
