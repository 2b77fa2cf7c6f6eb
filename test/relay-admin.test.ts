import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLOSE_CODES } from '@voice-bot/protocol';
import { KeyStore, createRelay } from '@voice-bot/relay';
import {
  FIXTURES,
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  readWav,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

interface KeyView {
  id: string;
  key?: string;
  label: string;
  hint: string;
  origins: string[];
  bots: string[];
  limits: Record<string, number>;
  effective_limits: Record<string, number>;
  open_sessions: number;
  revoked_at: string | null;
  hash?: string;
}

describe('admin API disabled without a token', () => {
  test('every /admin path is a 404', async () => {
    const h = await startRelay();
    try {
      for (const [method, path] of [
        ['GET', '/admin/keys'],
        ['POST', '/admin/keys'],
        ['GET', `/admin/keys/${h.keyId}/usage`],
      ] as const) {
        const res = await fetch(`${h.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        assert.equal(res.status, 404, `${method} ${path}`);
      }
    } finally {
      await h.close();
    }
  });

  test('a short admin token is a configuration error', async () => {
    const keys = KeyStore.inDataDir(join(tmpdir(), 'voicebot-never-written'));
    assert.throws(() => createRelay({ keys, adminToken: 'short' }), /at least 16 characters/);
    assert.throws(() => createRelay({ keys, metricsToken: 'short' }), /at least 16 characters/);
  });
});

describe('admin API', () => {
  let h: RelayHarness;
  const secrets: string[] = [];
  const sessionTokens: string[] = [];

  async function admin(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = ADMIN_TOKEN,
  ): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${h.url}/admin${path}`, {
      method,
      headers,
      ...(body !== undefined
        ? { body: typeof body === 'string' ? body : JSON.stringify(body) }
        : {}),
    });
    return {
      status: res.status,
      json: (await res.json()) as Record<string, unknown>,
      headers: res.headers,
    };
  }

  async function create(body: Record<string, unknown>): Promise<KeyView> {
    const res = await admin('POST', '/keys', body);
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const view = res.json as unknown as KeyView;
    if (view.key) secrets.push(view.key);
    return view;
  }

  async function talk(
    key: string,
    start: Parameters<TalkClient['start']>[0] = { input: 'text', output: 'text' },
  ): Promise<TalkClient> {
    const s = await createSession(h.url, { key, origin: ORIGIN });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    sessionTokens.push(s.body.token as string);
    const client = await connectTalk(s.body.ws_url as string, s.body.token, ORIGIN);
    assert.ok(client instanceof TalkClient);
    client.start(start);
    await client.next('ready');
    return client;
  }

  before(async () => {
    h = await startRelay({
      upstream: {
        transcribe: () => 'What time is it?',
        chat: () => ({
          content: 'It is time for a test. Nothing else to say.',
          usage: { prompt_tokens: 40, completion_tokens: 12 },
        }),
      },
      relay: {
        adminToken: ADMIN_TOKEN,
        metricsToken: METRICS_TOKEN,
        bots: [
          { id: 'support', name: 'Support', systemPrompt: 'Help.' },
          { id: 'sales', name: 'Sales', systemPrompt: 'Sell.' },
        ],
      },
    });
    secrets.push(h.key);
  });
  after(() => h.close());

  test('refuses a missing, malformed or wrong token with 401', async () => {
    const wrongSameLength = ADMIN_TOKEN.replace(/.$/, 'X');
    for (const token of [
      null,
      '',
      'nope',
      wrongSameLength,
      `${ADMIN_TOKEN}x`,
      ADMIN_TOKEN.toUpperCase(),
    ]) {
      const res = await admin('GET', '/keys', undefined, token);
      assert.equal(res.status, 401, `token ${String(token)}`);
      assert.deepEqual((res.json.error as { code: string }).code, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const basic = await fetch(`${h.url}/admin/keys`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` },
    });
    assert.equal(basic.status, 401);
    const post = await admin(
      'POST',
      '/keys',
      { origins: [ORIGIN] },
      'wrong-token-0123456789abcdef',
    );
    assert.equal(post.status, 401, 'nothing is created without the token');
    assert.equal((await admin('GET', '/keys')).status, 200);
  });

  test('usage/live counts a turn the moment it ends: turns per minute on the first look after it', async () => {
    const live = async () => {
      const res = await admin('GET', '/usage/live');
      assert.equal(res.status, 200);
      return res.json as { turns_per_minute: number | null; turns_today: number };
    };
    const before = await live();
    assert.equal(before.turns_per_minute, 0, 'no turn yet: zero, not unknown');
    const client = await talk(h.key);
    client.send({ type: 'text', text: 'hello' });
    await client.next('done');
    const after = await live();
    assert.ok((after.turns_per_minute ?? 0) >= 0.9, JSON.stringify(after));
    assert.equal(after.turns_today, before.turns_today + 1);
    client.close();
    await client.closed;
  });

  test('creates a key: the secret is shown once, prefixed and long; only its hash is stored', async () => {
    const view = await create({
      origins: [ORIGIN],
      bots: ['support'],
      label: 'Main site',
      limits: { maxTextChars: 40 },
    });
    assert.match(view.key ?? '', /^vb_pk_[A-Za-z0-9_-]{32}$/, '192 random bits');
    assert.equal(view.hash, undefined);
    assert.equal(view.label, 'Main site');
    assert.deepEqual(view.limits, { maxTextChars: 40 });
    assert.equal(view.effective_limits.maxTextChars, 40);
    assert.equal(view.effective_limits.maxJsonBytes, 16_384);
    assert.equal(view.hint, view.key?.slice(-4));
    const fetched = await admin('GET', `/keys/${view.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.json.key, undefined, 'the secret is never shown again');
    assert.equal(fetched.json.hash, undefined);
    const list = await admin('GET', '/keys');
    const keys = list.json.keys as KeyView[];
    assert.ok(keys.some((k) => k.id === view.id));
    assert.ok(keys.every((k) => k.key === undefined && k.hash === undefined));
    assert.ok(!JSON.stringify(list.json).includes(view.key as string));
    assert.equal(list.headers.get('cache-control'), 'no-store');

    // The new key works, within its scope and limits.
    const client = await talk(view.key as string);
    client.send({ type: 'text', text: 'x'.repeat(41) });
    assert.equal((await client.next('error')).code, 'text_too_long');
    client.close();
    assert.equal(
      (await createSession(h.url, { key: view.key as string, origin: ORIGIN, bot: 'sales' })).body
        .error?.code,
      'bot_not_allowed',
    );
  });

  test('validates what it is given', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /origins/],
      [{ origins: [] }, /origins/],
      [{ origins: ['not a url'] }, /./],
      [{ origins: ['https://*.com.*'] }, /./],
      [{ origins: [ORIGIN], bots: ['nope'] }, /no bot/],
      [{ origins: [ORIGIN], limits: { maxTextChars: -1 } }, /maxTextChars/],
      [{ origins: [ORIGIN], limits: { maxConversations: 5 } }, /not a per-key limit/],
      [{ origins: [ORIGIN], limits: { maxJsonBytes: 0 } }, /maxJsonBytes/],
      [{ origins: [ORIGIN], label: 42 }, /label/],
      ['[1]', /JSON object/],
      ['{nope', /JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await admin('POST', '/keys', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = res.json.error as { code: string; message: string };
      assert.equal(error.code, 'bad_request');
      assert.match(error.message, message);
    }
    assert.equal((await admin('GET', '/keys/key_nope')).status, 404);
    assert.equal((await admin('PATCH', '/keys/key_nope', { label: 'x' })).status, 404);
    assert.equal((await admin('POST', '/keys/key_nope/revoke')).status, 404);
    assert.equal((await admin('GET', `/keys/${h.keyId}/usage?days=99`)).status, 400);
  });

  test('updates origins, bots, label and limits', async () => {
    const view = await create({
      origins: ['https://old.test'],
      limits: { maxTextChars: 40, maxJsonBytes: 4096 },
    });
    const patched = await admin('PATCH', `/keys/${view.id}`, {
      origins: [ORIGIN],
      bots: ['sales'],
      label: 'renamed',
      limits: { maxTextChars: null, messagesPerSecond: 5 },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    const updated = patched.json as unknown as KeyView;
    assert.deepEqual(updated.origins, [ORIGIN]);
    assert.deepEqual(updated.bots, ['sales']);
    assert.equal(updated.label, 'renamed');
    assert.deepEqual(updated.limits, { maxJsonBytes: 4096, messagesPerSecond: 5 });
    assert.equal(updated.effective_limits.maxTextChars, 2_000);
    assert.equal(
      (await createSession(h.url, { key: view.key as string, origin: 'https://old.test' })).status,
      403,
    );
    assert.equal(
      (await createSession(h.url, { key: view.key as string, origin: ORIGIN, bot: 'sales' }))
        .status,
      201,
    );
    assert.equal((await admin('PATCH', `/keys/${view.id}`, { hash: 'x' })).status, 400);
    assert.equal((await admin('PATCH', `/keys/${view.id}`, { origins: [] })).status, 400);
    const cleared = await admin('PATCH', `/keys/${view.id}`, { limits: null });
    assert.deepEqual((cleared.json as unknown as KeyView).limits, {});
  });

  test('reports usage per key: sessions, audio minutes, tokens, errors', async () => {
    const view = await create({ origins: [ORIGIN], limits: { maxTextChars: 20 } });
    const client = await talk(view.key as string, { input: 'audio', output: 'audio' });
    const { pcm } = await readWav(join(FIXTURES, '16k/hours.wav'));
    await client.sendPcm(pcm, 40);
    client.send({ type: 'commit' });
    const done = await client.next('done');
    assert.ok(client.audioBytes(done.turn_id) > 0);
    client.send({ type: 'text', text: 'x'.repeat(21) });
    assert.equal((await client.next('error')).code, 'text_too_long');
    client.close();
    await client.closed;
    const res = await admin('GET', `/keys/${view.id}/usage?days=2`);
    assert.equal(res.status, 200);
    const days = res.json.days as {
      date: string;
      sessions: number;
      sockets: number;
      turns: number;
      audio_minutes: number;
      llm_tokens: number;
      errors: Record<string, number>;
    }[];
    assert.equal(days.length, 2);
    const today = days[0];
    assert.ok(today);
    assert.equal(today.date, new Date().toISOString().slice(0, 10));
    assert.equal(today.sessions, 1);
    assert.equal(today.sockets, 1);
    assert.ok(today.turns >= 1);
    assert.ok(
      Math.abs(today.audio_minutes - pcm.byteLength / 32 / 60_000) < 0.001,
      `audio ${today.audio_minutes} min`,
    );
    assert.ok(today.llm_tokens >= 52, `tokens ${today.llm_tokens}`);
    assert.equal(
      Object.values(today.errors).reduce((a, b) => a + b, 0),
      1,
    );
    assert.equal(days[1]?.sessions, 0);
  });

  test('revoking closes the key’s open sessions at once (4003) and refuses new ones', async () => {
    const view = await create({ origins: [ORIGIN] });
    const other = await create({ origins: [ORIGIN] });
    const first = await talk(view.key as string);
    const second = await talk(view.key as string);
    const bystander = await talk(other.key as string);
    const started = Date.now();
    const res = await admin('POST', `/keys/${view.id}/revoke`);
    assert.equal(res.status, 200);
    assert.equal(res.json.closed_sessions, 2);
    assert.equal(typeof res.json.revoked_at, 'string');
    for (const client of [first, second]) {
      const closed = await client.closed;
      assert.equal(closed.code, CLOSE_CODES.keyRevoked);
      assert.equal(client.of('error').at(-1)?.code, 'key_revoked');
    }
    assert.ok(Date.now() - started < 5_000);
    assert.equal(
      (await createSession(h.url, { key: view.key as string, origin: ORIGIN })).body.error?.code,
      'key_revoked',
    );
    bystander.send({ type: 'text', text: 'hello' });
    await bystander.next('done');
    // DELETE revokes too.
    const third = await talk(other.key as string);
    assert.equal((await admin('DELETE', `/keys/${other.id}`)).status, 200);
    assert.equal((await third.closed).code, CLOSE_CODES.keyRevoked);
    assert.equal((await bystander.closed).code, CLOSE_CODES.keyRevoked);
    const listed = (await admin('GET', `/keys/${view.id}`)).json as unknown as KeyView;
    assert.ok(listed.revoked_at);
  });

  test('GET /admin/audit lists who changed which key, newest first, bounded', async () => {
    const view = await create({ origins: [ORIGIN], label: 'audited' });
    assert.equal((await admin('PATCH', `/keys/${view.id}`, { label: 'renamed' })).status, 200);
    assert.equal((await admin('POST', `/keys/${view.id}/revoke`)).status, 200);
    const res = await admin('GET', `/audit?key=${view.id}`);
    assert.equal(res.status, 200);
    const entries = res.json.entries as {
      action: string;
      key_id: string;
      actor: { kind: string; ip?: string };
      detail: Record<string, unknown>;
    }[];
    assert.deepEqual(
      entries.map((e) => e.action),
      ['key.revoke', 'key.update', 'key.create'],
    );
    for (const entry of entries) {
      assert.equal(entry.key_id, view.id);
      assert.equal(entry.actor.kind, 'admin-api');
      assert.equal(entry.actor.ip, '127.0.0.1');
    }
    assert.equal(entries[1]?.detail.label, 'renamed');
    const one = await admin('GET', '/audit?limit=1');
    assert.equal((one.json.entries as unknown[]).length, 1);
    assert.equal((one.json.entries as { action: string }[])[0]?.action, 'key.revoke');
    for (const limit of ['0', '501', 'many'])
      assert.equal((await admin('GET', `/audit?limit=${limit}`)).status, 400, limit);
    assert.equal((await admin('GET', '/audit', undefined, null)).status, 401);
  });

  test('no secret ever reaches the logs', async () => {
    // One more full audio turn with an error, plus metrics and refused admin calls, then read everything logged.
    const client = await talk(h.key, { input: 'audio', output: 'audio' });
    const { pcm } = await readWav(join(FIXTURES, '16k/hours.wav'));
    await client.sendPcm(pcm, 40);
    client.send({ type: 'commit' });
    await client.next('done');
    client.sendRaw(new Uint8Array(3));
    await client.next('error');
    client.close();
    await client.closed;
    await admin('GET', '/keys', undefined, `${ADMIN_TOKEN}-wrong`);
    await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    await fetch(`${h.url}/v1/sessions`, {
      method: 'POST',
      headers: { origin: ORIGIN, authorization: `Bearer ${h.key}x` },
    });

    const logs = h.logs.join('\n');
    assert.ok(h.logs.length > 20, `${h.logs.length} lines captured`);
    assert.ok(secrets.length >= 5 && sessionTokens.length >= 5);
    for (const secret of secrets) assert.ok(!logs.includes(secret), 'no client key secret');
    for (const secret of secrets)
      assert.ok(!logs.includes(secret.slice(6)), 'not even without its prefix');
    for (const token of sessionTokens) {
      assert.ok(!logs.includes(token), 'no session token');
      assert.ok(!logs.includes(token.split('.')[2] as string), 'no token signature');
    }
    for (const secret of [
      ADMIN_TOKEN,
      METRICS_TOKEN,
      'sk-upstream-secret',
      'test-secret-test-secret-test-secret-0123',
    ]) {
      assert.ok(!logs.includes(secret), `no ${secret.slice(0, 5)}…`);
    }
    assert.doesNotMatch(logs, /vb_pk_[A-Za-z0-9_-]{8,}/, 'nothing that looks like a client key');
    assert.doesNotMatch(logs, /[A-Za-z0-9+/=_-]{120,}/, 'no base64 blobs (audio, tokens)');
    for (const line of h.logs) {
      assert.ok(line.length < 2_000, `short log lines: ${line.slice(0, 120)}`);
      const entry = JSON.parse(line) as { msg?: string; session?: string };
      if (
        [
          'socket open',
          'session started',
          'socket closed',
          'turn failed',
          'interrupted',
          'idle timeout',
        ].includes(entry.msg ?? '')
      ) {
        assert.match(entry.session ?? '', /^sess_/, `session id on "${entry.msg}"`);
      }
    }
  });
});
