/**
 * Child process: the relay under test, built from `packages/relay/dist` (`createRelay`), on
 * 127.0.0.1, talking to the fake upstream given in argv[2] (JSON `{ upstreamUrl, keys }`).
 *
 * Production-like settings: info-level JSON logging (serialised, then discarded rather than written
 * to a terminal), one retry and a 30 s timeout per provider request. Every abuse limit (rate limits,
 * quotas, session caps) is raised far out of reach: the benchmark opens up to thousands of sessions
 * per minute from one IP, which the relay would rightly refuse in production.
 *
 * IPC: sends `{type:'ready', url, keys, baselineRssMb}`; `window-start` begins a measurement window,
 * `window-end` answers `{type:'stats', stats, connects}` (CPU, RSS, event-loop delay, GC of this process;
 * TCP connections it opened to the upstream in the window). With `trackSockets`, `sockets` answers
 * `{type:'sockets', open, queuedBytes, maxQueuedBytes}`: the bytes queued in this process towards
 * the accepted sockets (summed, and the largest one).
 *
 * With `redisUrl` in the config, the relay's shared state is Redis (`redisState`, wired as
 * `voicebot-relay serve` wires it for `REDIS_URL`), its database the data dir's SQLite file; `stats`
 * then carries `redis` (round trips before and during the window, and with no session open).
 *
 * With `workers` > 1 in the config (or BENCH_RELAY_WORKERS), this process is the primary of a relay
 * cluster (`startClusterPrimary`, as `voicebot-relay serve --workers N` runs it) and the workers
 * run this file too. The figures it reports are then the whole cluster's: CPU, RSS and GC summed
 * over the primary and the workers, event-loop delay of the worst process.
 */
import cluster from 'node:cluster';
import { subscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayOptions } from '@voice-bot/relay';
import {
  ORIGIN,
  ProcessProbe,
  benchmarkLimits,
  type IpcMessage,
  type ProcessStats,
} from './common.js';

const config = JSON.parse(process.argv[2] ?? '{}') as {
  upstreamUrl: string;
  keys?: number;
  workers?: number;
  /** limits set over the benchmark's (e.g. a shorter `slowClientTimeoutMs` for a smoke run) */
  limits?: Record<string, number>;
  /** `GET /metrics` without a token (the exposure section reads its counters) */
  metrics?: 'public';
  /** keep the accepted sockets, for the `sockets` IPC query (the relay's own queue per socket) */
  trackSockets?: boolean;
  /** shared state in this Redis (`redis://127.0.0.1:port`), as a fleet member runs it */
  redisUrl?: string;
};
// BENCH_RELAY_MODULE points at another build of the relay (e.g. a patched copy of dist/ inside the
// repository, so it resolves the same dependencies) for before/after comparisons.
const relayModule = (await import(
  process.env.BENCH_RELAY_MODULE ?? '@voice-bot/relay'
)) as typeof import('@voice-bot/relay');
const { DEFAULT_LIMITS, KeyStore, createLogger, createRelay } = relayModule;
const workers = Number(process.env.BENCH_RELAY_WORKERS ?? config.workers ?? 1);
const discard = () => createLogger({ level: 'info', destination: { write: () => true } as never });

if (workers > 1 && cluster.isPrimary) await runPrimary();
else await runRelay();

/** Keys for the load generator, in a fresh data directory (or in `keys`). */
async function makeKeys(
  dataDir: string,
  keys: import('@voice-bot/relay').KeyStore = KeyStore.inDataDir(dataDir),
): Promise<string[]> {
  const secrets: string[] = [];
  for (let i = 0; i < Math.max(1, config.keys ?? 1); i++)
    secrets.push((await keys.create({ origins: [ORIGIN], label: `bench ${i}` })).secret);
  return secrets;
}

