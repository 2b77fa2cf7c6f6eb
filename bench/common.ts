/**
 * Shared by every benchmark process: the scripted upstream, the reply, fixtures, statistics and
 * the small IPC conventions. No side effects on import.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import {
  monitorEventLoopDelay,
  PerformanceObserver,
  type IntervalHistogram,
} from 'node:perf_hooks';

export const REPO_ROOT = resolve(import.meta.dirname, '..');
export const FIXTURES = resolve(REPO_ROOT, '../shared/fixtures/audio');
export const ORIGIN = 'http://bench.test';

/** The scripted upstream of every relay benchmark (issue 9). */
export const LATENCY = {
  sttMs: 300,
  llmTtftMs: 300,
  tokensPerSecond: 40,
  ttsTtfbMs: 150,
  ttsRealtime: true,
} as const;

/**
 * The assistant's reply: a short first sentence (what a voice bot is told to do), then two more.
 * ~30 tokens, so the full reply takes 300 ms + 29 × 25 ms to stream.
 */
export const REPLY =
  "We're open from nine to six today. On Saturdays we open at ten and close at four, and on Sundays we're closed. Is there anything else I can help you with?";

/** 16 kHz speech fixtures the load generator cycles through (5–13 s each). */
export const SPEECH_FIXTURES = ['hours', 'book', 'weather', 'stop', 'two-turns', 'barge-in'];

/** Reads the PCM of a 16-bit WAV (first `data` chunk). */
export function readWavPcm(path: string): {
  sampleRate: number;
  channels: number;
  pcm: Uint8Array;
} {
  const buf = readFileSync(path);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(`${path} is not a WAV file`);
  let offset = 12;
  let sampleRate = 0;
  let channels = 0;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(offset + 10);
      sampleRate = buf.readUInt32LE(offset + 12);
    } else if (id === 'data') {
      const len = Math.min(size, buf.length - offset - 8) & ~1;
      return {
        sampleRate,
        channels,
        pcm: new Uint8Array(buf.buffer, buf.byteOffset + offset + 8, len),
      };
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error(`${path} has no data chunk`);
}

/** Splits like the fake upstream does: words with their leading whitespace. */
export function splitWords(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

/** Bytes of 24 kHz PCM16 the fake upstream's default tone has for `text` (see `synthesizeTone`). */
export function toneBytes(text: string): number {
  const totalMs = Math.min(20_000, Math.max(300, text.trim().length * 60));
  return Math.max(1, Math.round((totalMs / 1000) * 24_000)) * 2;
}

/**
 * The upstream's scripted share of time-to-first-audio: STT + LLM TTFT + the tokens until the
 * relay's chunker can cut the first sentence + TTS TTFB. `chunkerIndex` is the 0-based index of the
 * streamed word after which the chunker emits its first chunk (it needs one word of lookahead).
 */
export function scriptedFirstAudio(chunkerIndex: number): {
  totalMs: number;
  firstSentenceTokenMs: number;
} {
  const firstSentenceTokenMs = (chunkerIndex * 1000) / LATENCY.tokensPerSecond;
  return {
    totalMs: LATENCY.sttMs + LATENCY.llmTtftMs + firstSentenceTokenMs + LATENCY.ttsTtfbMs,
    firstSentenceTokenMs,
  };
}

/** Index of the word after which `SentenceChunker` emits the first chunk of `text`. */
export function firstChunkIndex(
  Chunker: new () => { push(delta: string): string[]; flush(): string[] },
  text = REPLY,
): number {
  const chunker = new Chunker();
  const words = splitWords(text);
  for (let i = 0; i < words.length; i++) if (chunker.push(words[i] as string).length > 0) return i;
  return words.length - 1;
}

const HIGH = 1_000_000_000; // < 2^31 ms, so a limit that is a timer delay stays a valid one

/**
 * Limits that would stop a load test (per key/IP rates, concurrency caps, quotas, idle/session
 * timers): any numeric limit whose name says so is raised to {@link HIGH}. Size limits (frame, JSON,
 * utterance, text) keep their production defaults.
 */
export function benchmarkLimits(defaults: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(defaults)) {
    if (typeof value === 'number') {
      if (ABUSE_LIMIT.test(name)) out[name] = HIGH;
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      // a nested group (e.g. `rateLimits: {…}`) is replaced whole, so copy it with its abuse limits raised
      const nested = benchmarkLimits(value as Record<string, unknown>);
      if (Object.keys(nested).length > 0)
        out[name] = { ...(value as Record<string, unknown>), ...nested };
    }
  }
  return out;
}
const ABUSE_LIMIT =
  /per(second|minute|hour|day|key|ip|origin)|concurren|quota|rate|sessions|idle|session(ms|length|duration)|minutes|conversations|burst|^max(requests|tokens)/i;

// ───────────────────────────── statistics ─────────────────────────────

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    mean: n ? sorted.reduce((a, b) => a + b, 0) / n : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: n ? (sorted[n - 1] as number) : Number.NaN,
    min: n ? (sorted[0] as number) : Number.NaN,
  };
}

