import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, decodeJwt } from 'jose';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../packages/relay/src/auth/tokens.js';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const BOTS = [
  { id: 'support', name: 'Support', systemPrompt: 'Help.' },
  { id: 'sales', name: 'Sales', systemPrompt: 'Sell.' },
];

describe('session tokens and the WebSocket upgrade', () => {
  let h: RelayHarness;
  let supportOnlyKey: string;
  before(async () => {
    h = await startRelay({ relay: { bots: BOTS } });
    supportOnlyKey = (await h.keys.create({ origins: ['https://*.shop.test'], bots: ['support'] }))
      .secret;
  });
  after(() => h.close());

  test('an allowed origin gets a short-lived token bound to key, origin and bot', async () => {
    const res = await createSession(h.url, { key: h.key, origin: ORIGIN });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    const { token, ws_url, expires_at } = res.body;
    assert.ok(token && ws_url && expires_at);
    assert.match(ws_url, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/talk$/);
    const claims = decodeJwt(token);
    assert.equal(claims.sub, h.keyId);
    assert.equal(claims.origin, ORIGIN);
    assert.equal(claims.bot, 'support', 'the first bot is the default');
    assert.equal(claims.aud, TOKEN_AUDIENCE);
    assert.ok(typeof claims.jti === 'string' && claims.jti.length >= 16);
    const ttl = (claims.exp ?? 0) - (claims.iat ?? 0);
    assert.ok(ttl > 0 && ttl <= 600, `ttl ${ttl}s`);
  });

  test('the key can also travel in the JSON body', async () => {
    const res = await fetch(`${h.url}/v1/sessions`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ key: h.key, bot: 'sales' }),
    });
    assert.equal(res.status, 201);
    assert.equal(decodeJwt(((await res.json()) as { token: string }).token).bot, 'sales');
  });

  test('refusals carry typed JSON errors', async () => {
    const cases: [string, Parameters<typeof createSession>[1], number, string][] = [
      ['no key', { origin: ORIGIN }, 401, 'invalid_key'],
      ['unknown key', { key: 'vb_pk_doesnotexist', origin: ORIGIN }, 401, 'invalid_key'],
      ['wrong origin', { key: h.key, origin: 'https://evil.test' }, 403, 'origin_not_allowed'],
      ['missing origin', { key: h.key }, 403, 'missing_origin'],
      ['unknown bot', { key: h.key, origin: ORIGIN, bot: 'nope' }, 403, 'unknown_bot'],
      [
        'bot not allowed for key',
        { key: supportOnlyKey, origin: 'https://www.shop.test', bot: 'sales' },
        403,
        'bot_not_allowed',
      ],
      [
        'wildcard does not cover the bare domain',
        { key: supportOnlyKey, origin: 'https://shop.test' },
        403,
        'origin_not_allowed',
      ],
    ];
    for (const [name, init, status, code] of cases) {
      const res = await createSession(h.url, init);
      assert.equal(res.status, status, name);
      assert.equal(res.body.error?.code, code, name);
      assert.equal(res.body.token, undefined, name);
    }
    assert.equal(
      (await createSession(h.url, { key: supportOnlyKey, origin: 'https://www.shop.test' })).status,
      201,
    );
  });

  test('a revoked key is refused at once', async () => {
    const { record, secret } = await h.keys.create({ origins: [ORIGIN] });
    assert.equal((await createSession(h.url, { key: secret, origin: ORIGIN })).status, 201);
    await h.keys.revoke(record.id);
    const res = await createSession(h.url, { key: secret, origin: ORIGIN });
    assert.equal(res.status, 401);
    assert.equal(res.body.error?.code, 'key_revoked');
  });

  test('malformed session requests get 400', async () => {
    const res = await fetch(`${h.url}/v1/sessions`, {
      method: 'POST',
      headers: { origin: ORIGIN, authorization: `Bearer ${h.key}` },
      body: '{nope',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'bad_request');
  });

  test('CORS preflight is answered for the page origin', async () => {
    const res = await fetch(`${h.url}/v1/sessions`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
  });

  describe('upgrade', () => {
    async function token(origin = ORIGIN): Promise<{ token: string; ws: string }> {
      const res = await createSession(h.url, { key: h.key, origin });
      assert.equal(res.status, 201);
      return { token: res.body.token as string, ws: res.body.ws_url as string };
    }

    test('a valid token from the same origin upgrades, selecting voicebot.v1', async () => {
      const { token: t, ws } = await token();
      const talk = await connectTalk(ws, t, ORIGIN);
      assert.ok(talk instanceof TalkClient);
      assert.equal(talk.ws.protocol, 'voicebot.v1');
      talk.close();
    });

    test('refused before upgrading, and before any upstream call', async () => {
      const before = h.upstream.requests.length;
      const { token: t, ws } = await token();
      const secret = new TextEncoder().encode('test-secret-test-secret-test-secret-0123');
      const claims = decodeJwt(t);
      const expired = await new SignJWT({ origin: ORIGIN, bot: 'support' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setSubject(h.keyId)
        .setJti('expired-jti-000000')
        .setIssuedAt(Math.floor(Date.now() / 1000) - 1200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
        .sign(secret);
      const forged = await new SignJWT({ ...claims, origin: ORIGIN })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('another-secret-another-secret-another'));
      const [header, payload, signature] = t.split('.');
      const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, bot: 'sales' })).toString('base64url')}.${signature}`;
      void payload;
      const cases: [string, string | undefined, string | undefined, number][] = [
        ['no token', undefined, ORIGIN, 401],
        ['garbage token', 'not.a.jwt', ORIGIN, 401],
        ['expired token', expired, ORIGIN, 401],
        ['signed with another secret', forged, ORIGIN, 401],
        ['tampered claims', tampered, ORIGIN, 401],
        ['other origin', t, 'https://evil.test', 403],
        ['no origin', t, undefined, 403],
      ];
      for (const [name, tok, origin, status] of cases) {
        const result = await connectTalk(ws, tok, origin);
        assert.ok(!(result instanceof TalkClient), `${name} must be refused`);
        assert.equal(result.refused, status, name);
      }
      assert.equal(
        h.upstream.requests.length,
        before,
        'no upstream request may be made for a refused upgrade',
      );
    });

    test('a token opens one socket only', async () => {
      const { token: t, ws } = await token();
      const first = await connectTalk(ws, t, ORIGIN);
      assert.ok(first instanceof TalkClient);
      const second = await connectTalk(ws, t, ORIGIN);
      assert.deepEqual(second, { refused: 401 });
      first.close();
    });

    test('a token of a key revoked after issue is refused at the upgrade', async () => {
      const { record, secret } = await h.keys.create({ origins: [ORIGIN] });
      const res = await createSession(h.url, { key: secret, origin: ORIGIN });
      await h.keys.revoke(record.id);
      assert.deepEqual(await connectTalk(res.body.ws_url as string, res.body.token, ORIGIN), {
        refused: 401,
      });
    });

    test('plain GET without upgrade is a 400, not a hang', async () => {
      const res = await fetch(`${h.url}/v1/talk`);
      assert.equal(res.status, 400);
    });
  });

  test('health check and 404s', async () => {
    assert.deepEqual(await (await fetch(`${h.url}/healthz`)).json(), { ok: true, database: 'ok' });
    assert.equal((await fetch(`${h.url}/nope`)).status, 404);
  });

  test('logs hold no key secret, token or provider key', async () => {
    const res = await createSession(h.url, { key: h.key, origin: ORIGIN });
    await createSession(h.url, { key: h.key, origin: 'https://evil.test' });
    const all = h.logs.join('\n');
    assert.ok(h.logs.length > 0);
    assert.ok(!all.includes(h.key), 'client key secret in logs');
    assert.ok(!all.includes(res.body.token as string), 'session token in logs');
    assert.ok(!all.includes('sk-upstream-secret'), 'provider key in logs');
  });
});
