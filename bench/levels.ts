/**
 * One load level = three processes on loopback: the fake upstream, the relay, the load generator
 * (all forked from here, so the orchestrator itself does no measured work). Returns a summary with
 * the relay's CPU, RSS, event-loop delay and GC over the streaming window.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, setPriority } from 'node:os';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { buildSync } from 'esbuild';
import { SentenceChunker } from '@voice-bot/relay';
import {
  REPLY,
  REPO_ROOT,
  firstChunkIndex,
  machineBusyMs,
  nextMessage,
  scriptedFirstAudio,
  summarize,
  type IpcMessage,
  type ProcessStats,
  type Summary,
} from './common.js';
import type { LoadConfig, LoadResult } from './loadgen.js';

const children = new Set<ChildProcess>();
/** This process's compiled children (per process: two benchmark runs must not overwrite each other's). */
const COMPILED_DIR = join(REPO_ROOT, 'test-output/bench-js', String(process.pid));
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(COMPILED_DIR, { recursive: true, force: true });
});

let niceness: number | undefined;
/**
 * Runs the benchmark's processes at this niceness (e.g. −10) so that other work on a shared machine
 * disturbs the figures less. Needs the privilege to lower niceness; silently ignored without it.
 */
export function setBenchNiceness(value: number | undefined): void {
  niceness = value;
}

const compiled = new Map<string, string>();

/**
 * `bench/<file>` and the bench modules it imports as one plain JavaScript module (packages stay
 * imports), so the child runs on plain Node as `voicebot-relay serve` does. Under tsx every process
 * would also carry tsx's module-loader thread: ≈ 40 MB more RSS in the measured relay.
 */
export function compiledBench(file: string): string {
  let outfile = compiled.get(file);
  if (outfile) return outfile;
  outfile = join(COMPILED_DIR, file.replace(/\.ts$/, '.mjs'));
  buildSync({
    entryPoints: [join(REPO_ROOT, 'bench', file)],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The bundle lives elsewhere; the modules find the repository through this.
    define: { 'import.meta.dirname': JSON.stringify(join(REPO_ROOT, 'bench')) },
    logLevel: 'error',
  });
  compiled.set(file, outfile);
  return outfile;
}

/**
 * Forks `bench/<file>` (compiled to plain JavaScript), IPC on, stdout/stderr shared. With `cpuList`
 * (e.g. `'1'` or `'0-2'`) the child and every thread it starts run only on those CPUs: Node is
 * started through `taskset`, which keeps the IPC channel as it execs.
 */
