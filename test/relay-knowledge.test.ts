import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { makePdf } from '../packages/relay/src/knowledge/pdf.fixture.js';
import { startPostgres, type PostgresServer } from './support/postgres.js';
import {
  REPO_ROOT,
  lastUser,
  openStartedTalk,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const ADMIN_TOKEN = 'admin-token-admin-token-0123';
const CLI = join(REPO_ROOT, 'packages/relay/src/cli/cli.ts');

type Message = { role: string; content?: string | null };

/** The scripted model: looks things up, then answers from the top result with its link. */
function chat(request: ChatRequest): ChatScript {
  const messages = request.messages as Message[];
  const last = messages.at(-1);
  if (last?.role === 'tool') {
    const { results } = JSON.parse(last.content ?? '{}') as {
      results: { text: string; url: string | null }[];
    };
    const top = results[0];
    return { content: top ? `${top.text} (Source: ${top.url})` : 'I could not find that.' };
  }
  const offered = (request.tools ?? []).some(
    (t) => (t as { function?: { name?: string } }).function?.name === 'search_knowledge',
  );
  if (!offered) return { content: 'No knowledge tool.' };
  return {
    toolCalls: [
      { name: 'search_knowledge', arguments: JSON.stringify({ query: lastUser(request) }) },
    ],
  };
}

/** `voicebot-relay kb …` in its own process, from the source. */
function kb(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', CLI, 'kb', ...args],
      {
        cwd: REPO_ROOT,
        env,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function admin(h: RelayHarness, method: string, path: string, body?: unknown) {
  const res = await fetch(`${h.url}/admin/knowledge${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const PRICES_HTML = `<!doctype html><html><head><title>Prices | Acme Dental</title></head><body>
<header><a href="/">Acme Dental</a></header>
<nav><a href="/services">Services</a> <a href="/prices">Prices</a> Zephyrmenu</nav>
<main><h1>Prices</h1><p>A check-up costs 80 dollars. A cleaning costs 95 dollars.</p>
<h2>Payment</h2><p>We take cards and cash at the front desk.</p></main>
<footer>Zephyrfooter © Acme Dental</footer></body></html>`;

const PARKING_MD = `# Parking\n\nTwelve free spaces behind the clinic on Elm Street.\n\n## Bicycles\n\nRacks by the front door.\n`;

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`knowledge base end to end (${engine})`, () => {
    let pg: PostgresServer | undefined;
    let h: RelayHarness;
    let files: string;
    let env: NodeJS.ProcessEnv;
    let cliUpstream: { url: string; close(): Promise<void> };

    before(async () => {
      if (engine === 'postgres') pg = await startPostgres();
      h = await startRelay({
        ...(pg ? { databaseUrl: pg.url } : {}),
        upstream: { chat },
        relay: {
          adminToken: ADMIN_TOKEN,
          bots: [
            {
              id: 'default',
              name: 'Acme Dental',
              systemPrompt: 'Answer from the clinic pages.',
              knowledge: ['clinic'],
            },
          ],
        },
      });
      files = await mkdtemp(join(tmpdir(), 'voicebot-kb-files-'));
      await writeFile(join(files, 'parking.md'), PARKING_MD);
      await writeFile(join(files, 'prices.html'), PRICES_HTML);
      await writeFile(
        join(files, 'warranty.pdf'),
        makePdf(
          [['Warranty', 'Every crown we fit is guaranteed for seven years.']],
          'Crown warranty',
        ),
      );
      // The CLI's embeddings go to the same fake provider (another listener on it: one request log).
      cliUpstream = await h.upstream.listen(0);
      env = {
        ...process.env,
        VOICEBOT_DATA_DIR: h.dataDir,
        DATABASE_URL: pg?.url ?? '',
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: '',
        VOICEBOT_EMBEDDINGS_BASE_URL: cliUpstream.url,
        VOICEBOT_EMBEDDINGS_API_KEY: 'sk-embeddings',
      };
    });

    after(async () => {
      await cliUpstream.close();
      await h.close();
      await pg?.close();
      await rm(files, { recursive: true, force: true });
    });

    test('kb add (CLI) and an upload (admin API) index the files; the chrome is not indexed', async () => {
      const added = await kb(
        [
          'add',
          join(files, 'parking.md'),
          join(files, 'warranty.pdf'),
          '--collection',
          'clinic',
          '--base-url',
          'https://acme.test/docs/',
          '--json',
        ],
        env,
      );
      assert.equal(added.code, 0, added.stderr);
      const report = JSON.parse(added.stdout) as { added: number; failed: number };
      assert.equal(report.added, 2);

      const upload = await admin(h, 'POST', '/collections/clinic/documents', {
        files: [
          {
            filename: 'prices.html',
            content: (await readFile(join(files, 'prices.html'))).toString('base64'),
            url: 'https://acme.test/prices',
          },
        ],
      });
      assert.equal(upload.status, 200, JSON.stringify(upload.body));
      assert.equal(upload.body.added, 1);

      const listed = await kb(['list', '--collection', 'clinic', '--json'], env);
      const docs = JSON.parse(listed.stdout) as { source: string; url: string; status: string }[];
      assert.deepEqual(docs.map((d) => d.url).sort(), [
        'https://acme.test/docs/parking.md',
        'https://acme.test/docs/warranty.pdf',
        'https://acme.test/prices',
      ]);
      assert.ok(docs.every((d) => d.status === 'ready'));

      for (const chrome of ['Zephyrmenu', 'Zephyrfooter']) {
        const search = await admin(h, 'GET', `/search?q=${chrome}&collections=clinic`);
        assert.equal(search.status, 200);
        assert.ok(
          !JSON.stringify(search.body.results).includes(chrome),
          `${chrome} (navigation/footer) is not indexed`,
        );
      }
      // The engine's own full-text ranking (FTS5 / tsvector), on its own: stemmed, title weighted.
      const store = h.relay.knowledge.store;
      const [textHit] = await store.chunks(
        (await store.fullText('clinic', 'cleanings', 5)).slice(0, 1),
      );
      assert.equal(textHit?.title, 'Prices');
      assert.deepEqual(await store.fullText('clinic', 'Zephyrmenu', 5), []);
      const prices = await admin(h, 'GET', '/search?q=cleaning%20cost&collections=clinic&limit=1');
      const [top] = prices.body.results as { url: string; heading: string }[];
      assert.equal(top?.url, 'https://acme.test/prices');
    });

    test('a text turn answers from the one file that has the answer, citing its URL', async () => {
      const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
      const mark = h.upstream.requests.length;
      talk.send({ type: 'text', text: 'How long is the warranty on a crown?' });
      const done = await talk.next('done', () => true, { timeoutMs: 10_000 });
      assert.match(done.text, /guaranteed for seven years/);
      assert.match(done.text, /Source: https:\/\/acme\.test\/docs\/warranty\.pdf/);
      const tool = talk.of('tool').find((e) => e.state === 'done');
      assert.equal(tool?.name, 'search_knowledge');
      const result = tool?.result as { results: { url: string; title: string }[] };
      assert.equal(result.results[0]?.url, 'https://acme.test/docs/warranty.pdf');
      assert.equal(result.results[0]?.title, 'Crown warranty');
      const embeds = h.upstream.requests.slice(mark).filter((r) => r.kind === 'embeddings');
      assert.equal(embeds.length, 1, 'one query embedded per search');
      talk.close();
    });

    test('re-adding unchanged files costs no embeddings request; a changed file replaces its chunks', async () => {
      const mark = h.upstream.requests.filter((r) => r.kind === 'embeddings').length;
      const again = await kb(
        [
          'add',
          join(files, 'parking.md'),
          join(files, 'warranty.pdf'),
          '--collection',
          'clinic',
          '--base-url',
          'https://acme.test/docs/',
          '--json',
        ],
        env,
      );
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { unchanged: number }).unchanged, 2);
      assert.equal(h.upstream.requests.filter((r) => r.kind === 'embeddings').length, mark);

      await writeFile(
        join(files, 'parking.md'),
        '# Parking\n\nThe car park moved to Oak Avenue.\n',
      );
      const changed = await kb(
        [
          'add',
          join(files, 'parking.md'),
          '--collection',
          'clinic',
          '--base-url',
          'https://acme.test/docs/',
          '--json',
        ],
        env,
      );
      assert.equal((JSON.parse(changed.stdout) as { updated: number }).updated, 1);
      const search = await admin(
        h,
        'GET',
        '/search?q=bicycle%20racks%20front%20door&collections=clinic&limit=10',
      );
      assert.ok(!JSON.stringify(search.body.results).includes('Racks by the front door'));

      const collections = await admin(h, 'GET', '/collections');
      assert.deepEqual(
        (collections.body.collections as { name: string; documents: number }[]).map((c) => [
          c.name,
          c.documents,
        ]),
        [['clinic', 3]],
      );
      const unknown = await admin(h, 'GET', '/collections/nope/documents');
      assert.equal(unknown.status, 404);
      const bad = await admin(h, 'POST', '/collections/clinic/documents', {
        paths: ['/etc/passwd'],
      });
      assert.equal(bad.status, 400);
    });
  });
}
