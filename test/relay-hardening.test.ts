import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLOSE_CODES } from '@voice-bot/protocol';
import { openStorage, type KeyLimits } from '@voice-bot/relay';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

/** A fresh key on the harness's store (so its usage and counters are its own). */
async function newKey(
  h: RelayHarness,
  limits?: KeyLimits,
): Promise<{ id: string; secret: string }> {
  const { record, secret } = await h.keys.create({
    origins: [ORIGIN],
    ...(limits ? { limits } : {}),
  });
  return { id: record.id, secret };
}

async function session(h: RelayHarness, key: string): Promise<{ token: string; wsUrl: string }> {
  const res = await createSession(h.url, { key, origin: ORIGIN });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { token: res.body.token as string, wsUrl: res.body.ws_url as string };
}

async function open(
  h: RelayHarness,
  key: string,
  start: Parameters<TalkClient['start']>[0] = { input: 'text', output: 'text' },
): Promise<TalkClient> {
  const { token, wsUrl } = await session(h, key);
  const talk = await connectTalk(wsUrl, token, ORIGIN);
  assert.ok(talk instanceof TalkClient, 'upgrade accepted');
  talk.start(start);
  await talk.next('ready');
  return talk;
}

/** Pings and waits for the matching pong: everything sent before has been handled. */
async function roundTrip(talk: TalkClient, t: number): Promise<void> {
  talk.send({ type: 'ping', t });
  await talk.next('pong', (p) => p.t === t);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 25 ms until it is true (at most `timeoutMs`). */
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

const USAGE = { prompt_tokens: 10, completion_tokens: 5 };

describe('limits trip exactly at their bound (per-key overrides)', () => {
  let h: RelayHarness;
  before(async () => {
    // Every test here comes from 127.0.0.1: the per-IP budget is tested with per-key overrides.
    h = await startRelay({
      upstream: { chat: () => ({ content: 'Fine.', usage: USAGE }), transcribe: () => 'hello' },
      relay: { limits: { sessionsPerMinutePerIp: 1_000 } },
    });
  });
  after(() => h.close());

  test('maxTextChars: N characters pass, N+1 are refused', async () => {
    const key = await newKey(h, { maxTextChars: 10 });
    const talk = await open(h, key.secret);
    talk.send({ type: 'text', text: 'x'.repeat(10) });
    assert.equal((await talk.next('done')).text, 'Fine.');
    talk.send({ type: 'text', text: 'x'.repeat(11) });
    const error = await talk.next('error');
    assert.equal(error.code, 'text_too_long');
    assert.equal(error.fatal, false);
    talk.close();
  });

  test('maxJsonBytes: a frame of exactly N bytes passes, N+1 is refused', async () => {
    const key = await newKey(h, { maxJsonBytes: 200 });
    const talk = await open(h, key.secret);
    const frame = (bytes: number, t: number) => {
      const base = JSON.stringify({ type: 'ping', t, pad: '' });
      return JSON.stringify({ type: 'ping', t, pad: 'p'.repeat(bytes - Buffer.byteLength(base)) });
    };
    assert.equal(Buffer.byteLength(frame(200, 1)), 200);
    talk.sendRaw(frame(200, 1));
    await talk.next('pong', (p) => p.t === 1);
    talk.sendRaw(frame(201, 2));
    assert.equal((await talk.next('error')).code, 'message_too_large');
    await roundTrip(talk, 3);
    assert.equal(talk.of('pong').filter((p) => p.t === 2).length, 0);
    talk.close();
  });

  test('maxAudioFrameBytes: a frame of N bytes passes, N+1 closes with 1009', async () => {
    const key = await newKey(h, { maxAudioFrameBytes: 1000 });
    const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
    talk.sendRaw(new Uint8Array(1000));
    await roundTrip(talk, 1);
    assert.equal(talk.of('error').length, 0);
    talk.sendRaw(new Uint8Array(1001));
    const error = await talk.next('error');
    assert.equal(error.code, 'message_too_large');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.messageTooBig);
  });

  test('the relay-wide maxPayload: 65 536 bytes pass, 65 537 close with 1009', async () => {
    const key = await newKey(h);
    const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
    talk.sendRaw(new Uint8Array(65_536));
    await roundTrip(talk, 1);
    assert.equal(talk.of('error').length, 0);
    talk.sendRaw(new Uint8Array(65_537));
    assert.equal((await talk.closed).code, CLOSE_CODES.messageTooBig);
  });

  test('maxUtteranceMs: exactly N ms of audio is transcribed, N ms + one sample is refused', async () => {
    const key = await newKey(h, { maxUtteranceMs: 100 });
    const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
    talk.sendRaw(new Uint8Array(1600));
    talk.sendRaw(new Uint8Array(1600)); // 3 200 bytes = 100 ms at 16 kHz
    talk.send({ type: 'commit' });
    assert.equal((await talk.next('transcript')).text, 'hello');
    await talk.next('done');
    talk.sendRaw(new Uint8Array(3200));
    talk.sendRaw(new Uint8Array(2));
    assert.equal((await talk.next('error')).code, 'utterance_too_long');
    talk.close();
  });

  test('messagesPerSecond: N messages pass, N+1 is refused, a flood closes with 1008', async () => {
    const key = await newKey(h, { messagesPerSecond: 10 });
    const talk = await open(h, key.secret); // `start` was message 1 of this second
    for (let t = 1; t <= 9; t++) talk.send({ type: 'ping', t });
    await talk.next('pong', (p) => p.t === 9);
    assert.equal(talk.of('error').length, 0, 'the first 10 messages pass');
    talk.send({ type: 'ping', t: 10 });
    const limited = await talk.next('error');
    assert.equal(limited.code, 'rate_limited');
    assert.equal(limited.fatal, false);
    for (let t = 11; t <= 40; t++) talk.send({ type: 'ping', t });
    const closed = await talk.closed;
    assert.equal(closed.code, CLOSE_CODES.policyViolation);
    const fatal = talk.of('error').at(-1);
    assert.equal(fatal?.code, 'rate_limited');
    assert.equal(fatal?.fatal, true);
    assert.equal(talk.of('pong').length, 9, 'dropped messages were not handled');
  });

  test('audioFramesPerSecond: N frames pass, N+1 is refused', async () => {
    const key = await newKey(h, { audioFramesPerSecond: 5 });
    const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
    for (let i = 0; i < 5; i++) talk.sendRaw(new Uint8Array(640));
    await roundTrip(talk, 1);
    assert.equal(talk.of('error').length, 0);
    talk.sendRaw(new Uint8Array(640));
    assert.equal((await talk.next('error')).code, 'rate_limited');
    talk.close();
  });

  test('sessionsPerMinutePerKey: N sessions pass, N+1 gets 429 with Retry-After', async () => {
    const key = await newKey(h, { sessionsPerMinutePerKey: 3 });
    for (let i = 0; i < 3; i++)
      assert.equal((await createSession(h.url, { key: key.secret, origin: ORIGIN })).status, 201);
    const refused = await createSession(h.url, { key: key.secret, origin: ORIGIN });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error?.code, 'rate_limited');
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(
      refused.headers.get('access-control-allow-origin'),
      ORIGIN,
      'the refusal is readable by the page',
    );
    assert.equal(refused.body.token, undefined);
  });

  test('sessionsPerMinutePerIp counts every key from one address, whatever budget each key has', async () => {
    // A relay of its own: the address's count is shared by every key, so other tests' sessions would count.
    const own = await startRelay();
    try {
      const a = await newKey(own, { sessionsPerMinutePerIp: 2 });
      const b = await newKey(own, { sessionsPerMinutePerIp: 3 });
      assert.equal((await createSession(own.url, { key: a.secret, origin: ORIGIN })).status, 201);
      assert.equal((await createSession(own.url, { key: b.secret, origin: ORIGIN })).status, 201);
      const refused = await createSession(own.url, { key: a.secret, origin: ORIGIN });
      assert.equal(refused.status, 429);
      assert.equal(refused.body.error?.code, 'rate_limited');
      assert.match(refused.body.error?.message ?? '', /address/);
      // b's larger budget does not start a fresh count for the address: its third session is its last.
      assert.equal(
        (await createSession(own.url, { key: b.secret, origin: ORIGIN })).status,
        429,
        'the refused request counted too',
      );
    } finally {
      await own.close();
    }
  });

  test('maxConcurrentSessionsPerKey: N sockets pass, N+1 gets 429 too_many_sessions; a closed socket frees its slot', async () => {
    const key = await newKey(h, { maxConcurrentSessionsPerKey: 2 });
    const first = await open(h, key.secret);
    const second = await open(h, key.secret);
    const refused = await createSession(h.url, { key: key.secret, origin: ORIGIN });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error?.code, 'too_many_sessions');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    first.close();
    await first.closed;
    await until(
      async () => (await createSession(h.url, { key: key.secret, origin: ORIGIN })).status === 201,
    );
    second.close();
  });

  test('concurrency is checked again at the upgrade; a refused token stays usable', async () => {
    const key = await newKey(h, { maxConcurrentSessionsPerKey: 1 });
    const a = await session(h, key.secret);
    const b = await session(h, key.secret); // issued while no socket was open
    const first = await connectTalk(a.wsUrl, a.token, ORIGIN);
    assert.ok(first instanceof TalkClient);
    assert.deepEqual(await connectTalk(b.wsUrl, b.token, ORIGIN), { refused: 429 });
    first.close();
    await first.closed;
    let second: TalkClient | { refused: number } = { refused: 0 };
    await until(async () => {
      second = await connectTalk(b.wsUrl, b.token, ORIGIN);
      return second instanceof TalkClient;
    });
    assert.ok(second instanceof TalkClient);
    second.close();
  });

  test('a replayed session token is refused', async () => {
    const key = await newKey(h);
    const s = await session(h, key.secret);
    const talk = await connectTalk(s.wsUrl, s.token, ORIGIN);
    assert.ok(talk instanceof TalkClient);
    talk.close();
    await talk.closed;
    assert.deepEqual(await connectTalk(s.wsUrl, s.token, ORIGIN), { refused: 401 });
  });
});

