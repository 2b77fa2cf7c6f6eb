/**
 * The relay with its shared state in Redis (`REDIS_URL`, as a fleet runs it) against the same relay
 * with in-process state, side by side: the same fake upstream, load generator and load, alternating
 * within each round (which goes first alternating between rounds), a fresh throwaway redis-server
 * (Debian's binary, no persistence, on a free port in a temp dir) for each Redis run. Reported: the
 * relay's CPU per turn and added latency for both, Redis round trips per session opened and per
 * turn (`RedisState.redisRoundTrips()`: a pipeline or a script is one), Redis's own count of
 * commands in the window (`INFO commandstats`) and the CPU redis-server used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAverage, median, medianFigures } from './common.js';
import { runLevel, type LevelOptions, type LevelSummary } from './levels.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export type RedisVariant = 'local' | 'redis';

export interface RedisRun {
  variant: RedisVariant;
  round: number;
  sessions: number;
  turns: number;
  /** turns that failed, lost uplink audio or missed downlink audio, and sessions that failed to open */
  failed: number;
  cpuMsPerTurn: number;
  gcMsPerTurn: number;
  addedP50: number;
  addedP99: number;
  rssMaxMb: number;
  eldP99: number;
  /** Redis runs only */
  redis?: {
    /** round trips per session opened (the warm-up sessions included), the background taken out */
    roundTripsPerSession: number;
    /** round trips per turn in the window, the background taken out */
    roundTripsPerTurn: number;
    /** round trips per second with no session open (usage sync, slot heartbeats) */
    idleRoundTripsPerSecond: number;
    /** round trips in the window, per turn, everything included */
    windowRoundTripsPerTurn: number;
    /** commands Redis executed in the window per turn, by command (`INFO commandstats`) */
    commandsPerTurn: Record<string, number>;
    /** CPU redis-server used in the window, per turn (ms) */
    serverCpuMsPerTurn: number | undefined;
  };
  otherCpuCores: number | undefined;
  loadAverage: string;
}

export interface RedisFigures {
  cpuMsPerTurn: number;
  gcMsPerTurn: number;
  addedP50: number;
  addedP99: number;
  rssMaxMb: number;
}

export interface RedisLevel {
  sessions: number;
  local: RedisFigures;
  redis: RedisFigures;
  /** redis ÷ local, of the medians */
  ratio: RedisFigures;
  /** medians over the Redis runs */
  roundTripsPerSession: number;
  roundTripsPerTurn: number;
  windowRoundTripsPerTurn: number;
  idleRoundTripsPerSecond: number;
  serverCpuMsPerTurn: number | undefined;
  commandsPerTurn: Record<string, number>;
}

export interface RedisReport {
  rounds: number;
  durationMs: number;
  frameMs: number;
  levels: RedisLevel[];
  runs: RedisRun[];
  loadStart: string;
  loadEnd: string;
  /** why nothing was measured (no redis-server on this machine) */
  skipped?: string;
}

const FIGURES = ['cpuMsPerTurn', 'gcMsPerTurn', 'addedP50', 'addedP99', 'rssMaxMb'] as const;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** One command over a fresh connection; resolves with the reply's text (a bulk or simple string). */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = Buffer.alloc(0);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(5000, () => fail(new Error(`redis ${args[0]}: no reply`)));
    socket.once('error', fail);
    socket.once('connect', () =>
      socket.write(
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      const text = reply.toString('utf8');
      const lineEnd = text.indexOf('\r\n');
      if (lineEnd < 0) return;
      const head = text.slice(0, lineEnd);
      if (head.startsWith('-')) return fail(new Error(`redis ${args[0]}: ${head.slice(1)}`));
      if (head.startsWith('$')) {
        const length = Number(head.slice(1));
        const body = reply.subarray(Buffer.byteLength(head) + 2);
        if (body.byteLength < length) return;
        socket.destroy();
        resolve(body.subarray(0, length).toString('utf8'));
        return;
      }
      socket.destroy();
      resolve(head.slice(1));
    });
  });
}

