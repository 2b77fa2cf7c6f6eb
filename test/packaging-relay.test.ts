/**
 * `@voice-bot/relay` as an integrator gets it: packed, installed into an empty folder outside the
 * repository (with only the packages it depends on), and started with the README's embedding
 * snippet, taken from README.md so the docs cannot drift from what works.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import { REPO_ROOT, TalkClient, connectTalk, createSession } from './support/relay.js';

const run = promisify(execFile);
const ORIGIN = 'https://www.example.com';

/** The first ```js block of the README section that starts with `heading`. */
export function readmeSnippet(readme: string, heading: string): string {
  const section = readme.slice(readme.indexOf(heading));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error(`no js snippet under ${heading}`);
  return match[1];
}

describe('@voice-bot/relay installed on its own', () => {
  let dir = '';
  let upstream: ReturnType<typeof createFakeUpstream>;
  let served: { url: string; close(): Promise<void> };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voicebot-relay-install-'));
    const packs = join(dir, 'packs');
    await mkdir(packs);
    for (const pkg of ['protocol', 'fake-provider', 'relay']) {
      await run('npm', ['pack', '--silent', '--pack-destination', packs], {
        cwd: join(REPO_ROOT, 'packages', pkg),
      });
    }
    const tarballs = (await readdir(packs)).map((f) => join(packs, f));
    const app = join(dir, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'relay-user', private: true, type: 'module' }),
    );
    // Install scripts are skipped: better-sqlite3's would compile its addon again (about a minute);
    // the one this repository's own `npm ci` built is copied in instead.
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...tarballs],
      { cwd: app, timeout: 180_000 },
    );
    const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
    await mkdir(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
    await copyFile(join(REPO_ROOT, addon), join(app, addon));
    upstream = createFakeUpstream({ chat: () => ({ content: 'Hello from the installed relay.' }) });
    served = await upstream.listen(0);
  });

  after(async () => {
    await served?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('no browser code comes with it', async () => {
    const installed = await readdir(join(dir, 'app/node_modules/@voice-bot'));
    // fake-provider: the offline provider of `voicebot-relay serve --demo`.
    assert.deepEqual(installed.sort(), ['fake-provider', 'protocol', 'relay']);
    const names = await readdir(join(dir, 'app/node_modules'));
    for (const name of ['@huggingface', 'onnxruntime-web', 'onnxruntime-node', 'lit'])
      assert.ok(!names.includes(name), `${name} was installed`);
  });

  test('serve --demo from the installed package: offline, and says the demo pages ship with the repository instead of serving /', async () => {
    const app = join(dir, 'app');
    const env = { ...process.env, VOICEBOT_DATA_DIR: join(dir, 'demo-data') } as NodeJS.ProcessEnv;
    for (const name of Object.keys(env))
      if (name.startsWith('OPENAI_') || name === 'VOICEBOT_ADMIN_TOKEN') delete env[name];
    const bin = join(app, 'node_modules/@voice-bot/relay/bin/voicebot-relay.js');
    const demo = await startSnippet(
      app,
      env,
      [bin, 'serve', '--demo', '--port', '0', '--host', '127.0.0.1'],
      /"url":"(http:\/\/[^"]+)"/,
    );
    try {
      assert.ok(
        demo.logs.some((l) => l.includes('the demo pages ship with the repository')),
        demo.logs.join('\n'),
      );
      assert.equal((await fetch(`${demo.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${demo.url}/`)).status, 404);
    } finally {
      demo.stop();
    }
  });

  test("the README's snippet runs verbatim: logs its URL on 127.0.0.1, warns about what is missing, and serves a turn", async () => {
    const app = join(dir, 'app');
    const snippet = readmeSnippet(
      await readFile(join(REPO_ROOT, 'README.md'), 'utf8'),
      '### Embedding the relay',
    );
    await writeFile(join(app, 'relay.mjs'), snippet.replace('listen(8787)', 'listen(0)'));
    // The key, as the README says: the CLI of the installed package, into the same data dir.
    const created = await run('npx', ['voicebot-relay', 'keys', 'create', '--origin', ORIGIN], {
      cwd: app,
    });
    const key = /vb_pk_[A-Za-z0-9_-]+/.exec(created.stdout)?.[0];
    assert.ok(key, created.stdout);

    const env = { ...process.env, OPENAI_BASE_URL: '', OPENAI_API_KEY: '' } as NodeJS.ProcessEnv;
    for (const name of Object.keys(env))
      if (name.startsWith('VOICEBOT_') || name.startsWith('OPENAI_')) delete env[name];
    const bare = await startSnippet(app, env);
    try {
      assert.match(bare.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(
        bare.logs.some((l) => l.includes('no provider configured')),
        'warned about the missing provider',
      );
      assert.equal((await fetch(`${bare.url}/healthz`)).status, 200);
      assert.equal(
        (await fetch(`${bare.url}/widget/voice-bot.js`)).status,
        404,
        'no widget without @voice-bot/widget',
      );
    } finally {
      bare.stop();
    }

    const withProvider = await startSnippet(app, {
      ...env,
      OPENAI_BASE_URL: served.url,
      OPENAI_API_KEY: 'sk-test',
    });
    try {
      assert.ok(!withProvider.logs.some((l) => l.includes('no provider configured')));
      const session = await createSession(withProvider.url, { key, origin: ORIGIN });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const talk = await connectTalk(
        session.body.ws_url as string,
        session.body.token as string,
        ORIGIN,
      );
      assert.ok(talk instanceof TalkClient);
      talk.start({ input: 'text', output: 'text' });
      await talk.next('ready');
      talk.send({ type: 'text', text: 'hi' });
      const done = await talk.next('done');
      assert.equal(done.text, 'Hello from the installed relay.');
      talk.close();
    } finally {
      withProvider.stop();
    }
  });
});

async function startSnippet(
  cwd: string,
  env: NodeJS.ProcessEnv,
  args = ['relay.mjs'],
  logged = /voice-bot relay on (http:\/\/\S+)/,
): Promise<{ url: string; logs: string[]; stop(): void }> {
  const child = spawn(process.execPath, args, {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no URL logged; got:\n${logs.join('\n')}`)),
      20_000,
    );
    child.once('exit', (code) =>
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${logs.join('\n')}`)),
    );
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        logs.push(line);
        const found = logged.exec(line);
        if (found?.[1]) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
    }
  });
  return { url, logs, stop: () => child.kill('SIGTERM') };
}