describe('daily quotas trip exactly at their bound', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: { chat: () => ({ content: 'Fine.', usage: USAGE }), transcribe: () => 'hello' },
    });
  });
  after(() => h.close());

  test('audio minutes: exactly the quota is accepted, one more sample closes with 4005, new sessions get 429', async () => {
    const key = await newKey(h, { audioMinutesPerKeyPerDay: 0.01 }); // 600 ms = 19 200 bytes
    const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
    for (let i = 0; i < 30; i++) talk.sendRaw(new Uint8Array(640));
    talk.send({ type: 'commit' });
    await talk.next('done');
    assert.equal(talk.of('error').length, 0);
    talk.sendRaw(new Uint8Array(2));
    const error = await talk.next('error');
    assert.equal(error.code, 'quota_exceeded');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.quotaExceeded);
    const refused = await createSession(h.url, { key: key.secret, origin: ORIGIN });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error?.code, 'quota_exceeded');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
  });

  test('LLM tokens: reaching the quota is fine, the next turn is refused', async () => {
    const key = await newKey(h, { llmTokensPerKeyPerDay: 30 }); // two turns of 15
    const talk = await open(h, key.secret);
    for (const text of ['one', 'two']) {
      talk.send({ type: 'text', text });
      await talk.next('done', (d) => d.turn_id === (text === 'one' ? 1 : 2));
    }
    await roundTrip(talk, 1);
    assert.equal(talk.of('error').length, 0, 'at the quota the session stays open');
    talk.send({ type: 'text', text: 'three' });
    const error = await talk.next('error');
    assert.equal(error.code, 'quota_exceeded');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.quotaExceeded);
    assert.equal(
      (await createSession(h.url, { key: key.secret, origin: ORIGIN })).body.error?.code,
      'quota_exceeded',
    );
  });

  test('LLM tokens: the turn that goes over the quota is delivered, then the session closes', async () => {
    const key = await newKey(h, { llmTokensPerKeyPerDay: 29 });
    const talk = await open(h, key.secret);
    talk.send({ type: 'text', text: 'one' });
    await talk.next('done');
    talk.send({ type: 'text', text: 'two' });
    const done = await talk.next('done', (d) => d.turn_id === 2);
    assert.equal(done.text, 'Fine.');
    assert.equal((await talk.next('error')).code, 'quota_exceeded');
    assert.equal((await talk.closed).code, CLOSE_CODES.quotaExceeded);
  });
});

