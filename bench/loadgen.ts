/**
 * Child process: the load generator. It must not share a process (or event loop) with the relay.
 *
 * Protocol over IPC:
 *   parent → `{type:'run', config: LoadConfig}`
 *   child  → `{type:'connected', ...}` once every session is open and started; then it waits for
 *            parent → `{type:'go'}`,
 *            `{type:'steady'}` when streaming begins (the measurement window),
 *            `{type:'drained'}` when the last turn has finished (or the drain limit hit),
 *            `{type:'result', result: LoadResult}`.
 *
 * Every session streams real 16 kHz speech (a fixture, with its leading and trailing silence
 * trimmed the way a client VAD would) in real time in `frameMs` frames from one 5 ms ticker, sends
 * `commit`, and then behaves like a listener: it waits for the whole reply (`done`, which arrives
 * after the reply's real-time-paced audio) and a short pause before speaking again. Session starts
 * are spread over `spreadMs` so commits do not arrive in lock step.
 *
 * Per turn it records: first audio byte − commit sent (and that minus the scripted upstream delays),
 * the relay's `done.metrics`, whether every uplink byte reached the STT provider (the fake STT
 * answers with the byte count it received), whether every downlink byte the TTS produced arrived,
 * and how far behind its real-time schedule the reply audio arrived.
 */
import { join } from 'node:path';
import type WebSocket from 'ws';
import { openBenchSocket } from './bench-socket.js';
import { PROTOCOL_VERSION } from '@voice-bot/protocol';
import { directStreaming, upstreamClient } from './pipelines.js';
import {
  FIXTURES,
  ProcessProbe,
  SPEECH_FIXTURES,
  readWavPcm,
  toneBytes,
  type IpcMessage,
  type ProcessStats,
} from './common.js';

export interface LoadConfig {
  relayUrl: string;
  keys: string[];
  sessions: number;
  /** New utterances start only within this window after streaming begins. */
  durationMs: number;
  /** After the window, turns in flight may finish within this long. */
  drainMs: number;
  /** Session starts are spread uniformly over this long. */
  spreadMs: number;
  frameMs: number;
  /** Pause between the end of a reply and the next utterance. */
  thinkMs: number;
  /** Scripted upstream share of time to first audio (subtracted to get the relay-added latency). */
  scriptedMs: number;
  /** 16 kHz fixture names (without .wav) the sessions cycle through. Default: all speech fixtures. */
  fixtures?: string[];
  /** Unmeasured turns before the window that warm the relay up (JIT, provider connections). */
  warmupTurns?: number;
  /** Sessions opened in parallel during setup. */
  setupConcurrency?: number;
  /** Give up on setup after this long. */
  setupTimeoutMs?: number;
  /**
   * The fake upstream's URL: when set, a probe in this process runs the relay's pipeline without
   * the relay (bench/pipelines.ts `directStreaming`) one turn at a time through the window, so the
   * upstream's and the machine's own delay under this load can be told apart from the relay's.
   */
  probeUpstreamUrl?: string;
}

export interface TurnRecord {
  session: number;
  latencyMs: number;
  addedMs: number;
  uplinkSent: number;
  uplinkReceived: number;
  downlinkExpected: number;
  downlinkReceived: number;
  /** Largest lateness of a reply audio frame behind the real-time schedule set by its first byte. */
  maxLateMs: number;
  metrics: Record<string, number>;
}

export interface LoadResult {
  sessions: number;
  connected: number;
  setupFailures: number;
  setupMs: number;
  turns: TurnRecord[];
  /** turns that ended in an error or never finished */
  failedTurns: number;
  errors: Record<string, number>;
  unexpectedCloses: number;
  /** utterances cut off at the end of the window (not counted) */
  abandoned: number;
  framesSent: number;
  /** largest lag of a frame behind its real-time send time (load generator health) */
  sendLag: { p99: number; max: number };
  windowMs: number;
  loadgen: ProcessStats;
  /** The probe's time to first audio minus the scripted share, ms, per probe turn (`probeUpstreamUrl`). */
  probeExcessMs: number[];
}

interface Utterance {
  pcm: Uint8Array;
  name: string;
}

/** Trims leading/trailing silence like a client VAD (−45 dBFS gate, 300 ms pre-pad, 500 ms post-pad). */
export function trimSilence(pcm: Uint8Array): Uint8Array {
  const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 2);
  const frame = 320; // 20 ms at 16 kHz
  const threshold = 32768 * 10 ** (-45 / 20);
  let first = -1;
  let last = -1;
  for (let f = 0; f * frame < samples.length; f++) {
    let sum = 0;
    const end = Math.min(samples.length, (f + 1) * frame);
    for (let i = f * frame; i < end; i++) sum += (samples[i] as number) ** 2;
    if (Math.sqrt(sum / (end - f * frame)) > threshold) {
      if (first < 0) first = f;
      last = f;
    }
  }
  if (first < 0) return pcm;
  const start = Math.max(0, (first - 15) * frame);
  const stop = Math.min(samples.length, (last + 1 + 25) * frame);
  return pcm.subarray(start * 2, stop * 2);
}