/** `INFO commandstats` → calls per command (`cmdstat_get:calls=3,…` → `{ get: 3 }`). */
export function parseCommandStats(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) out[match[1] as string] = Number(match[2]);
  }
  return out;
}

/** user + system CPU of a process so far (ms), from /proc; undefined where there is none. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12]: utime, stime in clock ticks (USER_HZ, 100 on Linux)
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

interface ThrowawayRedis {
  port: number;
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** A redis-server of its own for one run: no persistence, loopback only, removed afterwards. */
export async function startThrowawayRedis(): Promise<ThrowawayRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'vb-bench-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if ((await redisCommand(port, 'PING')) === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, stop };
}

function run(
  variant: RedisVariant,
  round: number,
  s: LevelSummary,
  warmupSessions: number,
  server: { cpuMs: number | undefined; commands: Record<string, number> } | undefined,
): RedisRun {
  const turns = Math.max(1, s.turns);
  const out: RedisRun = {
    variant,
    round,
    sessions: s.sessions,
    turns: s.turns,
    failed: s.failedTurns + s.uplinkLostTurns + s.downlinkShortTurns + s.setupFailures,
    cpuMsPerTurn: s.relay.cpuMs / turns,
    gcMsPerTurn: s.relay.gc.ms / turns,
    addedP50: s.added.p50,
    addedP99: s.added.p99,
    rssMaxMb: s.relay.rssMaxMb,
    eldP99: s.relay.eld.p99,
    otherCpuCores: s.otherCpuCores,
    loadAverage: loadAverage(),
  };
  const r = s.redis;
  if (variant === 'redis' && r) {
    const background = (ms: number) => (r.idleRoundTripsPerSecond * ms) / 1000;
    const commandsPerTurn: Record<string, number> = {};
    for (const [name, calls] of Object.entries(server?.commands ?? {}))
      if (!/^(config|info|ping)\b/.test(name)) commandsPerTurn[name] = calls / turns;
    out.redis = {
      roundTripsPerSession:
        (r.setupRoundTrips - background(r.setupMs)) / Math.max(1, s.connected + warmupSessions),
      roundTripsPerTurn: (r.windowRoundTrips - background(r.windowMs)) / turns,
      idleRoundTripsPerSecond: r.idleRoundTripsPerSecond,
      windowRoundTripsPerTurn: r.windowRoundTrips / turns,
      commandsPerTurn,
      serverCpuMsPerTurn: server?.cpuMs === undefined ? undefined : server.cpuMs / turns,
    };
  }
  return out;
}

const figures = (runs: RedisRun[]): RedisFigures => medianFigures(runs, FIGURES);

