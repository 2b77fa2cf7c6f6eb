/**
 * The console's API client against a real relay (SQLite, the fake provider): the session cookie
 * and CSRF header, and how the relay's refusals become ApiErrors. A small cookie jar stands in
 * for the browser's.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startRelay, type RelayHarness } from '../../../test/support/relay.js';
import { ApiError, CSRF_HEADER, ConsoleApi } from './api.js';

const ADMIN = 'admin-token-for-console-api-tests-0123';

let harness: RelayHarness;

before(async () => {
  harness = await startRelay({ relay: { adminToken: ADMIN } });
});

after(async () => {
  await harness?.close();
});

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
