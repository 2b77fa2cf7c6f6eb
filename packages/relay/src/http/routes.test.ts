/**
 * The HTTP route modules as Hono apps, through `app.request()` (no server, no network): session
 * requests and the checks before a `/v1/talk` upgrade, rendered by the one error handler.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Hono } from 'hono';
import {
  ERROR_HEADER,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ErrorBody,
  type SessionGrant,
} from '@voice-bot/protocol';
import { openStorage, type Storage } from '../store/storage.js';
import { SessionTokens } from '../auth/tokens.js';
import { DEFAULT_BOT, DEFAULT_LIMITS } from '../config/config.js';
import { silentLogger } from '../conversation/fakes.fixture.js';
import { localState } from '../state/shared-state.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { Hardening } from './hardening.js';
import { sessionRoutes } from './sessions.js';
import { talkRoutes } from './talk.js';
import { WriteBatcher } from './write-batching.js';

const ORIGIN = 'https://shop.example';

describe('http routes', () => {
  let dir = '';
  let app: Hono;
  let key = '';
  let tokens: SessionTokens;
  let hardening: Hardening;
  let storage: Storage;
  const counted: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voicebot-routes-'));
    storage = await openStorage({ dataDir: dir });
    const keys = storage.keys;
    key = (await keys.create({ origins: [ORIGIN] })).secret;
    const logger = silentLogger();
    const bots = [DEFAULT_BOT];
    const state = localState({ conversationTtlMs: 60_000, maxConversations: 10 });
    tokens = new SessionTokens('routes-secret-routes-secret-routes-secret', 600, (jti, exp) =>
      state.claimToken(jti, exp),
    );
    hardening = new Hardening({ options: {}, limits: DEFAULT_LIMITS, keys, bots, logger, state });
    app = new Hono();
    app.route(
      '/',
      sessionRoutes({ keys, bots, tokens, hardening, logger, publicUrl: 'https://relay.example' }),
    );
    app.route(
      '/',
      talkRoutes({
        keys,
        bots,
        tokens,
        hardening,
        writes: new WriteBatcher(),
        logger,
        openSession: () => assert.fail('no socket opens in these tests'),
        closed: () => undefined,
      }),
    );
    app.notFound(notFoundHandler({ countError: (code) => counted.push(code) }));
    app.onError(errorHandler({ countError: (code) => counted.push(code), log: logger }));
  });

  after(async () => {
    await hardening.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (init: { key?: string; origin?: string; body?: string }) =>
    app.request('/v1/sessions', {
      method: 'POST',
      headers: {
        ...(init.key ? { authorization: `Bearer ${init.key}` } : {}),
        ...(init.origin ? { origin: init.origin } : {}),
        'content-type': 'application/json',
      },
      body: init.body ?? '{}',
    });

  test('a session request from an allowed origin gets a token, readable by that origin', async () => {
    const res = await post({ key, origin: ORIGIN });
    assert.equal(res.status, 201);
    const grant = (await res.json()) as SessionGrant;
    assert.equal(grant.ws_url, 'wss://relay.example/v1/talk');
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal((await tokens.verify(grant.token)).origin, ORIGIN);
  });

  test("POST /v1/bot-info: the bot's name and greeting for an allowed origin, the session checks' refusals otherwise", async () => {
    const info = (query: string, origin?: string) =>
      app.request(`/v1/bot-info?${query}`, {
        method: 'POST',
        headers: origin ? { origin } : {},
      });
    const ok = await info(`key=${key}`, ORIGIN);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { bot: DEFAULT_BOT.id, name: DEFAULT_BOT.name });
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    for (const [query, origin, code] of [
      [`key=${key}`, 'https://elsewhere.example', 'origin_not_allowed'],
      [`key=${key}`, undefined, 'missing_origin'],
      ['key=vb_pk_unknown', ORIGIN, 'invalid_key'],
      [`key=${key}&bot=nobody`, ORIGIN, 'unknown_bot'],
    ] as const) {
      const res = await info(query, origin);
      assert.equal(((await res.json()) as ErrorBody).error.code, code);
      if (origin) assert.equal(res.headers.get('access-control-allow-origin'), origin);
    }
  });

  test('refusals are typed: status, JSON body, X-Voicebot-Error, CORS for any origin, counted', async () => {
    const cases: [Parameters<typeof post>[0], number, string][] = [
      [{ origin: ORIGIN }, 401, 'invalid_key'],
      [{ key: 'vb_pk_unknown', origin: ORIGIN }, 401, 'invalid_key'],
      [{ key }, 403, 'missing_origin'],
      [{ key, origin: 'https://elsewhere.example' }, 403, 'origin_not_allowed'],
      [{ key, origin: ORIGIN, body: '[1]' }, 400, 'bad_request'],
      [{ key, origin: ORIGIN, body: '{"bot":"nobody"}' }, 403, 'unknown_bot'],
      [
        { key, origin: ORIGIN, body: JSON.stringify({ pad: 'x'.repeat(5_000) }) },
        413,
        'payload_too_large',
      ],
    ];
    for (const [init, status, code] of cases) {
      counted.length = 0;
      const res = await post(init);
      assert.equal(res.status, status, code);
      assert.equal(((await res.json()) as ErrorBody).error.code, code);
      assert.equal(res.headers.get(ERROR_HEADER), code);
      if (init.origin) assert.equal(res.headers.get('access-control-allow-origin'), init.origin);
      assert.deepEqual(counted, [code]);
    }
  });

  test('a preflight from any origin is answered; the POST decides', async () => {
    const res = await app.request('/v1/sessions', {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://elsewhere.example');
  });

  test('the upgrade is checked in order before anything opens', async () => {
    const grant = (await (await post({ key, origin: ORIGIN })).json()) as SessionGrant;
    const upgrade = (headers: Record<string, string>) =>
      app.request('/v1/talk', {
        headers: { upgrade: 'websocket', connection: 'Upgrade', ...headers },
      });
    const protocols = (token: string) => `${SUBPROTOCOL}, ${TOKEN_SUBPROTOCOL_PREFIX}${token}`;
    const cases: [Record<string, string>, number, string][] = [
      [{ upgrade: 'h2c' }, 400, 'bad_request'],
      [{ 'sec-websocket-protocol': 'chat' }, 400, 'bad_request'],
      [{ 'sec-websocket-protocol': SUBPROTOCOL }, 401, 'invalid_token'],
      [{ 'sec-websocket-protocol': protocols('forged.token.here') }, 401, 'invalid_token'],
      [{ 'sec-websocket-protocol': protocols(grant.token) }, 403, 'missing_origin'],
      [
        { 'sec-websocket-protocol': protocols(grant.token), origin: 'https://elsewhere.example' },
        403,
        'origin_not_allowed',
      ],
    ];
    for (const [headers, status, code] of cases) {
      const res = await upgrade(headers);
      assert.equal(res.status, status, code);
      assert.equal(res.headers.get(ERROR_HEADER), code);
    }
  });
});