describe('timeouts', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({ upstream: { chat: () => ({ content: 'Fine.' }) } });
  });
  after(() => h.close());

  test('idle timeout: activity within the bound keeps the socket; silence past it closes with 4002', async () => {
    const key = await newKey(h, { idleTimeoutMs: 400 });
    const talk = await open(h, key.secret);
    for (let t = 1; t <= 6; t++) {
      await sleep(150);
      await roundTrip(talk, t); // 900 ms in all: more than the bound, but never 400 ms quiet
    }
    const quietSince = Date.now();
    const closed = await talk.closed;
    const waited = Date.now() - quietSince;
    assert.equal(closed.code, CLOSE_CODES.idleTimeout);
    assert.ok(waited >= 350 && waited < 2_000, `closed after ${waited} ms`);
    const error = talk.of('error').at(-1);
    assert.equal(error?.code, 'idle_timeout');
    assert.equal(error?.fatal, true);
  });

  test('max session length closes with 4004, whatever the client does', async () => {
    const key = await newKey(h, { maxSessionMs: 700 });
    const opened = Date.now();
    const talk = await open(h, key.secret);
    const keepBusy = setInterval(
      () => talk.ws.readyState === talk.ws.OPEN && talk.send({ type: 'ping' }),
      100,
    );
    try {
      await sleep(400);
      assert.equal(talk.ws.readyState, talk.ws.OPEN, 'open within the bound');
      const closed = await talk.closed;
      const lived = Date.now() - opened;
      assert.equal(closed.code, CLOSE_CODES.sessionTooLong);
      assert.ok(lived >= 650 && lived < 2_500, `lived ${lived} ms`);
      assert.equal(talk.of('error').at(-1)?.code, 'session_too_long');
    } finally {
      clearInterval(keepBusy);
    }
  });
});

