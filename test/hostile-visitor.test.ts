/**
 * The relay against a visitor who holds a publishable key and scripts it (loopback only, every
 * loop bounded in count and time): oversized bodies, a socket that stops reading, rapid-fire
 * turns against the quotas, tokens kept past a key's narrowing or a restart, log amplification.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Socket } from 'node:net';
import { CLOSE_CODES, ERROR_HEADER } from '@voice-bot/protocol';
import { KeyStore, createRelay, type KeyLimits } from '@voice-bot/relay';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import {
  ORIGIN,
  TalkClient,
  captureLogs,
  connectTalk,
  createSession,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

function lastUserOf(body: unknown): string | undefined {
  return (body as { messages: { role: string; content: string }[] }).messages
    .filter((m) => m.role === 'user')
    .at(-1)?.content;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

async function open(
  h: RelayHarness,
  key: string,
  start: Parameters<TalkClient['start']>[0] = { input: 'text', output: 'text' },
): Promise<TalkClient> {
  const res = await createSession(h.url, { key, origin: ORIGIN });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const talk = await connectTalk(res.body.ws_url as string, res.body.token as string, ORIGIN);
  assert.ok(talk instanceof TalkClient, 'upgrade accepted');
  talk.start(start);
  await talk.next('ready');
  return talk;
}

/**
 * POSTs a body that claims (or streams) far more than the limit, 1 MB at a time as fast as the
 * socket takes it, and reports the answer and how much had been written when it came.
 */
function oversizedPost(
  url: string,
  path: string,
  headers: Record<string, string>,
  declared: number | 'chunked',
): Promise<{ status: number; body: string; written: number; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, url);
    let written = 0;
    let answered = false;
    const req = request(target, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...headers,
        ...(declared === 'chunked' ? {} : { 'content-length': String(declared) }),
      },
    });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const pump = () => {
      while (!answered && written < 256 * 1024 * 1024) {
        written += chunk.byteLength;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    req.on('response', (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(parts).toString('utf8'),
          written,
          error: res.headers[ERROR_HEADER.toLowerCase()] as string | undefined,
        });
        req.destroy();
      });
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    pump();
  });
}