export async function measureRedis(
  options: {
    levels: number[];
    rounds: number;
    /** the load of one level (sessions, `relayConfig` and `onWindow` are set here) */
    level: (sessions: number) => LevelOptions;
  },
  log: (line: string) => void = () => undefined,
): Promise<RedisReport> {
  const loadStart = loadAverage();
  if (!existsSync(REDIS_SERVER))
    return {
      rounds: options.rounds,
      durationMs: 0,
      frameMs: 0,
      levels: [],
      runs: [],
      loadStart,
      loadEnd: loadStart,
      skipped: `no ${REDIS_SERVER} on this machine`,
    };
  const runs: RedisRun[] = [];
  let durationMs = 0;
  let frameMs = 0;
  for (const sessions of options.levels) {
    for (let round = 1; round <= options.rounds; round++) {
      const order: RedisVariant[] = round % 2 === 1 ? ['redis', 'local'] : ['local', 'redis'];
      for (const variant of order) {
        const level = options.level(sessions);
        durationMs = level.durationMs;
        frameMs = level.frameMs;
        const redis = variant === 'redis' ? await startThrowawayRedis() : undefined;
        try {
          let cpu0: number | undefined;
          let server: { cpuMs: number | undefined; commands: Record<string, number> } | undefined;
          let reset: Promise<unknown> = Promise.resolve();
          let info: Promise<string> | undefined;
          const s = await runLevel(
            {
              ...level,
              ...(redis
                ? {
                    relayConfig: { redisUrl: redis.url },
                    onWindow: {
                      start: () => {
                        cpu0 = processCpuMs(redis.pid);
                        reset = redisCommand(redis.port, 'CONFIG', 'RESETSTAT').catch(
                          () => undefined,
                        );
                      },
                      end: () => {
                        const cpu1 = processCpuMs(redis.pid);
                        server = {
                          cpuMs: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
                          commands: {},
                        };
                        info = reset.then(() => redisCommand(redis.port, 'INFO', 'commandstats'));
                      },
                    },
                  }
                : {}),
            },
            log,
          );
          if (server && info) {
            const found = server as { commands: Record<string, number> };
            found.commands = parseCommandStats(await info.catch(() => ''));
          }
          const r = run(variant, round, s, level.warmupTurns ?? 3, server);
          runs.push(r);
          const rt = r.redis
            ? `, Redis round trips ${r.redis.roundTripsPerSession.toFixed(1)}/session ${r.redis.roundTripsPerTurn.toFixed(1)}/turn (idle ${r.redis.idleRoundTripsPerSecond.toFixed(1)}/s), redis-server ${r.redis.serverCpuMsPerTurn?.toFixed(2) ?? '–'} ms/turn`
            : '';
          log(
            `  ${variant.padEnd(5)} round ${round}: ${r.turns} turns${r.failed ? ` (${r.failed} failed)` : ''}, CPU ${r.cpuMsPerTurn.toFixed(1)} ms/turn, GC ${r.gcMsPerTurn.toFixed(2)} ms/turn, added p50/p99 ${r.addedP50.toFixed(1)}/${r.addedP99.toFixed(1)} ms${rt}, load ${r.loadAverage}`,
          );
        } finally {
          await redis?.stop();
        }
      }
    }
  }
  const levels = options.levels.map((sessions): RedisLevel => {
    const complete = (variant: RedisVariant) => {
      const all = runs.filter((r) => r.sessions === sessions && r.variant === variant);
      const ok = all.filter((r) => r.turns > 0 && r.failed === 0);
      return ok.length > 0 ? ok : all;
    };
    const localRuns = complete('local');
    const redisRuns = complete('redis');
    const local = figures(localRuns);
    const redis = figures(redisRuns);
    const ratio = {} as RedisFigures;
    for (const k of FIGURES) ratio[k] = redis[k] / local[k];
    const of = (pick: (r: NonNullable<RedisRun['redis']>) => number | undefined) => {
      const values = redisRuns
        .map((r) => (r.redis ? pick(r.redis) : undefined))
        .filter((v): v is number => v !== undefined);
      return values.length > 0 ? median(values) : undefined;
    };
    const names = new Set(redisRuns.flatMap((r) => Object.keys(r.redis?.commandsPerTurn ?? {})));
    const commandsPerTurn: Record<string, number> = {};
    for (const name of names) commandsPerTurn[name] = of((r) => r.commandsPerTurn[name] ?? 0) ?? 0;
    return {
      sessions,
      local,
      redis,
      ratio,
      roundTripsPerSession: of((r) => r.roundTripsPerSession) ?? Number.NaN,
      roundTripsPerTurn: of((r) => r.roundTripsPerTurn) ?? Number.NaN,
      windowRoundTripsPerTurn: of((r) => r.windowRoundTripsPerTurn) ?? Number.NaN,
      idleRoundTripsPerSecond: of((r) => r.idleRoundTripsPerSecond) ?? Number.NaN,
      serverCpuMsPerTurn: of((r) => r.serverCpuMsPerTurn),
      commandsPerTurn,
    };
  });
  return {
    rounds: options.rounds,
    durationMs,
    frameMs,
    levels,
    runs,
    loadStart,
    loadEnd: loadAverage(),
  };
}