function loadUtterances(names: readonly string[] = SPEECH_FIXTURES): Utterance[] {
  return names.map((name) => ({
    name,
    pcm: trimSilence(readWavPcm(join(FIXTURES, '16k', `${name}.wav`)).pcm),
  }));
}

type State = 'connecting' | 'waiting' | 'streaming' | 'awaiting' | 'finished';

interface Turn {
  commitAt: number;
  firstAudioAt: number | undefined;
  uplinkSent: number;
  uplinkReceived: number;
  downlinkExpected: number;
  downlinkReceived: number;
  maxLateMs: number;
}

class Session {
  ws: WebSocket | undefined;
  state: State = 'connecting';
  nextStartAt = 0;
  private utterance: Utterance | undefined;
  private offset = 0;
  private streamStart = 0;
  private frames = 0;
  private turn: Turn | undefined;
  private turnCount = 0;
  private closedByUs = false;

  constructor(
    readonly index: number,
    private readonly run: Run,
  ) {}

  async open(key: string): Promise<void> {
    const { config } = this.run;
    const ws = await openBenchSocket(config.relayUrl, key);
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ready within 15 s')), 15_000);
      ws.once('unexpected-response', (_req, r) =>
        reject(new Error(`upgrade refused: ${r.statusCode}`)),
      );
      ws.once('error', reject);
      ws.once('open', () =>
        ws.send(
          JSON.stringify({
            type: 'start',
            protocol_version: PROTOCOL_VERSION,
            input: 'audio',
            output: 'audio',
          }),
        ),
      );
      ws.on('message', (data, isBinary) => {
        if (this.state === 'connecting') {
          if (!isBinary && String(data).includes('"ready"')) {
            clearTimeout(timer);
            this.state = 'waiting';
            resolve();
          }
          return;
        }
        if (isBinary) this.onAudio((data as Buffer).byteLength);
        else this.onJson(String(data));
      });
      ws.on('error', () => undefined); // reported through 'close'
      ws.on('close', () => {
        clearTimeout(timer);
        if (!this.closedByUs && this.run.running) this.run.unexpectedCloses++;
        if (this.turn && !this.closedByUs) this.failTurn('closed');
        this.state = 'finished';
        reject(new Error('closed before ready'));
      });
    });
  }

  /** Called from the ticker: sends every frame that is due, then `commit`. */
  tick(now: number): void {
    if (this.state === 'waiting') {
      if (now < this.nextStartAt) return;
      if (now >= this.run.deadline) {
        this.state = 'finished';
        return;
      }
      const utterances = this.run.utterances;
      this.utterance = utterances[(this.index + this.turnCount) % utterances.length];
      this.offset = 0;
      this.frames = 0;
      this.streamStart = now;
      this.state = 'streaming';
    }
    if (this.state !== 'streaming' || !this.utterance || !this.ws) return;
    const { frameMs } = this.run.config;
    const frameBytes = (16_000 * 2 * frameMs) / 1000;
    const pcm = this.utterance.pcm;
    // Frame k covers [k, k+1) × frameMs of speech, so it exists only at streamStart + (k+1) × frameMs.
    for (;;) {
      const end = Math.min(pcm.byteLength, this.offset + frameBytes);
      const readyAt = this.streamStart + end / (frameBytes / frameMs);
      if (readyAt > now) break;
      this.run.noteLag(now - readyAt);
      this.ws.send(pcm.subarray(this.offset, end));
      this.run.framesSent++;
      this.frames++;
      this.offset = end;
      if (end >= pcm.byteLength) {
        this.turn = {
          commitAt: performance.now(),
          firstAudioAt: undefined,
          uplinkSent: pcm.byteLength,
          uplinkReceived: -1,
          downlinkExpected: 0,
          downlinkReceived: 0,
          maxLateMs: 0,
        };
        this.ws.send('{"type":"commit"}');
        this.state = 'awaiting';
        this.turnCount++;
        break;
      }
    }
  }

  /** The window closed while this session was still speaking: drop the utterance, uncounted. */
  abandon(): void {
    if (this.state === 'streaming' || this.state === 'waiting') {
      if (this.state === 'streaming') this.run.abandoned++;
      this.state = 'finished';
    }
  }

  /** Warm-up (not measured): 1 s of speech sent at once, commit, resolves at the first reply audio. */
  warmTurn(): Promise<void> {
    const pcm = (this.run.utterances[0] as Utterance).pcm;
    const part = pcm.subarray(0, Math.min(pcm.byteLength, 32_000));
    this.turn = {
      commitAt: performance.now(),
      firstAudioAt: undefined,
      uplinkSent: part.byteLength,
      uplinkReceived: -1,
      downlinkExpected: 0,
      downlinkReceived: 0,
      maxLateMs: 0,
    };
    this.state = 'awaiting';
    for (let o = 0; o < part.byteLength; o += 640)
      this.ws?.send(part.subarray(o, Math.min(part.byteLength, o + 640)));
    this.ws?.send('{"type":"commit"}');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('warm-up turn got no audio within 15 s')),
        15_000,
      );
      this.onFirstAudio = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private onFirstAudio: (() => void) | undefined;

  private onAudio(bytes: number): void {
    const turn = this.turn;
    if (!turn) return;
    const now = performance.now();
    if (turn.firstAudioAt === undefined) {
      turn.firstAudioAt = now;
      this.onFirstAudio?.();
    }
    // 24 kHz PCM16: 48 bytes per ms. Lateness of this frame's first sample against real time.
    const late = now - (turn.firstAudioAt + turn.downlinkReceived / 48);
    if (late > turn.maxLateMs) turn.maxLateMs = late;
    turn.downlinkReceived += bytes;
  }

  private onJson(text: string): void {
    let message: {
      type: string;
      text?: string;
      code?: string;
      turn_id?: number;
      metrics?: Record<string, number>;
    };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      this.run.countError('bad_json');
      return;
    }
    const turn = this.turn;
    switch (message.type) {
      case 'transcript':
        if (turn) turn.uplinkReceived = Number((message.text ?? '').replace(/^bytes /, ''));
        return;
      case 'audio_segment':
        if (turn) turn.downlinkExpected += toneBytes(message.text ?? '');
        return;
      case 'done':
        if (turn) this.finishTurn(turn, message.metrics ?? {});
        return;
      case 'error':
        this.run.countError(message.code ?? 'unknown');
        if (turn && message.turn_id !== undefined) this.failTurn(message.code ?? 'error');
        return;
      default:
        return;
    }
  }

  private finishTurn(turn: Turn, metrics: Record<string, number>): void {
    this.turn = undefined;
    if (turn.firstAudioAt === undefined) {
      this.run.failedTurns++;
    } else {
      const latencyMs = turn.firstAudioAt - turn.commitAt;
      this.run.turns.push({
        session: this.index,
        latencyMs,
        addedMs: latencyMs - this.run.config.scriptedMs,
        uplinkSent: turn.uplinkSent,
        uplinkReceived: turn.uplinkReceived,
        downlinkExpected: turn.downlinkExpected,
        downlinkReceived: turn.downlinkReceived,
        maxLateMs: turn.maxLateMs,
        metrics,
      });
    }
    this.afterTurn();
  }

  private failTurn(reason: string): void {
    this.turn = undefined;
    this.run.failedTurns++;
    this.run.countError(`turn_${reason}`);
    this.afterTurn();
  }

  private afterTurn(): void {
    if (this.state !== 'awaiting') return;
    this.nextStartAt = performance.now() + this.run.config.thinkMs;
    this.state = performance.now() < this.run.deadline ? 'waiting' : 'finished';
    this.run.maybeDrained();
  }

  get busy(): boolean {
    return this.state === 'awaiting';
  }

  close(): void {
    this.closedByUs = true;
    this.ws?.terminate();
  }
}

