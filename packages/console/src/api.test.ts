/**
 * The console's API client against a real relay (SQLite, the fake provider): the session cookie
 * and CSRF header, and how the relay's refusals become ApiErrors. A small cookie jar stands in
 * for the browser's.
 */
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MAX_KNOWLEDGE_BODY_BYTES as RELAY_KNOWLEDGE_BODY_BYTES } from '../../relay/src/http/admin-knowledge.js';
import { startRelay, type RelayHarness } from '../../../test/support/relay.js';
import {
  ApiError,
  CSRF_HEADER,
  ConsoleApi,
  MAX_KNOWLEDGE_BODY_BYTES,
  MAX_UPLOAD_BYTES,
  type Delivery,
} from './api.js';

const ADMIN = 'admin-token-for-console-api-tests-0123';

let harness: RelayHarness;
/** The webhook endpoint: answers 500 while `failing`, then 204. */
const hook = { failing: true, url: '', close: () => {} };

before(async () => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(hook.failing ? 500 : 204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  hook.close = () => server.close();
  harness = await startRelay({
    relay: {
      adminToken: ADMIN,
      toolAllowHosts: ['127.0.0.1'],
      webhooks: [{ url: hook.url, events: ['conversation.ended'], secretEnv: 'HOOK_SECRET' }],
      webhookEnv: { HOOK_SECRET: 'whsec-console-api-tests-0123456789' },
      recordsTiming: {
        webhookPollMs: 50,
        webhookRetry: { baseMs: 20, maxMs: 40, giveUpAfterMs: 150 },
      },
    },
  });
});

