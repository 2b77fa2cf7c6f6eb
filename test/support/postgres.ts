/**
 * A real PostgreSQL server for tests: initdb in a temp dir, started on a free port (loopback TCP
 * and a socket in the temp dir only), one database, a password-protected user. As root (CI, this
 * container) every server command runs as the unprivileged `postgres` user, which PostgreSQL needs.
 * `stop()` / `start()` take it away and bring it back mid-test; `close()` stops it and deletes it all.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PostgresServer {
  /** `postgres://voicebot:<password>@127.0.0.1:<port>/voicebot_test` */
  url: string;
  password: string;
  port: number;
  /** Stops the server (fast shutdown: connections are cut). */
  stop(): Promise<void>;
  /** Starts it again on the same port, with the same data. */
  start(): Promise<void>;
  /** Stops it and deletes its files. */
  close(): Promise<void>;
}

async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[]))
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  const { stdout } = await run('pg_config', ['--bindir']);
  return stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = await binDir();
  const owner = await postgresUser();
  const dir = await mkdtemp(join(tmpdir(), 'voicebot-pg-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  /** Runs a PostgreSQL program, as `postgres` when we are root. */
  const pg = (program: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    owner
      ? run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args], {
          env: { ...process.env, ...env },
        })
      : run(join(bin, program), args, { env: { ...process.env, ...env } });

  const password = `pw-${randomBytes(9).toString('hex')}`;
  const pwfile = join(dir, 'pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) await chown(pwfile, owner.uid, owner.gid);
  const data = join(dir, 'data');
  await pg('initdb', [
    '-D',
    data,
    '-U',
    'voicebot',
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  const port = await freePort();
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c full_page_writes=off`;
  const start = async () => {
    await pg('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-o',
      options,
      '-w',
      '-t',
      '30',
      'start',
    ]);
  };
  const stop = async () => {
    await pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  await start();
  await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'voicebot', 'voicebot_test'], {
    PGPASSWORD: password,
  });
  let running = true;
  return {
    url: `postgres://voicebot:${password}@127.0.0.1:${port}/voicebot_test`,
    password,
    port,
    async stop() {
      if (!running) return;
      await stop();
      running = false;
    },
    async start() {
      if (running) return;
      await start();
      running = true;
    },
    async close() {
      if (running) await stop().catch(() => undefined);
      running = false;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