class Run {
  readonly utterances: Utterance[];
  readonly sessions: Session[] = [];
  readonly turns: TurnRecord[] = [];
  readonly errors: Record<string, number> = {};
  failedTurns = 0;
  unexpectedCloses = 0;
  abandoned = 0;
  framesSent = 0;
  running = false;
  deadline = Number.POSITIVE_INFINITY;
  private lags: number[] = [];
  private lagMax = 0;
  private drainedResolve: (() => void) | undefined;

  constructor(readonly config: LoadConfig) {
    this.utterances = loadUtterances(config.fixtures);
  }

  noteLag(ms: number): void {
    if (ms > this.lagMax) this.lagMax = ms;
    if (this.lags.length < 200_000) this.lags.push(ms);
  }

  countError(code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  maybeDrained(): void {
    if (
      performance.now() >= this.deadline &&
      !this.sessions.some((s) => s.busy || s.state === 'streaming')
    )
      this.drainedResolve?.();
  }

  async execute(
    send: (m: IpcMessage) => void,
    go: Promise<void> = Promise.resolve(),
  ): Promise<LoadResult> {
    const { config } = this;
    const probe = new ProcessProbe();
    const setupStarted = performance.now();
    let setupFailures = 0;
    for (let i = 0; i < config.sessions; i++) this.sessions.push(new Session(i, this));
    // Setup: bounded parallelism and a bounded total time.
    let next = 0;
    const setupDeadline = setupStarted + (config.setupTimeoutMs ?? 60_000);
    const worker = async () => {
      while (next < this.sessions.length && performance.now() < setupDeadline) {
        const session = this.sessions[next++] as Session;
        try {
          await session.open(config.keys[session.index % config.keys.length] as string);
        } catch (error) {
          setupFailures++;
          if (setupFailures <= 3)
            console.error(`[loadgen] session ${session.index}: ${(error as Error).message}`);
          session.state = 'finished';
          session.close();
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(config.setupConcurrency ?? 32, config.sessions) }, worker),
    );
    const setupMs = performance.now() - setupStarted;
    // Warm the relay (JIT, provider connections) like a relay that has been serving for a while.
    for (let i = 0; i < (config.warmupTurns ?? 3); i++) {
      const warm = new Session(-1 - i, this);
      try {
        await warm.open(config.keys[0] as string);
        await warm.warmTurn();
      } catch (error) {
        console.error(`[loadgen] warm-up: ${(error as Error).message}`);
      } finally {
        warm.close();
      }
    }
    const live = this.sessions.filter((s) => s.state === 'waiting');
    send({ type: 'connected', connected: live.length, setupFailures, setupMs });
    await go; // the parent measures the relay with N idle sessions, then starts its windows

    // Streaming window.
    this.running = true;
    const t0 = performance.now();
    this.deadline = t0 + config.durationMs;
    live.forEach((s, i) => (s.nextStartAt = t0 + (config.spreadMs * i) / Math.max(1, live.length)));
    probe.start();
    send({ type: 'steady' });
    const ticker = setInterval(() => {
      const now = performance.now();
      for (const s of live) s.tick(now);
    }, 5);
    const drained = new Promise<void>((resolve) => (this.drainedResolve = resolve));
    const probing = config.probeUpstreamUrl
      ? this.probe(config.probeUpstreamUrl)
      : Promise.resolve([]);
    await new Promise((r) => setTimeout(r, config.durationMs));
    for (const s of live) s.abandon();
    this.maybeDrained();
    const drainTimer = new Promise<void>((r) => setTimeout(r, config.drainMs));
    await Promise.race([drained, drainTimer]);
    clearInterval(ticker);
    const probeExcessMs = await probing;
    const windowMs = performance.now() - t0;
    const loadgen = probe.stop();
    send({ type: 'drained' });
    this.running = false;
    const stillBusy = live.filter((s) => s.busy).length;
    this.failedTurns += stillBusy;
    if (stillBusy) this.countError('turn_unfinished_at_drain');
    for (const s of this.sessions) s.close();
    const sortedLags = this.lags.sort((a, b) => a - b);
    return {
      sessions: config.sessions,
      connected: live.length,
      setupFailures,
      setupMs,
      turns: this.turns,
      failedTurns: this.failedTurns,
      errors: this.errors,
      unexpectedCloses: this.unexpectedCloses,
      abandoned: this.abandoned,
      framesSent: this.framesSent,
      sendLag: { p99: sortedLags[Math.floor(sortedLags.length * 0.99)] ?? 0, max: this.lagMax },
      windowMs,
      loadgen,
      probeExcessMs,
    };
  }

  /** Direct-to-upstream turns, one after another with a pause, until the window's deadline. */
  private async probe(upstreamUrl: string): Promise<number[]> {
    const client = upstreamClient(upstreamUrl);
    const pcm = (this.utterances[0] as Utterance).pcm;
    const excess: number[] = [];
    while (performance.now() < this.deadline) {
      try {
        const timing = await directStreaming(client, pcm);
        excess.push(timing.firstAudioMs - this.config.scriptedMs);
      } catch (error) {
        // Not the relay's error: reported, not counted against it.
        console.error(`[loadgen] probe turn failed: ${(error as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return excess;
  }
}

/** Runs one level in this process (used by the child entry point below and by tests). */
export async function runLoad(
  config: LoadConfig,
  send: (m: IpcMessage) => void = () => undefined,
  go?: Promise<void>,
): Promise<LoadResult> {
  return new Run(config).execute(send, go);
}

if (process.send && process.argv.includes('--child')) {
  let goResolve: () => void = () => undefined;
  const go = new Promise<void>((resolve) => (goResolve = resolve));
  process.on('message', (m: IpcMessage) => {
    if (m.type === 'go') goResolve();
    if (m.type !== 'run') return;
    const send = (msg: IpcMessage) => process.send?.(msg);
    runLoad(m.config as LoadConfig, send, go)
      .then((result) => send({ type: 'result', result }))
      .catch((error: unknown) =>
        send({ type: 'failed', error: String((error as Error)?.stack ?? error) }),
      )
      .finally(() => setTimeout(() => process.exit(0), 200));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'alive' });
}
