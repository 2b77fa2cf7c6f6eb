/**
 * A fleet as deploy/compose.yaml runs it, on loopback: one PostgreSQL, one Redis, one scripted
 * upstream, `voicebot-relay db migrate` once, then relay processes started with
 * `voicebot-relay serve` and the same environment (DATABASE_URL, REDIS_URL, a shared
 * VOICEBOT_SECRET and admin token), each with its own data dir (nothing is shared on disk).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createFakeUpstream, type FakeUpstreamOptions } from '@voice-bot/fake-provider';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startRedis, type TestRedis } from './redis.js';
import { REPO_ROOT } from './relay.js';

export const CLI = join(REPO_ROOT, 'packages/relay/bin/voicebot-relay.js');
export const ADMIN_TOKEN = 'fleet-admin-token-0123456789';

export interface FleetRelay {
  name: string;
  url: string;
  child: ChildProcess;
  /** Every line the process printed (JSON log lines and the rest). */
  lines: string[];
  exited: Promise<number | null>;
  /** SIGTERM: drain, flush usage to the database, exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: the machine is gone. */
  kill(): Promise<void>;
}

export interface Fleet {
  postgres: PostgresServer;
  redis: TestRedis;
  upstream: ReturnType<typeof createFakeUpstream>;
  upstreamUrl: string;
  /** What `db migrate` printed. */
  migrated: string;
  relays: FleetRelay[];
  /** Starts one more relay of the fleet. */
  startRelay(name: string): Promise<FleetRelay>;
  /** The admin API of a relay. */
  admin(relay: FleetRelay, path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export async function startFleet(
  count: number,
  upstreamOptions: FakeUpstreamOptions = {},
): Promise<Fleet> {
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  const upstream = createFakeUpstream(upstreamOptions);
  const served = await upstream.listen(0);
  const dirs: string[] = [];
  const relays: FleetRelay[] = [];
  const baseEnv = {
    ...process.env,
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    VOICEBOT_SECRET: 'fleet-secret-fleet-secret-fleet-secret-0123',
    VOICEBOT_ADMIN_TOKEN: ADMIN_TOKEN,
    OPENAI_API_KEY: 'sk-upstream-secret',
    OPENAI_BASE_URL: served.url,
    VOICEBOT_LOG_LEVEL: 'info',
  };
  const dataDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'voicebot-fleet-'));
    dirs.push(dir);
    return dir;
  };

  const migrate = spawnSync(process.execPath, [CLI, 'db', 'migrate'], {
    env: { ...baseEnv, VOICEBOT_DATA_DIR: await dataDir() },
    encoding: 'utf8',
  });
  if (migrate.status !== 0) throw new Error(`db migrate failed: ${migrate.stderr}`);

  const startRelay = async (name: string): Promise<FleetRelay> => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      env: { ...baseEnv, VOICEBOT_DATA_DIR: await dataDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const orphan = () => child.kill('SIGKILL');
    process.once('exit', orphan);
    void exited.then(() => process.off('exit', orphan));
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) =>
      lines.push(line),
    );
    const url = await new Promise<string>((resolve, reject) => {
      void exited.then((code) =>
        reject(new Error(`relay ${name} exited with ${code}:\n${lines.join('\n')}`)),
      );
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        lines.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'relay listening' && entry.url)
            resolve(entry.url.replace('localhost', '127.0.0.1'));
        } catch {
          // not a log line
        }
      });
    });
    const relay: FleetRelay = {
      name,
      url,
      child,
      lines,
      exited,
      async stop() {
        child.kill('SIGTERM');
        return exited;
      },
      async kill() {
        child.kill('SIGKILL');
        await exited;
      },
    };
    relays.push(relay);
    return relay;
  };

  try {
    for (let i = 0; i < count; i++) await startRelay(String.fromCharCode(65 + i));
  } catch (error) {
    for (const relay of relays) await relay.kill();
    await Promise.all([postgres.close(), redis.close(), served.close()]);
    throw error;
  }

  return {
    postgres,
    redis,
    upstream,
    upstreamUrl: served.url,
    migrated: migrate.stdout,
    relays,
    startRelay,
    admin: (relay, path, init = {}) =>
      fetch(`${relay.url}/admin${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          'content-type': 'application/json',
          ...(init.headers as Record<string, string> | undefined),
        },
      }),
    async close() {
      await Promise.all(relays.map((relay) => relay.kill()));
      await Promise.all([postgres.close(), redis.close(), served.close()]);
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
