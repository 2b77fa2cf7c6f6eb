import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import { openStorage, type Storage } from '../store/storage.js';
import { KnowledgeBase } from './knowledge-base.js';

const fake = createFakeUpstream();
const embeddingCalls = () => fake.requests.filter((r) => r.kind === 'embeddings').length;
const embeddedTexts = () =>
  fake.requests
    .filter((r) => r.kind === 'embeddings')
    .flatMap((r) => (r.body as { input: string[] }).input);

describe('knowledge base (SQLite)', () => {
  let dir: string;
  let storage: Storage;
  let server: { url: string; close(): Promise<void> };
  let kb: KnowledgeBase;
  const stage = () => ({
    baseURL: server.url,
    apiKey: 'test',
    model: 'fake-embed',
    timeoutMs: 5_000,
    maxRetries: 0,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voicebot-kb-'));
    storage = await openStorage({ dataDir: join(dir, 'data') });
    server = await fake.listen(0);
    kb = new KnowledgeBase({ storage, embeddings: stage() });
    await mkdir(join(dir, 'site', 'clinic'), { recursive: true });
    await writeFile(
      join(dir, 'site', 'clinic', 'parking.md'),
      '# Parking\n\nTwelve free spaces behind the clinic on Elm Street.\n\n## Bicycles\n\nRacks by the front door.\n',
    );
    await writeFile(
      join(dir, 'site', 'prices.html'),
      '<html><body><nav>Home Prices Parking</nav><main><h1>Prices</h1><p>A check-up costs 80 dollars; a cleaning costs 95 dollars.</p></main><footer>Parking map</footer></body></html>',
    );
    await writeFile(join(dir, 'site', 'photo.jpg'), 'not a document');
  });

  after(async () => {
    await storage.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a folder is indexed once; unchanged files cost no embeddings request; a change replaces chunks', async () => {
    const first = await kb.add([join(dir, 'site')], {
      collection: 'clinic',
      baseUrl: 'https://acme.test/',
    });
    assert.equal(first.added, 2);
    assert.equal(first.failed, 0, 'the .jpg is not picked up from a folder');
    const parking = first.documents.find((d) => d.source.endsWith('parking.md'));
    assert.equal(parking?.url, 'https://acme.test/clinic/parking.md');
    assert.equal(parking?.chunks, 2);
    assert.ok(
      !embeddedTexts().some((t) => /Home Prices Parking|Parking map/.test(t)),
      'chrome is not embedded',
    );

    const calls = embeddingCalls();
    const again = await kb.add([join(dir, 'site')], {
      collection: 'clinic',
      baseUrl: 'https://acme.test/',
    });
    assert.equal(again.unchanged, 2);
    assert.equal(again.embedded, 0);
    assert.equal(embeddingCalls(), calls, 'no embeddings request for unchanged content');

    const [before] = await kb.search(['clinic'], 'where do I park my bike?');
    assert.equal(before?.heading, 'Parking › Bicycles');
    assert.equal(before?.url, 'https://acme.test/clinic/parking.md');

    await writeFile(
      join(dir, 'site', 'clinic', 'parking.md'),
      '# Parking\n\nThe car park moved to Oak Avenue.\n',
    );
    const beforeChange = embeddingCalls();
    const changed = await kb.add([join(dir, 'site', 'clinic', 'parking.md')], {
      collection: 'clinic',
      baseUrl: 'https://acme.test/clinic/',
    });
    assert.equal(changed.updated, 1);
    assert.equal(embeddingCalls(), beforeChange + 1, 'one request for the changed file');
    const docs = await kb.documents('clinic');
    const doc = docs.find((d) => d.source.endsWith('parking.md'));
    assert.equal(doc?.chunk_count, 1);
    const results = await kb.search(['clinic'], 'bicycle racks front door parking', { limit: 10 });
    assert.ok(!results.some((r) => /Racks by the front door/.test(r.text)), 'old chunks are gone');
    assert.match(results[0]?.text ?? '', /Oak Avenue/);
  });

  test('hybrid ranking: the page that answers comes first; another process sees writes (version)', async () => {
    const [top] = await kb.search(['clinic'], 'How much is a cleaning?');
    assert.equal(top?.title, 'Prices');
    assert.match(top?.text ?? '', /95 dollars/);
    assert.equal(top?.url, 'https://acme.test/prices.html');

    // A second knowledge base on the same database (the CLI beside a running relay).
    const other = new KnowledgeBase({ storage, embeddings: stage() });
    await other.addFiles(
      [
        {
          filename: 'insurance.txt',
          content: Buffer.from('We accept Delta Dental insurance plans.'),
          url: 'https://acme.test/insurance',
        },
      ],
      { collection: 'clinic' },
    );
    const [found] = await kb.search(['clinic'], 'Do you take Delta insurance?');
    assert.equal(found?.url, 'https://acme.test/insurance');
    assert.deepEqual(await kb.search(['nope'], 'anything'), []);
  });

  test('failures are reported and kept per source; removal drops a document from search', async () => {
    const report = await kb.add([join(dir, 'site', 'photo.jpg'), join(dir, 'missing.md')], {
      collection: 'clinic',
    });
    assert.equal(report.failed, 2);
    assert.match(report.documents[0]?.error ?? '', /only \.md, \.html, \.txt and \.pdf/);
    assert.match(report.documents[1]?.error ?? '', /ENOENT/);
    const docs = await kb.documents('clinic');
    const photo = docs.find((d) => d.source.endsWith('photo.jpg'));
    assert.equal(photo?.status, 'failed');

    const insurance = docs.find((d) => d.source === 'upload:insurance.txt');
    assert.ok(insurance);
    assert.ok(await kb.removeDocument('clinic', insurance.id));
    const results = await kb.search(['clinic'], 'Delta insurance', { limit: 10 });
    assert.ok(!results.some((r) => r.url === 'https://acme.test/insurance'));

    await assert.rejects(kb.add(['x'], { collection: 'bad name!' }), /collection name/);
    assert.ok(await kb.removeCollection('clinic'));
    assert.deepEqual(await kb.collections(), []);
  });
});