async function runRelay(): Promise<void> {
  // Builds saved before cluster mode (relay-ab --before=…) have no workers.
  const worker = (relayModule as Partial<typeof relayModule>).isRelayClusterWorker?.() ?? false;
  const dataDir = worker
    ? (process.env.BENCH_DATA_DIR as string)
    : await mkdtemp(join(tmpdir(), 'voicebot-bench-'));
  // Redis state: the storage is opened here, as the CLI opens it, to hand its conversations and
  // usage ledger to the state.
  const storage = config.redisUrl ? await relayModule.openStorage({ dataDir }) : undefined;
  const redis =
    storage && config.redisUrl
      ? await relayModule.redisState({
          url: config.redisUrl,
          conversations: storage.conversations(DEFAULT_LIMITS.conversationTtlMs),
          ledger: storage.usage,
          logger: discard(),
        })
      : undefined;
  const keys = storage ? storage.keys : KeyStore.inDataDir(dataDir);
  const secrets = worker ? [] : await makeKeys(dataDir, keys);

  const stage = {
    baseURL: config.upstreamUrl,
    apiKey: 'sk-bench',
    timeoutMs: 30_000,
    maxRetries: 1,
  };
  const options: RelayOptions = {
    keys,
    // BENCH_RELAY_LOG=warn (or any level) writes the relay's log at that level to stderr instead.
    logger: process.env.BENCH_RELAY_LOG
      ? createLogger({ level: process.env.BENCH_RELAY_LOG, destination: process.stderr as never })
      : discard(),
    ...(worker ? { state: relayModule.clusterWorkerState() } : {}),
    ...(redis && storage ? { state: redis, storage } : {}),
    tokenSecret: 'bench-secret-bench-secret-bench-secret-0123456789',
    providers: {
      stt: { ...stage, model: 'whisper-1' },
      llm: { ...stage, model: 'gpt-4o-mini' },
      tts: { ...stage, model: 'gpt-4o-mini-tts', voice: 'alloy' },
    },
    limits: {
      ...benchmarkLimits(DEFAULT_LIMITS as unknown as Record<string, unknown>),
      ...config.limits,
    } as RelayOptions['limits'],
    ...(config.metrics ? { metrics: config.metrics } : {}),
  };
  const relay = createRelay(options);
  const { url } = await relay.listen(0, '127.0.0.1');
  const roundTrips = () => redis?.redisRoundTrips() ?? 0;
  let idleRoundTripsPerSecond = 0;
  if (redis) {
    // The background with no session open (usage sync, slot heartbeats), over 2 s.
    const r0 = roundTrips();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    idleRoundTripsPerSecond = ((roundTrips() - r0) * 1000) / (performance.now() - t0);
  }
  const readyAt = { roundTrips: roundTrips(), ms: performance.now() };
  let windowAt = readyAt;
  let setup = { roundTrips: 0, ms: 0 };

  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const probe = new ProcessProbe();
  probe.start();
  // Outgoing TCP connections (all of them go to the fake upstream): a pool that keeps its
  // connections reuses them; one that lets them idle out reconnects under load.
  let connects = 0;
  subscribe('net.client.socket', () => connects++);
  // Accepted sockets (HTTP and WebSocket clients): what each has queued in this process (`ws`'s
  // `bufferedAmount` is this socket's `writableLength` when nothing is being compressed).
  const accepted = new Set<Socket>();
  if (config.trackSockets) {
    subscribe('net.server.socket', (message) => {
      const socket = (message as { socket: Socket }).socket;
      accepted.add(socket);
      socket.once('close', () => accepted.delete(socket));
    });
  }

  process.on('message', (m: IpcMessage) => {
    if (worker && m.channel !== 'bench') return;
    if (m.type === 'window-start') {
      probe.start();
      connects = 0;
      windowAt = { roundTrips: roundTrips(), ms: performance.now() };
      setup = {
        roundTrips: windowAt.roundTrips - readyAt.roundTrips,
        ms: windowAt.ms - readyAt.ms,
      };
    } else if (m.type === 'window-end')
      process.send?.({
        type: 'stats',
        channel: 'bench',
        stats: probe.stop(),
        connects,
        ...(redis
          ? {
              redis: {
                setupRoundTrips: setup.roundTrips,
                setupMs: setup.ms,
                windowRoundTrips: roundTrips() - windowAt.roundTrips,
                windowMs: performance.now() - windowAt.ms,
                idleRoundTripsPerSecond,
                commands: {},
              },
            }
          : {}),
      });
    else if (m.type === 'sockets') {
      const queued = [...accepted].map((socket) => socket.writableLength);
      process.send?.({
        type: 'sockets',
        channel: 'bench',
        open: queued.length,
        queuedBytes: queued.reduce((a, b) => a + b, 0),
        maxQueuedBytes: Math.max(0, ...queued),
      });
    } else if (m.type === 'rss') {
      if (m.gc) gc?.();
      const mem = process.memoryUsage();
      process.send?.({
        type: 'rss',
        channel: 'bench',
        rssMb: mem.rss / 2 ** 20,
        heapUsedMb: mem.heapUsed / 2 ** 20,
        arrayBuffersMb: mem.arrayBuffers / 2 ** 20,
      });
    } else if (m.type === 'exit') {
      void shutdown();
    }
  });
  process.on('disconnect', () => void shutdown());

  let stopping = false;
  async function shutdown(): Promise<void> {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 3000);
    timer.unref();
    await relay.close().catch(() => undefined);
    await redis?.close().catch(() => undefined);
    await storage?.close().catch(() => undefined);
    if (!worker) await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  }

  if (!worker)
    process.send?.({
      type: 'ready',
      url,
      keys: secrets,
      limits: options.limits,
      baselineRssMb: process.memoryUsage.rss() / 2 ** 20,
    });
}