describe('revocation closes open sessions', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({ upstream: { chat: () => ({ content: 'Fine.' }) } });
  });
  after(() => h.close());

  test('a key revoked by another process (the CLI) closes its open sockets within ~1 s', async () => {
    const key = await newKey(h);
    const other = await newKey(h);
    const talk = await open(h, key.secret);
    const bystander = await open(h, other.secret);
    const cli = await openStorage({ dataDir: h.dataDir });
    const started = Date.now();
    assert.ok(
      await cli.keys.revoke(key.id, { kind: 'cli', user: 'test' }),
      'revoked through a separate connection to the database, like `voicebot-relay keys revoke`',
    );
    await cli.close();
    const closed = await talk.closed;
    const took = Date.now() - started;
    assert.equal(closed.code, CLOSE_CODES.keyRevoked);
    assert.ok(took < 2_000, `closed after ${took} ms`);
    const error = talk.of('error').at(-1);
    assert.equal(error?.code, 'key_revoked');
    assert.equal(error?.fatal, true);
    bystander.send({ type: 'text', text: 'still there?' });
    assert.equal((await bystander.next('done')).text, 'Fine.');
    bystander.close();
    assert.equal(
      (await createSession(h.url, { key: key.secret, origin: ORIGIN })).body.error?.code,
      'key_revoked',
    );
  });
});

describe('graceful shutdown', () => {
  test('refuses new sessions with 503, lets the turn in flight finish, then closes with 1001', async () => {
    const h = await startRelay({
      upstream: {
        chat: () => ({ content: 'A slow but complete answer.' }),
        latency: { llmTtftMs: 400 },
      },
    });
    try {
      const talk = await open(h, h.key);
      talk.send({ type: 'text', text: 'take your time' });
      await talk.next('status', (s) => s.state === 'thinking');
      const stopping = h.relay.shutdown({ graceMs: 5_000 });
      const refused = await createSession(h.url, { key: h.key, origin: ORIGIN });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error?.code, 'shutting_down');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal((await fetch(`${h.url}/healthz`)).status, 503);
      const done = await talk.next('done');
      assert.equal(done.interrupted, false);
      assert.equal(done.text, 'A slow but complete answer.');
      const closed = await talk.closed;
      assert.equal(closed.code, CLOSE_CODES.goingAway);
      assert.equal(talk.of('error').at(-1)?.code, 'shutting_down');
      await stopping;
    } finally {
      await h.close();
    }
  });

  test('a turn that never ends is cut off after graceMs', async () => {
    const h = await startRelay({ upstream: { chat: () => ({ fail: 'hang' }) } });
    try {
      const talk = await open(h, h.key);
      talk.send({ type: 'text', text: 'hello?' });
      await talk.next('status', (s) => s.state === 'thinking');
      const started = Date.now();
      await h.relay.shutdown({ graceMs: 300 });
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 3_000, `shutdown took ${took} ms`);
      assert.equal((await talk.closed).code, CLOSE_CODES.goingAway);
    } finally {
      await h.close();
    }
  });
});