describe('request bodies are refused while they stream', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({ relay: { adminToken: 'admin-token-admin-token' } });
  });
  after(() => h.close());

  for (const declared of [256 * 1024 * 1024, 'chunked'] as const) {
    test(`POST /v1/sessions with a ${declared === 'chunked' ? 'chunked' : '256 MB'} body: 413 payload_too_large after a few MB at most, memory flat`, async () => {
      global.gc?.();
      const before = process.memoryUsage().rss;
      const answer = await oversizedPost(h.url, '/v1/sessions', { origin: ORIGIN }, declared);
      assert.equal(answer.status, 413);
      assert.equal(
        (JSON.parse(answer.body) as { error: { code: string } }).error.code,
        'payload_too_large',
      );
      assert.equal(answer.error, 'payload_too_large');
      // What was written before the answer sits in socket buffers (kernel and client), not in the relay.
      assert.ok(
        answer.written <= 32 * 1024 * 1024,
        `the client wrote ${answer.written} bytes before the 413`,
      );
      const grown = process.memoryUsage().rss - before;
      assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1e6)} MB`);
    });
  }

  test('the admin API limits bodies too (after the token check)', async () => {
    const unauthorised = await oversizedPost(h.url, '/admin/keys', {}, 64 * 1024 * 1024);
    assert.equal(unauthorised.status, 401);
    const answer = await oversizedPost(
      h.url,
      '/admin/keys',
      { authorization: 'Bearer admin-token-admin-token' },
      64 * 1024 * 1024,
    );
    assert.equal(answer.status, 413);
    assert.equal(answer.error, 'payload_too_large');
  });

  test('a body just under the limit is still parsed (a bad key, not a size error)', async () => {
    const res = await fetch(`${h.url}/v1/sessions`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'vb_pk_nope', pad: 'x'.repeat(3_900) }),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_key');
  });
});

describe('backpressure: a page that stops reading', () => {
  const SENTENCES = 24;
  const PCM_PER_SENTENCE = 1_200_000; // 25 s of 24 kHz audio each: 28.8 MB in all
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: {
        chat: () => ({
          content: Array.from(
            { length: SENTENCES },
            (_, i) => `This is sentence number ${i + 1} of a very long answer.`,
          ).join(' '),
        }),
        speech: () => ({ pcm: new Uint8Array(PCM_PER_SENTENCE), chunkBytes: 16_384 }),
      },
      relay: { limits: { maxBufferedBytes: 256 * 1024, slowClientTimeoutMs: 1_500 } },
    });
  });
  after(() => h.close());

  test('the relay stops reading the provider, its queue stays bounded, and the socket is closed with 4006', async () => {
    const key = await newKey(h);
    const talk = await open(h, key.secret, { input: 'text', output: 'audio' });
    const raw = (talk.ws as unknown as { _socket: Socket })._socket;
    talk.send({ type: 'text', text: 'Tell me everything.' });
    raw.pause();
    let peak = 0;
    const watch = setInterval(() => {
      for (const client of h.relay.websocketServer.clients)
        peak = Math.max(peak, client.bufferedAmount);
    }, 5);
    try {
      await h.upstream.waitForRequest('speech', () => true, 5_000);
      await sleep(2_500);
      const logged = h.logs.some((line) => line.includes('client not reading; closing'));
      assert.ok(logged, 'the relay gave up on the client');
      const speech = h.upstream.requests.filter((r) => r.kind === 'speech');
      // Loopback socket buffers take a few MB before the relay's own queue fills; after that, the
      // provider is not read any further (three requests ahead of playback at most).
      assert.ok(
        speech.length < SENTENCES / 2,
        `${speech.length} of ${SENTENCES} speech requests were sent`,
      );
      // One provider chunk may land after the check that found room.
      assert.ok(
        peak <= 256 * 1024 + 64 * 1024,
        `the relay queued up to ${peak} bytes for the socket`,
      );
    } finally {
      clearInterval(watch);
      raw.resume();
    }
    const closed = await talk.closed;
    assert.ok(
      closed.code === CLOSE_CODES.slowClient || closed.code === 1006,
      `closed with ${closed.code}`,
    );
    assert.ok(
      talk.audioBytes() < (SENTENCES * PCM_PER_SENTENCE) / 2,
      `${talk.audioBytes()} bytes reached the client`,
    );
  });

  test('a page that reads slowly but keeps up gets every byte', async () => {
    const key = await newKey(h);
    const talk = await open(h, key.secret, { input: 'text', output: 'audio' });
    const raw = (talk.ws as unknown as { _socket: Socket })._socket;
    talk.send({ type: 'text', text: 'Tell me everything.' });
    // Reads in bursts with pauses shorter than the slow-client timeout.
    const reader = setInterval(() => {
      raw.pause();
      setTimeout(() => raw.resume(), 300);
    }, 400);
    try {
      const done = await talk.next('done', () => true, { timeoutMs: 60_000 });
      assert.equal(done.interrupted, false);
    } finally {
      clearInterval(reader);
      raw.resume();
    }
    assert.equal(talk.audioBytes(), SENTENCES * PCM_PER_SENTENCE);
    talk.close();
  });
});

describe('quotas are charged before the provider is called', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: {
        latency: { llmTtftMs: 400 },
        chat: () => ({
          content: 'Here is a fine answer for you. With a second sentence that is long enough.',
          usage: { prompt_tokens: 500, completion_tokens: 12 },
        }),
      },
    });
  });
  after(() => h.close());

  test('rapid-fire texts, each cut before its first token, cannot run past the daily LLM quota', async () => {
    const key = await newKey(h, { llmTokensPerKeyPerDay: 1_000, turnsPerMinute: 0 });
    const talk = await open(h, key.secret);
    const mark = h.upstream.requests.length;
    const text = `${'please answer this long question '.repeat(60)}`.slice(0, 2_000);
    for (let i = 0; i < 30 && talk.ws.readyState === talk.ws.OPEN; i++) {
      talk.send({ type: 'text', text });
      await sleep(100);
    }
    const error = await talk.next('error', (e) => e.code === 'quota_exceeded');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.quotaExceeded);
    const chats = h.upstream.requests.slice(mark).filter((r) => r.kind === 'chat');
    // Each request is charged ~500+ tokens when it is sent: the third finds the quota used up.
    assert.ok(chats.length <= 3, `${chats.length} chat requests reached the provider`);
    const [today] = await h.relay.usage.history(key.id, 1);
    assert.ok(
      (today?.prompt_tokens ?? 0) >= 1_000,
      `charged ${today?.prompt_tokens} prompt tokens`,
    );
  });

  test("the provider's reported usage replaces the estimate", async () => {
    const key = await newKey(h);
    const talk = await open(h, key.secret);
    talk.send({ type: 'text', text: 'short' });
    const done = await talk.next('done');
    assert.equal(done.metrics.prompt_tokens, 500);
    const [today] = await h.relay.usage.history(key.id, 1);
    assert.equal(today?.prompt_tokens, 500);
    assert.equal(today?.completion_tokens, 12);
    talk.close();
  });

  test('turnsPerMinute: input beyond it is dropped with rate_limited, no provider call', async () => {
    const key = await newKey(h, { turnsPerMinute: 3 });
    const talk = await open(h, key.secret);
    const mark = h.upstream.requests.length;
    for (let i = 0; i < 5; i++) talk.send({ type: 'text', text: `question ${i}` });
    const refused = await talk.next('error', (e) => e.code === 'rate_limited');
    assert.equal(refused.fatal, false);
    assert.match(refused.message, /3 turns per minute/);
    await talk.next('done', (d) => !d.interrupted);
    assert.equal(talk.of('error').filter((e) => e.code === 'rate_limited').length, 2);
    // Turns interrupted before their request went out send none.
    const chats = h.upstream.requests.slice(mark).filter((r) => r.kind === 'chat');
    assert.ok(chats.length >= 1 && chats.length <= 3, `${chats.length} chat requests`);
    assert.equal(lastUserOf(chats.at(-1)?.body), 'question 2');
    talk.close();
  });

  test('unanswered questions in a row do not grow the history: the model sees the last three', async () => {
    const key = await newKey(h, { turnsPerMinute: 0 });
    const talk = await open(h, key.secret);
    for (let i = 1; i <= 8; i++) {
      talk.send({ type: 'text', text: `unanswered ${i}` });
      await sleep(60);
    }
    await talk.next('done', (d) => !d.interrupted);
    const last = h.upstream.requests.filter((r) => r.kind === 'chat').at(-1)?.body as {
      messages: { role: string; content: string }[];
    };
    const users = last.messages.filter((m) => m.role === 'user').map((m) => m.content);
    assert.deepEqual(users, ['unanswered 6', 'unanswered 7', 'unanswered 8']);
    talk.close();
  });

  test('speech synthesis characters: a request that would pass the quota is not sent', async () => {
    const key = await newKey(h, { ttsCharsPerKeyPerDay: 40 });
    const talk = await open(h, key.secret, { input: 'text', output: 'audio' });
    const mark = h.upstream.requests.length;
    talk.send({ type: 'text', text: 'hello' });
    const error = await talk.next('error', (e) => e.code === 'quota_exceeded');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.quotaExceeded);
    const speech = h.upstream.requests.slice(mark).filter((r) => r.kind === 'speech');
    assert.deepEqual(
      speech.map((r) => (r.body as { input: string }).input),
      ['Here is a fine answer for you.'],
    );
    const [today] = await h.relay.usage.history(key.id, 1);
    assert.equal(today?.tts_chars, 'Here is a fine answer for you.'.length);
  });
});

describe('tokens and keys as they are now', () => {
  test("narrowing a key's origins or bots stops tokens issued before; the refusal names its code", async () => {
    const h = await startRelay({
      relay: {
        bots: [
          { id: 'default', name: 'A', systemPrompt: 'a' },
          { id: 'other', name: 'B', systemPrompt: 'b' },
        ],
      },
    });
    try {
      const key = await newKey(h);
      const first = await createSession(h.url, { key: key.secret, origin: ORIGIN });
      const second = await createSession(h.url, { key: key.secret, origin: ORIGIN, bot: 'other' });
      await h.keys.update(key.id, { origins: ['https://elsewhere.example'] });
      assert.deepEqual(
        await connectTalk(first.body.ws_url as string, first.body.token as string, ORIGIN),
        { refused: 403 },
      );
      await h.keys.update(key.id, { origins: [ORIGIN], bots: ['default'] });
      assert.deepEqual(
        await connectTalk(second.body.ws_url as string, second.body.token as string, ORIGIN),
        { refused: 403 },
      );
      assert.ok(
        h.logs.some(
          (l) => l.includes('"code":"origin_not_allowed"') && l.includes('upgrade refused'),
        ),
      );
      assert.ok(
        h.logs.some((l) => l.includes('"code":"bot_not_allowed"') && l.includes('upgrade refused')),
      );
    } finally {
      await h.close();
    }
  });

  test('a refused upgrade carries its error code in X-Voicebot-Error', async () => {
    const h = await startRelay();
    try {
      const code = await new Promise<string | undefined>((resolve, reject) => {
        const req = request(`${h.url}/v1/talk`, {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            'sec-websocket-protocol': 'voicebot.v1, bearer.not-a-token',
            origin: ORIGIN,
          },
        });
        req.on('response', (res) => {
          resolve(res.headers[ERROR_HEADER.toLowerCase()] as string | undefined);
          res.resume();
        });
        req.on('upgrade', () => reject(new Error('upgraded')));
        req.on('error', reject);
        req.end();
      });
      assert.equal(code, 'invalid_token');
    } finally {
      await h.close();
    }
  });

  test('a used token stays used after the relay restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-replay-'));
    const upstream = createFakeUpstream();
    const served = await upstream.listen(0);
    const stage = { baseURL: served.url, apiKey: 'sk-test', timeoutMs: 5_000, maxRetries: 0 };
    const options = {
      dataDir,
      tokenSecret: 'restart-secret-restart-secret-restart-00',
      providers: {
        stt: { ...stage, model: 'w' },
        llm: { ...stage, model: 'm' },
        tts: { ...stage, model: 't', voice: 'v' },
      },
      logger: captureLogs().logger,
    };
    try {
      const keys = KeyStore.inDataDir(dataDir);
      const { secret } = await keys.create({ origins: [ORIGIN] });
      const first = createRelay(options);
      const { url } = await first.listen(0);
      const issued = await createSession(url, { key: secret, origin: ORIGIN });
      const unused = await createSession(url, { key: secret, origin: ORIGIN });
      const talk = await connectTalk(
        issued.body.ws_url as string,
        issued.body.token as string,
        ORIGIN,
      );
      assert.ok(talk instanceof TalkClient);
      talk.close();
      await first.close();

      const second = createRelay(options);
      const again = await second.listen(0);
      try {
        const wsUrl = `${again.url.replace('http', 'ws')}/v1/talk`;
        assert.deepEqual(await connectTalk(wsUrl, issued.body.token as string, ORIGIN), {
          refused: 401,
        });
        const fresh = await connectTalk(wsUrl, unused.body.token as string, ORIGIN);
        assert.ok(fresh instanceof TalkClient, 'a token never used still opens its one socket');
        fresh.close();
      } finally {
        await second.close();
      }
    } finally {
      await served.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('decided once', () => {
  test('a socket flooding frames is closed once, logged once; the queued rest is dropped quietly', async () => {
    const h = await startRelay();
    try {
      const key = await newKey(h, { audioFramesPerSecond: 50 });
      const talk = await open(h, key.secret, { input: 'audio', output: 'text' });
      const frame = new Uint8Array(2);
      for (let i = 0; i < 20_000; i++) talk.sendRaw(frame);
      assert.equal((await talk.closed).code, CLOSE_CODES.policyViolation);
      await sleep(200);
      const persistent = h.logs.filter((l) =>
        l.includes('rate limit exceeded persistently'),
      ).length;
      assert.equal(persistent, 1);
      const lines = h.logs.filter((l) => l.includes(`"key_id":"${key.id}"`)).length;
      assert.ok(lines < 20, `${lines} log lines for 20 000 frames`);
    } finally {
      await h.close();
    }
  });

  test('tool hosts the SSRF guard will refuse are named at start, unless allowed', async () => {
    const tool = (name: string, url: string) => ({
      name,
      description: name,
      parameters: { type: 'object', properties: {} },
      http: { url },
    });
    const { lines, logger } = captureLogs();
    const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-toolhosts-'));
    try {
      const relay = createRelay({
        dataDir,
        logger,
        httpTools: [
          tool('metadata', 'http://169.254.169.254/latest/{{args.path}}'),
          tool('local', 'http://localhost:9/x'),
          tool('allowed', 'http://10.0.0.7/x'),
          tool('public', 'https://93.184.215.14/x'),
        ],
        toolAllowHosts: ['10.0.0.7'],
      });
      await sleep(300); // names are resolved in the background
      const warned = lines
        .filter((l) => l.includes('calls will be refused'))
        .map((l) => (JSON.parse(l) as { tool: string }).tool);
      assert.deepEqual(warned.sort(), ['local', 'metadata']);
      await relay.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('listening beyond loopback without publicUrl warns that ws_url follows the Host header', async () => {
    const { lines, logger } = captureLogs();
    const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-host-'));
    const relay = createRelay({ dataDir, logger });
    try {
      await relay.listen(0, '0.0.0.0');
      assert.ok(lines.some((l) => l.includes('without publicUrl')));
    } finally {
      await relay.close();
      await rm(dataDir, { recursive: true, force: true });
    }
    const quiet = captureLogs();
    const local = createRelay({ dataDir, logger: quiet.logger });
    await local.listen(0);
    await local.close();
    assert.ok(!quiet.lines.some((l) => l.includes('without publicUrl')));
    await rm(dataDir, { recursive: true, force: true });
  });
});