/** The cluster's primary: forks the workers, answers for all of them, sums their figures. */
async function runPrimary(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-bench-'));
  const secrets = await makeKeys(dataDir);
  const primary = relayModule.startClusterPrimary({
    workers,
    logger: discard(),
    conversationTtlMs: DEFAULT_LIMITS.conversationTtlMs,
    maxConversations: DEFAULT_LIMITS.maxConversations,
    env: { BENCH_DATA_DIR: dataDir },
    killAfterMs: 3000,
  });
  const { port } = await primary.listening;
  const probe = new ProcessProbe();
  probe.start();
  const live = () => Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
  /** Asks every worker, then answers with this process's figures and theirs. */
  const gather = (request: IpcMessage, type: string): Promise<IpcMessage[]> => {
    const targets = live();
    return new Promise((resolve) => {
      const replies: IpcMessage[] = [];
      const onMessage = (_w: unknown, m: IpcMessage) => {
        if (m.channel !== 'bench' || m.type !== type) return;
        replies.push(m);
        if (replies.length === targets.length) {
          cluster.off('message', onMessage);
          resolve(replies);
        }
      };
      cluster.on('message', onMessage);
      for (const w of targets) w?.send({ ...request, channel: 'bench' });
    });
  };
  const rssMb = () => process.memoryUsage.rss() / 2 ** 20;
  process.on('message', (m: IpcMessage) => {
    if (m.type === 'window-start') {
      probe.start();
      for (const w of live()) w?.send({ type: 'window-start', channel: 'bench' });
    } else if (m.type === 'window-end') {
      void gather({ type: 'window-end' }, 'stats').then((replies) => {
        const all = [probe.stop(), ...replies.map((r) => r.stats as ProcessStats)];
        // BENCH_CLUSTER_DEBUG=1: each process's share (the primary first) on stderr.
        if (process.env.BENCH_CLUSTER_DEBUG) {
          process.stderr.write(
            `cluster: ${all.map((p) => `cpu ${p.cpuCores.toFixed(2)} gc ${p.gc.ms.toFixed(0)} ms eld99 ${p.eld.p99.toFixed(0)} rss ${p.rssMaxMb.toFixed(0)}`).join(' | ')}\n`,
          );
        }
        const connects = replies.reduce((n, r) => n + Number(r.connects ?? 0), 0);
        process.send?.({ type: 'stats', stats: sumStats(all), connects });
      });
    } else if (m.type === 'rss') {
      void gather({ type: 'rss', gc: m.gc }, 'rss').then((replies) => {
        process.send?.({
          type: 'rss',
          rssMb: rssMb() + replies.reduce((n, r) => n + Number(r.rssMb), 0),
          heapUsedMb:
            process.memoryUsage().heapUsed / 2 ** 20 +
            replies.reduce((n, r) => n + Number(r.heapUsedMb), 0),
        });
      });
    } else if (m.type === 'exit') void stop();
  });
  process.on('disconnect', () => void stop());
  let stopping = false;
  async function stop(): Promise<void> {
    if (stopping) return;
    stopping = true;
    await primary.shutdown();
    await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  }
  const workersRss = await gather({ type: 'rss' }, 'rss');
  const limits = benchmarkLimits(DEFAULT_LIMITS as unknown as Record<string, unknown>);
  process.send?.({
    type: 'ready',
    url: `http://127.0.0.1:${port}`,
    keys: secrets,
    limits,
    baselineRssMb: rssMb() + workersRss.reduce((n, r) => n + Number(r.rssMb), 0),
  });
}

/** The whole cluster: CPU, memory and GC add up; the event loop is that of the worst process. */
function sumStats(all: ProcessStats[]): ProcessStats {
  const wallMs = Math.max(...all.map((s) => s.wallMs));
  const sum = (pick: (s: ProcessStats) => number) => all.reduce((n, s) => n + pick(s), 0);
  const worst = (pick: (s: ProcessStats) => number) => Math.max(...all.map(pick));
  const cpuMs = sum((s) => s.cpuMs);
  return {
    wallMs,
    cpuMs,
    cpuCores: cpuMs / wallMs,
    rssMb: sum((s) => s.rssMb),
    rssMaxMb: sum((s) => s.rssMaxMb),
    heapUsedMb: sum((s) => s.heapUsedMb),
    eld: {
      p50: worst((s) => s.eld.p50),
      p99: worst((s) => s.eld.p99),
      max: worst((s) => s.eld.max),
      mean: worst((s) => s.eld.mean),
    },
    gc: {
      count: sum((s) => s.gc.count),
      ms: sum((s) => s.gc.ms),
      majorCount: sum((s) => s.gc.majorCount),
      majorMs: sum((s) => s.gc.majorMs),
    },
  };
}