describe('HTTP security headers', () => {
  let h: RelayHarness;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voicebot-static-'));
    await writeFile(join(dir, 'voice-bot.js'), 'export {};\n');
    h = await startRelay({ relay: { staticDirs: [{ urlPath: '/widget/', dir }] } });
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('API responses carry strict headers', async () => {
    for (const res of [await fetch(`${h.url}/healthz`), await fetch(`${h.url}/nope`)]) {
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
      assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
      assert.equal(
        res.headers.get('content-security-policy'),
        "default-src 'none'; frame-ancestors 'none'",
      );
      assert.equal(res.headers.get('x-powered-by'), null);
    }
  });

  test('widget files stay loadable cross-origin', async () => {
    const res = await fetch(`${h.url}/widget/voice-bot.js`, {
      headers: { origin: 'https://customer.test' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-security-policy'), null);
  });

  test('/v1/sessions: a token only for the key origin, errors readable anywhere', async () => {
    const ok = await createSession(h.url, { key: h.key, origin: ORIGIN });
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    const refused = await createSession(h.url, { key: h.key, origin: 'https://evil.test' });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), 'https://evil.test');
    assert.equal(refused.body.token, undefined);
    assert.equal(h.relay.websocketServer.options.perMessageDeflate, false);
  });
});

describe('GET /metrics', () => {
  test('is off unless a token is set or it is made public', async () => {
    const h = await startRelay();
    try {
      assert.equal((await fetch(`${h.url}/metrics`)).status, 404);
    } finally {
      await h.close();
    }
    const off = await startRelay({
      relay: { metrics: false, metricsToken: 'metrics-token-0123456789' },
    });
    try {
      assert.equal(
        (
          await fetch(`${off.url}/metrics`, {
            headers: { authorization: 'Bearer metrics-token-0123456789' },
          })
        ).status,
        404,
      );
    } finally {
      await off.close();
    }
    const pub = await startRelay({ relay: { metrics: 'public' } });
    try {
      const res = await fetch(`${pub.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /voicebot_sessions_active 0/);
    } finally {
      await pub.close();
    }
  });

  test('with a token: 401 without it; sessions, turns, errors, latencies and bytes with it', async () => {
    const token = 'metrics-token-0123456789';
    const h = await startRelay({
      upstream: {
        chat: (req) =>
          JSON.stringify(req.messages).includes('break')
            ? { fail: 'http', status: 500 }
            : { content: 'Counted.' },
      },
      relay: { metricsToken: token, limits: { maxTextChars: 20 } },
    });
    try {
      assert.equal((await fetch(`${h.url}/metrics`)).status, 401);
      assert.equal(
        (
          await fetch(`${h.url}/metrics`, {
            headers: { authorization: 'Bearer wrong-token-0123456789' },
          })
        ).status,
        401,
      );
      const talk = await open(h, h.key, { input: 'text', output: 'audio' });
      talk.send({ type: 'text', text: 'hello' });
      await talk.next('done');
      talk.send({ type: 'text', text: 'x'.repeat(21) });
      await talk.next('error');
      talk.send({ type: 'text', text: 'break' });
      await talk.next('error', (e) => e.code === 'upstream_llm');
      const res = await fetch(`${h.url}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      assert.match(text, /^voicebot_sessions_active 1$/m);
      assert.match(text, /^voicebot_sessions_total 1$/m);
      assert.match(text, /^voicebot_turns_total\{outcome="done"\} 1$/m);
      assert.match(text, /^voicebot_turns_total\{outcome="error"\} 1$/m);
      assert.match(text, /^voicebot_errors_total\{code="text_too_long"\} 1$/m);
      assert.match(text, /^voicebot_upstream_errors_total\{stage="llm"\} 1$/m);
      for (const histogram of ['llm_ttft_ms', 'tts_ttfb_ms', 'first_audio_ms', 'turn_total_ms']) {
        assert.match(text, new RegExp(`^voicebot_${histogram}_count 1$`, 'm'), histogram);
      }
      assert.match(text, /^voicebot_stt_ms_count 0$/m);
      const bytes = (direction: string, kind: string) =>
        Number(
          new RegExp(
            `^voicebot_bytes_total\\{direction="${direction}",kind="${kind}"\\} (\\d+)$`,
            'm',
          ).exec(text)?.[1],
        );
      assert.ok(bytes('in', 'json') > 0);
      assert.ok(bytes('out', 'json') > 0);
      assert.ok(bytes('out', 'audio') > 0);
      talk.close();
    } finally {
      await h.close();
    }
  });
});