export function forkBench(
  file: string,
  args: string[] = [],
  execArgv: string[] = [],
  cpuList?: string,
): ChildProcess {
  const child = fork(compiledBench(file), args, {
    cwd: REPO_ROOT,
    ...(cpuList
      ? { execPath: 'taskset', execArgv: ['-c', cpuList, process.execPath, ...execArgv] }
      : { execArgv }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (niceness !== undefined && child.pid !== undefined) {
    try {
      setPriority(child.pid, niceness);
    } catch {
      // not permitted: run at normal priority
    }
  }
  return child;
}

/** Asks a child to exit, kills it if it has not within `ms`. */
export async function stopChild(child: ChildProcess, ms = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    child.send({ type: 'exit' });
  } catch {
    // IPC already closed
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

/**
 * With `pinRelay` (or BENCH_PIN_RELAY=1): the relay on the machine's last CPU, the fake upstream and
 * the load generator on the others, so the relay has a core of its own, as it would beside a remote
 * provider, instead of taking turns with the harness. Returns the CPU lists, or undefined.
 */
function cpuPlan(options: LevelOptions): { relay: string; harness: string } | undefined {
  if (!(options.pinRelay ?? process.env.BENCH_PIN_RELAY === '1')) return undefined;
  const last = cpus().length - 1;
  if (last < 1) throw new Error('pinning the relay needs at least 2 CPUs');
  if ((options.relayWorkers ?? 1) > 1)
    throw new Error('pinning puts the relay on one CPU: it does not go with a relay cluster');
  return { relay: String(last), harness: last === 1 ? '0' : `0-${last - 1}` };
}

/** Starts the fake upstream in its own process. */
export async function startUpstream(
  reply = REPLY,
  cpuList?: string,
): Promise<{ child: ChildProcess; url: string }> {
  const child = forkBench('upstream-server.ts', [JSON.stringify({ reply })], [], cpuList);
  const ready = await nextMessage<IpcMessage & { url: string }>(child, 'ready', 30_000);
  return { child, url: ready.url };
}

/** A load level: the load generator's settings (warm-up turns default to 3 here), and the level's own. */
export interface LevelOptions extends Pick<
  LoadConfig,
  | 'sessions'
  | 'durationMs'
  | 'drainMs'
  | 'spreadMs'
  | 'frameMs'
  | 'thinkMs'
  | 'fixtures'
  | 'warmupTurns'
> {
  reply?: string;
  /** One client key per this many sessions. */
  sessionsPerKey?: number;
  /** Wait up to this long before the level for other work on the machine to stop (0 = don't). */
  waitQuietMs?: number;
  /** Relay worker processes (`serve --workers`); 1 = one relay process, no cluster. */
  relayWorkers?: number;
  /** The relay on a CPU of its own, the harness on the others (see `pinRelay`). */
  pinRelay?: boolean;
  /** The relay process: the relay (`relay-server.ts`, default) or the minimal reference relay (`reference-relay.ts`). */
  relayServer?: 'relay-server.ts' | 'reference-relay.ts';
  /** More settings for the relay process (`relay-server.ts`'s config, e.g. `redisUrl`). */
  relayConfig?: Record<string, unknown>;
  /** Called as the streaming window starts and once it has drained (e.g. to sample another process). */
  onWindow?: { start(): void; end(): void };
}

/**
 * On a shared machine, waits (at most `maxMs`) until other work uses less than `cores` of CPU,
 * sampled over 2 s. Returns the last sample (cores busy), or undefined where /proc/stat is missing.
 */
export async function waitForQuiet(
  maxMs: number,
  cores = 0.3,
  log: (line: string) => void = () => undefined,
): Promise<number | undefined> {
  const deadline = performance.now() + maxMs;
  let warned = false;
  for (;;) {
    const b0 = machineBusyMs();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const b1 = machineBusyMs();
    if (b0 === undefined || b1 === undefined) return undefined;
    const busy = (b1 - b0) / (performance.now() - t0);
    if (busy < cores || performance.now() >= deadline) return busy;
    if (!warned)
      log(`  waiting for the machine to quieten down (${busy.toFixed(2)} cores busy elsewhere)…`);
    warned = true;
  }
}

export interface LevelSummary {
  sessions: number;
  connected: number;
  setupFailures: number;
  setupMs: number;
  windowMs: number;
  frameMs: number;
  turns: number;
  failedTurns: number;
  errors: Record<string, number>;
  unexpectedCloses: number;
  abandoned: number;
  framesSent: number;
  scriptedMs: number;
  latency: Summary;
  added: Summary;
  /** where the added time went (per-turn, from the relay's `done.metrics`) */
  breakdown: { wire: Summary; upstreamExcess: Summary; relayBetween: Summary };
  /**
   * The same upstream under the same load without the relay: a direct-SDK turn at a time in the
   * load generator's process, time to first audio minus the script (see LoadConfig.probeUpstreamUrl).
   */
  probeExcess: Summary;
  relayMetrics: { stt: Summary; llmTtft: Summary; ttsTtfb: Summary; firstAudio: Summary };
  uplinkLostTurns: number;
  uplinkLostBytes: number;
  downlinkShortTurns: number;
  downlinkLate: Summary;
  relay: ProcessStats;
  relayBaselineRssMb: number;
  relayIdleRssMb: number;
  rssPerSessionKb: number;
  idleRssPerSessionKb: number;
  cpuMsPerSessionSecond: number;
  upstream: ProcessStats;
  loadgen: ProcessStats;
  sendLag: { p99: number; max: number };
  lostFrames: boolean;
  /** whole-machine busy CPU over the window (cores), and what other processes used of it */
  machineCpuCores?: number;
  otherCpuCores?: number;
  /** TCP connections the relay opened to the upstream during the window */
  upstreamConnects?: number | undefined;
  /** relay worker processes (1 = no cluster) */
  relayWorkers?: number | undefined;
  /** what the relay reported about its Redis state (`relayConfig.redisUrl`), see `relay-server.ts` */
  redis?: RelayRedisStats | undefined;
  /** the processes ran as plain JavaScript (`compiledBench`); absent in results from before, when they ran under tsx */
  plainNode?: boolean | undefined;
  /** the CPU the relay was pinned to (the harness had the others), when it was */
  relayCpuPinned?: number | undefined;
  /** other work on the machine just before the level (cores), when waiting for quiet */
  backgroundCpuCores?: number | undefined;
  pass: boolean;
  limits: string[];
}

/** Round trips of a relay on Redis state (`RedisState.redisRoundTrips()`), and Redis's own count of commands. */
export interface RelayRedisStats {
  /** from `ready` to the window: every session opened, the warm-up turns, and the background sync */
  setupRoundTrips: number;
  setupMs: number;
  /** during the streaming window (and its drain) */
  windowRoundTrips: number;
  windowMs: number;
  /** with no session open, before `ready`: the background (usage sync, slot heartbeats) per second */
  idleRoundTripsPerSecond: number;
  /** `INFO commandstats` over the window: calls per command (the stats connection's own excluded) */
  commands: Record<string, number>;
}

/** The scripted upstream share of time to first audio for `reply`. */
export function scriptedFor(reply = REPLY): {
  totalMs: number;
  firstSentenceTokenMs: number;
  chunkerIndex: number;
} {
  const chunkerIndex = firstChunkIndex(SentenceChunker, reply);
  return { ...scriptedFirstAudio(chunkerIndex), chunkerIndex };
}

export async function runLevel(
  options: LevelOptions,
  log: (line: string) => void = () => undefined,
): Promise<LevelSummary> {
  const scripted = scriptedFor(options.reply);
  const backgroundCpuCores = options.waitQuietMs
    ? await waitForQuiet(options.waitQuietMs, 0.3, log)
    : undefined;
  const pinned = cpuPlan(options);
  const upstream = await startUpstream(options.reply, pinned?.harness);
  // BENCH_RELAY_NODE_OPTIONS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the relay process.
  const relayFlags = (process.env.BENCH_RELAY_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const relay = forkBench(
    options.relayServer ?? 'relay-server.ts',
    [
      JSON.stringify({
        upstreamUrl: upstream.url,
        keys: Math.ceil(options.sessions / (options.sessionsPerKey ?? 50)),
        workers: options.relayWorkers ?? 1,
        ...options.relayConfig,
      }),
    ],
    ['--expose-gc', ...relayFlags],
    pinned?.relay,
  );
  const loadgen = forkBench('loadgen.ts', ['--child'], [], pinned?.harness);
  try {
    const [relayReady] = await Promise.all([
      nextMessage<IpcMessage & { url: string; keys: string[]; baselineRssMb: number }>(
        relay,
        'ready',
        30_000,
      ),
      nextMessage(loadgen, 'alive', 30_000),
    ]);
    const setupTimeoutMs = 20_000 + options.sessions * 30;
    const config: LoadConfig = {
      relayUrl: relayReady.url,
      keys: relayReady.keys,
      sessions: options.sessions,
      durationMs: options.durationMs,
      drainMs: options.drainMs,
      spreadMs: options.spreadMs,
      frameMs: options.frameMs,
      thinkMs: options.thinkMs,
      scriptedMs: scripted.totalMs,
      setupTimeoutMs,
      probeUpstreamUrl: upstream.url,
      warmupTurns: options.warmupTurns ?? 3,
      ...(options.fixtures ? { fixtures: options.fixtures } : {}),
    };
    const bound = setupTimeoutMs + options.durationMs + options.drainMs + 30_000;
    const connectedP = nextMessage<IpcMessage & { connected: number; setupMs: number }>(
      loadgen,
      'connected',
      setupTimeoutMs + 10_000,
    );
    const drainedP = nextMessage(loadgen, 'drained', bound);
    const resultP = Promise.race([
      nextMessage<IpcMessage & { result: LoadResult }>(loadgen, 'result', bound + 10_000),
      nextMessage<IpcMessage & { error: string }>(loadgen, 'failed', bound + 10_000).then((m) => {
        throw new Error(`load generator failed: ${m.error}`);
      }),
    ]);
    resultP.catch(() => undefined);
    drainedP.catch(() => undefined);
    loadgen.send({ type: 'run', config });
    const connected = await connectedP;
    log(
      `  ${options.sessions} sessions: ${connected.connected} open in ${(connected.setupMs / 1000).toFixed(1)} s, streaming ${options.durationMs / 1000} s…`,
    );
    relay.send({ type: 'rss', gc: true });
    const idle = await nextMessage<IpcMessage & { rssMb: number }>(relay, 'rss', 30_000);
    relay.send({ type: 'window-start' });
    upstream.child.send({ type: 'window-start' });
    options.onWindow?.start();
    loadgen.send({ type: 'go' });
    const busy0 = machineBusyMs();
    const t0 = performance.now();
    await drainedP;
    options.onWindow?.end();
    const busy1 = machineBusyMs();
    const machineCores =
      busy0 !== undefined && busy1 !== undefined
        ? (busy1 - busy0) / (performance.now() - t0)
        : undefined;
    relay.send({ type: 'window-end' });
    upstream.child.send({ type: 'stats' });
    const [relayStats, upstreamStats, result] = await Promise.all([
      // a saturated relay answers late: its IPC waits behind the backlog in its event loop
      nextMessage<IpcMessage & { stats: ProcessStats; connects?: number; redis?: RelayRedisStats }>(
        relay,
        'stats',
        60_000,
      ),
      nextMessage<IpcMessage & { stats: ProcessStats }>(upstream.child, 'stats', 60_000),
      resultP,
    ]);
    const summary = summarizeLevel(
      options,
      scripted.totalMs,
      scripted.firstSentenceTokenMs,
      result.result,
      relayStats.stats,
      upstreamStats.stats,
      relayReady.baselineRssMb,
      idle.rssMb,
    );
    summary.backgroundCpuCores = backgroundCpuCores;
    summary.relayWorkers = Number(process.env.BENCH_RELAY_WORKERS ?? options.relayWorkers ?? 1);
    summary.relayCpuPinned = pinned ? Number(pinned.relay) : undefined;
    summary.plainNode = true;
    summary.upstreamConnects = relayStats.connects;
    if (relayStats.redis) summary.redis = relayStats.redis;
    if (machineCores !== undefined) {
      summary.machineCpuCores = machineCores;
      summary.otherCpuCores = Math.max(
        0,
        machineCores -
          relayStats.stats.cpuCores -
          upstreamStats.stats.cpuCores -
          result.result.loadgen.cpuCores,
      );
      summary.limits = limitingFactors(summary);
    }
    return summary;
  } finally {
    await Promise.all([stopChild(loadgen), stopChild(relay), stopChild(upstream.child)]);
  }
}

function summarizeLevel(
  options: LevelOptions,
  scriptedMs: number,
  tokenMs: number,
  r: LoadResult,
  relay: ProcessStats,
  upstream: ProcessStats,
  baselineRssMb: number,
  idleRssMb: number,
): LevelSummary {
  const turns = r.turns;
  const m = (t: (typeof turns)[number], k: string) => t.metrics[k] ?? Number.NaN;
  const uplinkLost = turns.filter((t) => t.uplinkReceived !== t.uplinkSent);
  const downlinkShort = turns.filter(
    (t) => t.downlinkReceived < t.downlinkExpected || t.downlinkExpected === 0,
  );
  // BENCH_DUMP_TURNS=file.json keeps every turn record (metrics per stage) for looking at the tail.
  if (process.env.BENCH_DUMP_TURNS)
    writeFileSync(process.env.BENCH_DUMP_TURNS, JSON.stringify(turns));
  const added = summarize(turns.map((t) => t.addedMs));
  const lostFrames = uplinkLost.length > 0 || downlinkShort.length > 0;
  const n = r.connected || options.sessions;
  const summary: LevelSummary = {
    sessions: options.sessions,
    connected: r.connected,
    setupFailures: r.setupFailures,
    setupMs: r.setupMs,
    windowMs: r.windowMs,
    frameMs: options.frameMs,
    turns: turns.length,
    failedTurns: r.failedTurns,
    errors: r.errors,
    unexpectedCloses: r.unexpectedCloses,
    abandoned: r.abandoned,
    framesSent: r.framesSent,
    scriptedMs,
    latency: summarize(turns.map((t) => t.latencyMs)),
    added,
    probeExcess: summarize(r.probeExcessMs ?? []),
    breakdown: {
      wire: summarize(turns.map((t) => t.latencyMs - m(t, 'first_audio_ms'))),
      upstreamExcess: summarize(
        turns.map(
          (t) => m(t, 'stt_ms') - 300 + (m(t, 'llm_ttft_ms') - 300) + (m(t, 'tts_ttfb_ms') - 150),
        ),
      ),
      relayBetween: summarize(
        turns.map(
          (t) =>
            m(t, 'first_audio_ms') -
            m(t, 'stt_ms') -
            m(t, 'llm_ttft_ms') -
            m(t, 'tts_ttfb_ms') -
            tokenMs,
        ),
      ),
    },
    relayMetrics: {
      stt: summarize(turns.map((t) => m(t, 'stt_ms'))),
      llmTtft: summarize(turns.map((t) => m(t, 'llm_ttft_ms'))),
      ttsTtfb: summarize(turns.map((t) => m(t, 'tts_ttfb_ms'))),
      firstAudio: summarize(turns.map((t) => m(t, 'first_audio_ms'))),
    },
    uplinkLostTurns: uplinkLost.length,
    uplinkLostBytes: uplinkLost.reduce((s, t) => s + Math.abs(t.uplinkSent - t.uplinkReceived), 0),
    downlinkShortTurns: downlinkShort.length,
    downlinkLate: summarize(turns.map((t) => t.maxLateMs)),
    relay,
    relayBaselineRssMb: baselineRssMb,
    relayIdleRssMb: idleRssMb,
    rssPerSessionKb: ((relay.rssMaxMb - baselineRssMb) * 1024) / n,
    idleRssPerSessionKb: ((idleRssMb - baselineRssMb) * 1024) / n,
    cpuMsPerSessionSecond: relay.cpuMs / (relay.wallMs / 1000) / n,
    upstream,
    loadgen: r.loadgen,
    sendLag: r.sendLag,
    lostFrames,
    pass: false,
    limits: [],
  };
  summary.pass =
    turns.length > 0 &&
    r.setupFailures === 0 &&
    r.failedTurns === 0 &&
    r.unexpectedCloses === 0 &&
    Object.keys(r.errors).length === 0 &&
    !lostFrames &&
    added.p99 <= 50;
  summary.limits = limitingFactors(summary);
  return summary;
}

/** What bounds the level's figures, from the three processes' CPU, event-loop delay and GC. */
export function limitingFactors(s: LevelSummary): string[] {
  const out: string[] = [];
  const gcShare = s.relay.gc.ms / s.relay.wallMs;
  const workers = s.relayWorkers ?? 1;
  if (workers > 1) {
    if (s.relay.cpuCores / workers > 0.85)
      out.push(`relay CPU (${s.relay.cpuCores.toFixed(2)} cores over ${workers} workers)`);
  } else if (s.relay.cpuCores > 0.85)
    out.push(`relay CPU (${pct(s.relay.cpuCores)} of its one JS thread)`);
  if (s.relay.eld.p99 > 20)
    out.push(
      `relay event loop (delay p99 ${s.relay.eld.p99.toFixed(0)} ms${workers > 1 ? ', worst worker' : ''})`,
    );
  if (gcShare > 0.05) out.push(`relay GC (${pct(gcShare)} of wall time)`);
  const total = s.machineCpuCores ?? s.relay.cpuCores + s.upstream.cpuCores + s.loadgen.cpuCores;
  if (total > 1.7) out.push(`machine CPU (${total.toFixed(2)} of ${cpus().length} cores busy)`);
  if ((s.otherCpuCores ?? 0) > 0.25)
    out.push(
      `other processes on the machine (${(s.otherCpuCores ?? 0).toFixed(2)} cores busy outside the benchmark)`,
    );
  if (s.upstream.cpuCores > 0.85 || s.upstream.eld.p99 > 20)
    out.push(
      `fake upstream (${pct(s.upstream.cpuCores)} CPU, delay p99 ${s.upstream.eld.p99.toFixed(0)} ms)`,
    );
  if (s.loadgen.cpuCores > 0.85 || s.loadgen.eld.p99 > 20 || s.sendLag.p99 > s.frameMs)
    out.push(
      `load generator (${pct(s.loadgen.cpuCores)} CPU, delay p99 ${s.loadgen.eld.p99.toFixed(0)} ms)`,
    );
  if (out.length === 0)
    out.push(
      `nothing saturated: timer granularity and loopback I/O (relay ${pct(s.relay.cpuCores)} CPU)`,
    );
  return out;
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