export const median = (values: readonly number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** The median of each of `keys` over `runs` (the figures of alternating A/B rounds). */
export function medianFigures<Run, K extends keyof Run & string>(
  runs: readonly Run[],
  keys: readonly K[],
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = median(runs.map((r) => Number(r[k])));
  return out;
}

/** The 1, 5 and 15 minute load averages, as printed in the reports. */
export const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

// ───────────────────────────── process probes ─────────────────────────────

export interface ProcessStats {
  wallMs: number;
  /** user + system CPU in the window, ms */
  cpuMs: number;
  /** cpuMs / wallMs (1 = one core fully busy) */
  cpuCores: number;
  rssMb: number;
  rssMaxMb: number;
  heapUsedMb: number;
  /** process.memoryUsage() at the sample where RSS peaked (MB): what the peak was made of */
  atPeak?: { heapTotalMb: number; heapUsedMb: number; externalMb: number; arrayBuffersMb: number };
  /** event-loop delay in the window (monitorEventLoopDelay, ms) */
  eld: { p50: number; p99: number; max: number; mean: number };
  /** garbage collection in the window */
  gc: { count: number; ms: number; majorCount: number; majorMs: number };
}

const ELD_RESOLUTION_MS = 5;

/**
 * CPU, RSS, event-loop delay and GC of the current process over a window. `start()` begins a
 * window, `stop()` ends it and returns the figures. RSS is sampled every 250 ms for the maximum.
 */
export class ProcessProbe {
  private readonly eld: IntervalHistogram = monitorEventLoopDelay({
    resolution: ELD_RESOLUTION_MS,
  });
  private cpu = process.cpuUsage();
  private startedAt = performance.now();
  private rssMax = 0;
  private atPeak: NodeJS.MemoryUsage | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private gcCount = 0;
  private gcMs = 0;
  private majorCount = 0;
  private majorMs = 0;
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.gcCount++;
        this.gcMs += entry.duration;
        // detail.kind: perf_hooks.constants NODE_PERFORMANCE_GC_MINOR 1, _MAJOR 4, _INCREMENTAL 8, _WEAKCB 16
        const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
        if (kind === 4) {
          this.majorCount++;
          this.majorMs += entry.duration;
        }
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  start(): void {
    this.eld.reset();
    this.eld.enable();
    this.cpu = process.cpuUsage();
    this.startedAt = performance.now();
    this.atPeak = process.memoryUsage();
    this.rssMax = this.atPeak.rss;
    this.gcCount = this.gcMs = this.majorCount = this.majorMs = 0;
    clearInterval(this.sampler);
    this.sampler = setInterval(() => this.sampleMemory(process.memoryUsage.rss()), 250);
    this.sampler.unref();
  }

  /** Keeps the breakdown of the highest RSS seen (the full `memoryUsage()` only when RSS is a new high: it walks the heap's spaces). */
  private sampleMemory(rss: number): void {
    if (rss <= this.rssMax) return;
    this.atPeak = process.memoryUsage();
    this.rssMax = Math.max(rss, this.atPeak.rss);
  }

  stop(): ProcessStats {
    clearInterval(this.sampler);
    this.eld.disable();
    const cpu = process.cpuUsage(this.cpu);
    const wallMs = performance.now() - this.startedAt;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const mem = process.memoryUsage();
    this.sampleMemory(mem.rss);
    const peak = this.atPeak ?? mem;
    const mb = (bytes: number) => bytes / 2 ** 20;
    // The histogram records each sampling interval whole (resolution included): keep the excess.
    const ms = (ns: number) =>
      Number.isFinite(ns) ? Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS) : 0;
    return {
      wallMs,
      cpuMs,
      cpuCores: cpuMs / wallMs,
      rssMb: mem.rss / 2 ** 20,
      rssMaxMb: this.rssMax / 2 ** 20,
      heapUsedMb: mem.heapUsed / 2 ** 20,
      atPeak: {
        heapTotalMb: mb(peak.heapTotal),
        heapUsedMb: mb(peak.heapUsed),
        externalMb: mb(peak.external),
        arrayBuffersMb: mb(peak.arrayBuffers),
      },
      eld: {
        p50: ms(this.eld.percentile(50)),
        p99: ms(this.eld.percentile(99)),
        max: ms(this.eld.max),
        mean: ms(this.eld.mean),
      },
      gc: {
        count: this.gcCount,
        ms: this.gcMs,
        majorCount: this.majorCount,
        majorMs: this.majorMs,
      },
    };
  }
}

/** Busy CPU time of the whole machine so far (Linux `/proc/stat`, ms summed over cores), or undefined. */
export function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...fields] = line.trim().split(/\s+/);
    const v = fields.map(Number);
    // user nice system idle iowait irq softirq steal …; USER_HZ is 100 on Linux
    const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return busy * 10;
  } catch {
    return undefined;
  }
}

/** Everything a benchmark child process receives or sends over IPC carries a `type`. */
export interface IpcMessage {
  type: string;
  [key: string]: unknown;
}

/** Waits for the next IPC message of `type` from a child (or the parent, with `process`). */
export function nextMessage<T extends IpcMessage>(
  emitter: {
    on(event: 'message', fn: (m: unknown) => void): unknown;
    off(event: 'message', fn: (m: unknown) => void): unknown;
  },
  type: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      emitter.off('message', onMessage);
      reject(new Error(`no '${type}' message within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref(); // a wait nobody needs any more must not keep the process alive
    const onMessage = (m: unknown) => {
      if (typeof m !== 'object' || m === null || (m as IpcMessage).type !== type) return;
      clearTimeout(timer);
      emitter.off('message', onMessage);
      resolvePromise(m as T);
    };
    emitter.on('message', onMessage);
  });
}