after(async () => {
  await harness?.close();
  hook.close();
});

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`never done: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** fetch with one cookie jar (what the browser does for the page), recording what was sent. */
function browserLikeFetch() {
  let cookie = '';
  const sent: { method: string; path: string; search: string; headers: Headers }[] = [];
  const fetchImpl = async (input: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookie) headers.set('cookie', cookie);
    // The browser sends Origin on a POST; the try-out key is made for it.
    headers.set('origin', harness.url);
    const url = new URL(input);
    sent.push({ method: init.method ?? 'GET', path: url.pathname, search: url.search, headers });
    const response = await fetch(input, { ...init, headers });
    const set = response.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0] ?? '';
    return response;
  };
  return { fetchImpl, sent, cookie: () => cookie };
}

describe('ConsoleApi', () => {
  test('sign-in keeps the CSRF token and sends it on changes only; sign-out ends the session', async () => {
    const browser = browserLikeFetch();
    const api = new ConsoleApi(harness.url, browser.fetchImpl);
    assert.equal(await api.resume(), undefined);
    const session = await api.signIn(ADMIN);
    assert.ok(session.csrf.length >= 32);
    assert.ok(browser.cookie().startsWith('vb_console='));

    // A "to" date includes that day (the API's bound is exclusive).
    await api.conversations({ to: '2026-03-31', bot: 'default' });
    const listed = browser.sent.find((r) => r.path === '/admin/conversations');
    assert.equal(listed?.search, '?to=2026-04-01&bot=default&limit=50');
    const keys = await api.keys();
    assert.ok(keys.some((k) => k.id === harness.keyId));
    const created = await api.createKey({
      label: 'from the console',
      origins: ['https://shop.example'],
      bots: [],
    });
    assert.match(created.key, /^vb_pk_/);
    const get = browser.sent.find((r) => r.method === 'GET' && r.path === '/admin/keys');
    const post = browser.sent.find((r) => r.method === 'POST' && r.path === '/admin/keys');
    assert.equal(get?.headers.get(CSRF_HEADER), null);
    assert.equal(post?.headers.get(CSRF_HEADER), session.csrf);

    // The change is audited with the console as its actor.
    const audit = await harness.storage.audit.list({ keyId: created.id });
    assert.equal(audit[0]?.actor.kind, 'console');

    // A reload: the cookie alone finds the session and its CSRF token again.
    const reloaded = new ConsoleApi(harness.url, browser.fetchImpl);
    assert.equal((await reloaded.resume())?.csrf, session.csrf);

    await api.signOut();
    await assert.rejects(api.keys(), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 401);
      assert.equal(error.code, 'unauthorized');
      assert.ok(error.signedOut);
      return true;
    });
  });

  test("the relay's refusals become ApiErrors with its code and message", async () => {
    const api = new ConsoleApi(harness.url, browserLikeFetch().fetchImpl);
    await assert.rejects(api.signIn('not-the-admin-token-at-all'), {
      name: 'ApiError',
      status: 401,
      code: 'unauthorized',
      message: 'that is not the admin token',
    });
    await api.signIn(ADMIN);
    await assert.rejects(api.createKey({ label: 'x', origins: ['not an origin'], bots: [] }), {
      status: 400,
      code: 'bad_request',
    });
    await assert.rejects(api.updateKey(harness.keyId, { bots: ['nobody'] }), {
      status: 400,
      message: 'there is no bot "nobody"',
    });
    await assert.rejects(api.revokeKey('key_missing'), { status: 404, code: 'not_found' });
    await assert.rejects(api.conversations({ sentiment: 'great' }), {
      status: 400,
      message: 'sentiment must be one of positive, neutral, negative',
    });
    const unreachable = new ConsoleApi('http://127.0.0.1:1');
    await assert.rejects(unreachable.keys(), { status: 0, code: 'network' });
  });

  test('a change without the CSRF header is refused (403) although the cookie is valid', async () => {
    const browser = browserLikeFetch();
    const api = new ConsoleApi(harness.url, browser.fetchImpl);
    await api.signIn(ADMIN);
    const response = await browser.fetchImpl(`${harness.url}/admin/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ origins: ['https://csrf.example'] }),
    });
    assert.equal(response.status, 403);
    assert.ok(!(await harness.keys.list()).some((k) => k.origins.includes('https://csrf.example')));
  });

  test('audit log: the console is the actor of its key changes; filter by key; limit checked', async () => {
    const api = new ConsoleApi(harness.url, browserLikeFetch().fetchImpl);
    await api.signIn(ADMIN);
    const created = await api.createKey({
      label: 'audited',
      origins: ['https://a.example'],
      bots: [],
    });
    await api.updateKey(created.id, { label: 'audited twice', origins: ['https://b.example'] });
    const entries = await api.audit({ key: created.id });
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor.kind, e.key_id]),
      [
        ['key.update', 'console', created.id],
        ['key.create', 'console', created.id],
      ],
    );
    assert.deepEqual(entries[0]?.detail, {
      fields: ['origins', 'label'],
      origins: ['https://b.example'],
      label: 'audited twice',
    });
    assert.equal((await api.audit({ limit: 1 })).length, 1);
    assert.ok(
      (await api.audit()).some((e) => e.key_id === harness.keyId),
      'every key by default',
    );
    await assert.rejects(api.audit({ limit: 501 }), {
      status: 400,
      message: 'limit must be 1 to 500',
    });
  });

  test('webhook deliveries: a failed one is listed with its attempts, retried (with the CSRF header) and delivered', async () => {
    const browser = browserLikeFetch();
    const api = new ConsoleApi(harness.url, browser.fetchImpl);
    const session = await api.signIn(ADMIN);
    hook.failing = true;
    await harness.relay.webhooks.enqueue('conversation.ended', 'default', {
      conversation_id: 'conv_console_api',
    });
    const page = await until(
      () => api.deliveries({ status: 'failed' }),
      (p) => p.deliveries.length === 1,
    );
    assert.equal(page.configured, true);
    const failed = page.deliveries[0] as Delivery;
    assert.equal(failed.event, 'conversation.ended');
    assert.equal(failed.conversation_id, 'conv_console_api');
    assert.ok(failed.attempts >= 1);
    assert.equal(failed.last_status, 500);
    assert.equal(failed.next_attempt_at, null);
    assert.deepEqual(
      (await api.deliveries({ event: 'handoff.requested' })).deliveries,
      [],
      'the event filter is sent',
    );
    assert.deepEqual(await api.delivery(failed.id), failed);

    hook.failing = false;
    const retried = await api.retryDelivery(failed.id);
    assert.ok(retried.status === 'pending' || retried.status === 'delivered');
    const retry = browser.sent.find((r) => r.path.endsWith('/retry'));
    assert.equal(retry?.headers.get(CSRF_HEADER), session.csrf);
    const delivered = await until(
      () => api.delivery(failed.id),
      (d) => d.status === 'delivered',
    );
    assert.equal(delivered.attempts, failed.attempts + 1);
    assert.equal(delivered.log.at(-1)?.status, 204);

    await assert.rejects(api.delivery('conv_not_a_delivery'), {
      status: 400,
      message: 'the id must be a whd_… id',
    });
    await assert.rejects(api.retryDelivery('whd_missing'), { status: 404, code: 'not_found' });

    const plain = await startRelay({ relay: { adminToken: ADMIN } });
    try {
      const other = new ConsoleApi(plain.url, browserLikeFetch().fetchImpl);
      await other.signIn(ADMIN);
      assert.deepEqual(await other.deliveries(), {
        deliveries: [],
        next_cursor: null,
        configured: false,
      });
    } finally {
      await plain.close();
    }
  });

  test('knowledge: a collection with a document is deleted; deleting it again is a 404', async () => {
    const api = new ConsoleApi(harness.url, browserLikeFetch().fetchImpl);
    await api.signIn(ADMIN);
    await api.createCollection('leaflets');
    const report = await api.addDocuments('leaflets', {
      files: [
        {
          filename: 'hours.md',
          content: Buffer.from('# Hours\n\nOpen 8 to 6.').toString('base64'),
        },
      ],
    });
    assert.equal(report.added, 1);
    assert.deepEqual((await api.collections()).find((c) => c.name === 'leaflets')?.documents, 1);
    assert.deepEqual(await api.deleteCollection('leaflets'), { name: 'leaflets', deleted: true });
    assert.ok(!(await api.collections()).some((c) => c.name === 'leaflets'));
    await assert.rejects(api.deleteCollection('leaflets'), { status: 404, code: 'not_found' });
  });

  test("the upload limit is the relay's body limit less base64's growth", () => {
    assert.equal(MAX_KNOWLEDGE_BODY_BYTES, RELAY_KNOWLEDGE_BODY_BYTES);
    // The largest upload, as the console sends it, fits the relay's limit with room for the JSON.
    const base64Length = Math.ceil(MAX_UPLOAD_BYTES / 3) * 4;
    const wrapper = JSON.stringify({ files: [{ filename: 'x'.repeat(255), content: '' }] }).length;
    assert.ok(base64Length + wrapper <= MAX_KNOWLEDGE_BODY_BYTES);
    assert.ok(MAX_UPLOAD_BYTES > 23.9 * 1024 * 1024, 'about 24 MB of files');
  });

  test('the cookie is Secure unless the relay is reached on a loopback name', async () => {
    const signIn = (host: string) =>
      new Promise<string>((resolve, reject) => {
        const req = request(
          `${harness.url}/console/session`,
          { method: 'POST', headers: { host, 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            resolve(String(res.headers['set-cookie']?.[0] ?? ''));
          },
        );
        req.once('error', reject);
        req.end(JSON.stringify({ token: ADMIN }));
      });
    const remote = await signIn('relay.example.com');
    assert.match(remote, /; HttpOnly; SameSite=Strict; Path=\/; Max-Age=28800; Secure$/);
    const local = await signIn('localhost:8787');
    assert.match(local, /; HttpOnly; SameSite=Strict; Path=\/; Max-Age=28800$/);
  });
});
