import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, createSession } from './support/relay.js';

const CLI = join(REPO_ROOT, 'packages/relay/bin/voicebot-relay.js');

describe('voicebot-relay CLI', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let relay: ChildProcess | undefined;
  let relayUrl = '';
  let listening: { url?: string; console?: string } = {};
  const relayOutput: string[] = [];
  const ADMIN_TOKEN = 'cli-admin-token-0123456789';

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'voicebot-cli-'));
    env = {
      ...process.env,
      VOICEBOT_DATA_DIR: dataDir,
      OPENAI_API_KEY: '',
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
    };
    relay = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      env: { ...env, VOICEBOT_ADMIN_TOKEN: ADMIN_TOKEN },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: relay.stdout as NodeJS.ReadableStream });
    relayUrl = await new Promise<string>((resolve, reject) => {
      relay?.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
      lines.on('line', (line) => {
        relayOutput.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; console?: string };
          if (entry.msg === 'relay listening' && entry.url) {
            listening = entry;
            resolve(entry.url.replace('localhost', '127.0.0.1'));
          }
        } catch {
          // not a log line
        }
      });
    });
  });

  after(async () => {
    relay?.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  function cli(...args: string[]) {
    const result = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  test('serve with an admin token prints where the console is, never the token', async () => {
    assert.equal(listening.console, `${listening.url}/console/`);
    const page = await fetch(`${relayUrl}/console/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<vb-console>/);
    assert.ok(!relayOutput.join('\n').includes(ADMIN_TOKEN));
  });

  test('keys create prints the secret once; the store keeps only a hash', async () => {
    const created = cli(
      'keys',
      'create',
      '--origin',
      'https://shop.test',
      '--label',
      'Shop',
      '--json',
    );
    assert.equal(created.code, 0, created.stderr);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    assert.match(key, /^vb_pk_/);
    let stored = '';
    for (const name of await readdir(dataDir))
      if (name.startsWith('voicebot.db'))
        stored += (await readFile(join(dataDir, name))).toString('latin1');
    assert.ok(stored.includes(id), 'the key is in the database');
    assert.ok(!stored.includes(key));
    const listed = JSON.parse(cli('keys', 'list', '--json').stdout) as {
      id: string;
      label: string;
      hash?: string;
    }[];
    const entry = listed.find((k) => k.id === id);
    assert.equal(entry?.label, 'Shop');
    assert.equal(entry?.hash, undefined, 'list does not print hashes');
    assert.ok(!cli('keys', 'list').stdout.includes(key));
  });

  test('a CLI key works from its origin, is refused from another, and revocation reaches the running relay', async () => {
    const { id, key } = JSON.parse(
      cli('keys', 'create', '--origin', 'https://shop.test', '--json').stdout,
    ) as { id: string; key: string };
    assert.equal((await createSession(relayUrl, { key, origin: 'https://shop.test' })).status, 201);
    const elsewhere = await createSession(relayUrl, { key, origin: 'https://other.test' });
    assert.equal(elsewhere.status, 403);
    assert.equal(elsewhere.body.error?.code, 'origin_not_allowed');
    const revoked = cli('keys', 'revoke', id);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await createSession(relayUrl, { key, origin: 'https://shop.test' });
    assert.equal(after.status, 401);
    assert.equal(after.body.error?.code, 'key_revoked');
  });

  test('usage errors are explained, not thrown', () => {
    const noOrigin = cli('keys', 'create');
    assert.equal(noOrigin.code, 1);
    assert.match(noOrigin.stderr, /--origin/);
    const badOrigin = cli('keys', 'create', '--origin', 'shop.test');
    assert.equal(badOrigin.code, 1);
    assert.match(badOrigin.stderr, /not an origin/);
    assert.equal(cli('keys', 'revoke', 'key_nope').code, 1);
    assert.equal(cli('frobnicate').code, 1);
    assert.match(cli('--help').stdout, /keys create/);
  });

  test('db migrate applies what is pending and says so; a second run finds nothing', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'voicebot-cli-db-'));
    try {
      const run = () =>
        spawnSync(process.execPath, [CLI, 'db', 'migrate'], {
          env: { ...env, VOICEBOT_DATA_DIR: fresh },
          encoding: 'utf8',
        });
      const first = run();
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /voicebot\.db: applied 001_initial/);
      const second = run();
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /up to date/);
      assert.doesNotMatch(second.stdout, /applied/);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  test('an unreachable DATABASE_URL stops serve, keys and db migrate: exit 1, the host named, never the password', () => {
    const unreachable = {
      ...env,
      DATABASE_URL: 'postgres://voicebot:hunter2-secret@127.0.0.1:9/voicebot',
    };
    for (const args of [
      ['serve', '--port', '0'],
      ['keys', 'list'],
      ['db', 'migrate'],
    ]) {
      const result = spawnSync(process.execPath, [CLI, ...args], {
        env: unreachable,
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(result.status, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /127\.0\.0\.1:9/, args.join(' '));
      assert.ok(!`${result.stderr}${result.stdout}`.includes('hunter2'), args.join(' '));
    }
  });

  test('an unreachable REDIS_URL stops serve: exit 1, the host named, never the password', () => {
    const result = spawnSync(process.execPath, [CLI, 'serve', '--port', '0'], {
      env: { ...env, REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:9' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /Redis at 127\.0\.0\.1:9/);
    assert.ok(!`${result.stderr}${result.stdout}`.includes('hunter2'));
  });

  test('serve refuses a bad config file before it starts any worker', async () => {
    const file = join(dataDir, 'bad.config.json');
    for (const [config, complaint] of [
      [{ textDeltaIntervalMs: -5 }, /textDeltaIntervalMs/],
      [{ bots: [{ id: 'no prompt' }] }, /bad\.config\.json[\s\S]*bots\[0\]\.systemPrompt/],
      [{ bots: [{ id: 'no spaces allowed', systemPrompt: 'Hi.' }] }, /bot id/],
    ] as const) {
      await writeFile(file, JSON.stringify(config));
      const result = spawnSync(
        process.execPath,
        [CLI, 'serve', '--port', '0', '--workers', '2', '--config', file],
        { env, encoding: 'utf8', timeout: 20_000 },
      );
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, complaint);
    }
  });
});
