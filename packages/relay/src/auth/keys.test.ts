import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLIENT_KEY_PREFIX, KeyStore, hashSecret } from './keys.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function store(): Promise<KeyStore> {
  const dir = await mkdtemp(join(tmpdir(), 'keys-'));
  dirs.push(dir);
  return KeyStore.inDataDir(dir);
}

test('a created key is prefixed, ≥128 bits, and only its hash is stored', async () => {
  const keys = await store();
  const { record, secret } = await keys.create({ origins: ['https://a.example'], label: 'shop' });
  assert.ok(secret.startsWith(CLIENT_KEY_PREFIX));
  assert.ok(Buffer.from(secret.slice(CLIENT_KEY_PREFIX.length), 'base64url').length >= 16);
  const file = await readFile(keys.file, 'utf8');
  assert.ok(!file.includes(secret), 'the secret must not be written to disk');
  assert.ok(file.includes(hashSecret(secret)));
  assert.equal((await keys.findBySecret(secret))?.id, record.id);
  assert.equal(await keys.findBySecret(`${secret}x`), undefined);
  assert.equal(await keys.findBySecret('sk-not-ours'), undefined);
});

test('a key needs valid origins', async () => {
  const keys = await store();
  await assert.rejects(keys.create({ origins: [] }), /at least one allowed origin/);
  await assert.rejects(keys.create({ origins: ['example.com'] }), /not an origin/);
});

test('revocation written by one store (the CLI) is seen by another (a running relay)', async () => {
  const relayView = await store();
  const cliView = new KeyStore(relayView.file);
  const { record, secret } = await relayView.create({ origins: ['https://a.example'] });
  assert.equal((await relayView.findBySecret(secret))?.revoked_at, null);
  assert.equal(await cliView.revoke(record.id), true);
  assert.equal(await cliView.revoke('key_missing'), false);
  // mtime resolution can be coarse: make sure the relay sees a changed file
  await new Promise((r) => setTimeout(r, 20));
  assert.notEqual((await relayView.findBySecret(secret))?.revoked_at, null);
  assert.equal((await relayView.list()).length, 1);
});

test('stores sharing one file (cluster workers, the CLI) never undo each other’s changes', async () => {
  const a = await store();
  const b = new KeyStore(a.file);
  const first = await a.create({ origins: ['https://a.example'] });
  // Interleaved: b creates keys while a revokes and relabels, all at once.
  const results = await Promise.all([
    ...Array.from({ length: 8 }, (_, i) =>
      b.create({ origins: ['https://b.example'], label: `b${i}` }),
    ),
    a.revoke(first.record.id),
    a.update(first.record.id, { label: 'renamed' }),
  ]);
  const created = results.slice(0, 8) as { record: { id: string } }[];
  const fresh = new KeyStore(a.file);
  const all = await fresh.list();
  assert.equal(all.length, 9);
  for (const { record } of created) assert.ok(all.some((k) => k.id === record.id));
  const revoked = all.find((k) => k.id === first.record.id);
  assert.ok(revoked?.revoked_at, 'the revocation survived the concurrent writes');
  assert.equal(revoked?.label, 'renamed');
  assert.ok((await b.get(first.record.id))?.revoked_at, 'the other store sees it too');
});
