import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLIENT_KEY_PREFIX, hashSecret } from './keys.js';
import { openStorage, type Storage } from '../store/storage.js';

const dirs: string[] = [];
const opened: Storage[] = [];
after(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function storage(dir?: string): Promise<{ storage: Storage; dir: string }> {
  const at = dir ?? (await mkdtemp(join(tmpdir(), 'keys-')));
  if (!dir) dirs.push(at);
  const s = await openStorage({ dataDir: at });
  opened.push(s);
  return { storage: s, dir: at };
}

test('a created key is prefixed, ≥128 bits, and only its hash is stored', async () => {
  const { storage: s, dir } = await storage();
  const keys = s.keys;
  const { record, secret } = await keys.create({ origins: ['https://a.example'], label: 'shop' });
  assert.ok(secret.startsWith(CLIENT_KEY_PREFIX));
  assert.ok(Buffer.from(secret.slice(CLIENT_KEY_PREFIX.length), 'base64url').length >= 16);
  let onDisk = '';
  for (const name of await readdir(dir))
    onDisk += (await readFile(join(dir, name))).toString('latin1');
  assert.ok(!onDisk.includes(secret), 'the secret must not be written to disk');
  assert.ok(onDisk.includes(hashSecret(secret)));
  assert.equal((await keys.findBySecret(secret))?.id, record.id);
  assert.equal(await keys.findBySecret(`${secret}x`), undefined);
  assert.equal(await keys.findBySecret('sk-not-ours'), undefined);
});

test('a key needs valid origins', async () => {
  const { storage: s } = await storage();
  await assert.rejects(s.keys.create({ origins: [] }), /at least one allowed origin/);
  await assert.rejects(s.keys.create({ origins: ['example.com'] }), /not an origin/);
  assert.deepEqual(await s.keys.list(), []);
});

test('revocation written through one connection (the CLI) is seen by another (a running relay)', async () => {
  const { storage: relay, dir } = await storage();
  const { storage: cli } = await storage(dir);
  const { record, secret } = await relay.keys.create({ origins: ['https://a.example'] });
  assert.equal((await relay.keys.findBySecret(secret))?.revoked_at, null);
  assert.deepEqual(await relay.keys.revokedAmong([record.id]), []);
  assert.equal(await cli.keys.revoke(record.id), true);
  assert.equal(await cli.keys.revoke(record.id), true, 'revoking twice is harmless');
  assert.equal(await cli.keys.revoke('key_missing'), false);
  assert.notEqual((await relay.keys.findBySecret(secret))?.revoked_at, null);
  assert.deepEqual(await relay.keys.revokedAmong([record.id, 'key_gone']), [record.id, 'key_gone']);
  assert.equal((await relay.keys.list()).length, 1);
});

test('stores sharing one database (cluster workers, the CLI) never undo each other’s changes', async () => {
  const { storage: a, dir } = await storage();
  const { storage: b } = await storage(dir);
  const first = await a.keys.create({ origins: ['https://a.example'] });
  const results = await Promise.all([
    ...Array.from({ length: 8 }, (_, i) =>
      b.keys.create({ origins: ['https://b.example'], label: `b${i}` }),
    ),
    a.keys.revoke(first.record.id),
    a.keys.update(first.record.id, { label: 'renamed' }),
  ]);
  const created = results.slice(0, 8) as { record: { id: string } }[];
  const { storage: fresh } = await storage(dir);
  const all = await fresh.keys.list();
  assert.equal(all.length, 9);
  for (const { record } of created) assert.ok(all.some((k) => k.id === record.id));
  const revoked = all.find((k) => k.id === first.record.id);
  assert.ok(revoked?.revoked_at, 'the revocation survived the concurrent writes');
  assert.equal(revoked?.label, 'renamed');
  assert.ok((await b.keys.get(first.record.id))?.revoked_at, 'the other store sees it too');
});
