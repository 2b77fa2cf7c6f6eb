/**
 * `voicebot-relay serve --workers 2`: two relay processes share the port and agree on everything a
 * key may do. New connections go to the workers in turn (Node's round-robin scheduling), so a
 * test that makes its connections one after another sees both workers; the workers' log lines
 * (`worker` field) show which one handled what.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import { openStorage } from '@voice-bot/relay';
import { ORIGIN, REPO_ROOT, TalkClient, connectTalk } from './support/relay.js';

const CLI = join(REPO_ROOT, 'packages/relay/bin/voicebot-relay.js');
const ADMIN_TOKEN = 'admin-token-for-cluster-tests-0123';

interface LogLine {
  msg?: string;
  worker?: number | 'primary';
  pid?: number;
  url?: string;
  code?: string | number;
  key_id?: string;
  conversation?: string;
  resumed?: boolean;
}

/** One HTTP request on its own connection (so consecutive requests reach the workers in turn). */
function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // metrics are text
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on('error', reject);
    // A connection the primary handed to a worker at the moment it died is never answered.
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 10 s`)));
    req.end(init.body);
  });
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('relay cluster (serve --workers 2)', () => {
  let dataDir: string;
  let relay: ChildProcess;
  let relayUrl = '';
  let exited: Promise<number | null>;
  const logs: LogLine[] = [];
  const upstream = createFakeUpstream();
  let closeUpstream: () => Promise<void> = async () => undefined;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'voicebot-cluster-'));
    const served = await upstream.listen(0);
    closeUpstream = served.close;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VOICEBOT_DATA_DIR: dataDir,
      VOICEBOT_ADMIN_TOKEN: ADMIN_TOKEN,
      VOICEBOT_METRICS: 'public',
      VOICEBOT_SHUTDOWN_GRACE_MS: '2000',
      // Lets a test count sessions from an address of its own (X-Forwarded-For).
      VOICEBOT_TRUST_PROXY: '1',
      OPENAI_API_KEY: 'sk-upstream-secret',
      OPENAI_BASE_URL: served.url,
    };
    relay = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--workers', '2'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    exited = new Promise((resolve) => relay.once('exit', (code) => resolve(code)));
    createInterface({ input: relay.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    });
    const listening = await until(
      'both workers to listen',
      () => {
        const lines = logs.filter((l) => l.msg === 'relay listening');
        return lines.length >= 2 ? lines : undefined;
      },
      30_000,
    );
    assert.equal(new Set(listening.map((l) => l.worker)).size, 2, 'two workers');
    relayUrl = (listening[0]?.url as string).replace('localhost', '127.0.0.1');
  });

  after(async () => {
    if (relay.exitCode === null) relay.kill('SIGKILL');
    await closeUpstream();
    await rm(dataDir, { recursive: true, force: true });
  });

  const admin = (method: string, path: string, body?: unknown) =>
    http(`${relayUrl}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  // Every test's sessions come from 127.0.0.1: each key gets its own, roomy per-address budget.
  async function newKey(limits: Record<string, number> = {}): Promise<{ id: string; key: string }> {
    const created = await admin('POST', '/keys', {
      origins: [ORIGIN],
      limits: { sessionsPerMinutePerIp: 1000, ...limits },
    });
    assert.equal(created.status, 201, created.text);
    return { id: created.json.id as string, key: created.json.key as string };
  }

  async function token(
    key: string,
    clientIp?: string,
  ): Promise<{ status: number; token: string; code?: string }> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${key}`,
      origin: ORIGIN,
      'content-type': 'application/json',
    };
    if (clientIp) headers['x-forwarded-for'] = clientIp;
    const res = await http(`${relayUrl}/v1/sessions`, { method: 'POST', headers, body: '{}' });
    const error = res.json.error as { code?: string } | undefined;
    return {
      status: res.status,
      token: res.json.token as string,
      ...(error?.code ? { code: error.code } : {}),
    };
  }

  const wsUrl = () => `${relayUrl.replace('http', 'ws')}/v1/talk`;

  /** Opens a socket and says which worker took it (its `socket open` log line). */
  async function open(
    tokenValue: string,
  ): Promise<{ talk: TalkClient; worker: LogLine['worker'] }> {
    const before = logs.filter((l) => l.msg === 'socket open').length;
    const talk = await connectTalk(wsUrl(), tokenValue, ORIGIN);
    if (!(talk instanceof TalkClient)) throw new Error(`upgrade refused: ${talk.refused}`);
    const line = await until(
      'the socket open log line',
      () => logs.filter((l) => l.msg === 'socket open')[before],
    );
    return { talk, worker: line.worker };
  }

  /** Opens a socket on a worker other than `notOn`. */
  async function openElsewhere(
    key: string,
    notOn: LogLine['worker'],
  ): Promise<{ talk: TalkClient; worker: LogLine['worker'] }> {
    for (let i = 0; i < 6; i++) {
      const opened = await open((await token(key)).token);
      if (opened.worker !== notOn) return opened;
      opened.talk.close();
      // One more connection shifts whose turn it is.
      await http(`${relayUrl}/healthz`);
    }
    throw new Error(`every socket landed on worker ${String(notOn)}`);
  }

  /** Upgrades that were refused, with the worker that refused each. */
  async function refusedUpgrade(
    tokenValue: string,
  ): Promise<{ status: number; worker: LogLine['worker']; code: LogLine['code'] }> {
    const before = logs.filter((l) => l.msg === 'upgrade refused').length;
    const talk = await connectTalk(wsUrl(), tokenValue, ORIGIN);
    if (talk instanceof TalkClient) {
      talk.close();
      throw new Error('the upgrade was accepted');
    }
    const line = await until(
      'the upgrade refused log line',
      () => logs.filter((l) => l.msg === 'upgrade refused')[before],
    );
    return { status: talk.refused, worker: line.worker, code: line.code };
  }

  test('a session token opens one socket, whichever worker it reaches', async () => {
    const { key } = await newKey();
    const { token: t } = await token(key);
    const first = await open(t);
    const refusals = [];
    for (let i = 0; i < 4; i++) refusals.push(await refusedUpgrade(t));
    assert.deepEqual(
      refusals.map((r) => [r.status, r.code]),
      Array.from({ length: 4 }, () => [401, 'token_reused']),
    );
    assert.ok(
      refusals.some((r) => r.worker !== first.worker),
      `a worker other than ${String(first.worker)} refused the reuse: ${refusals.map((r) => r.worker).join(',')}`,
    );
    first.talk.close();
  });

  const openSessions = async (id: string) => (await admin('GET', `/keys/${id}`)).json.open_sessions;

  test('the concurrent-session limit counts the sockets of every worker', async () => {
    const { id, key } = await newKey({ maxConcurrentSessionsPerKey: 2 });
    const tokens = [];
    for (let i = 0; i < 4; i++) tokens.push((await token(key)).token);
    const a = await open(tokens[0] as string);
    const b = await open(tokens[1] as string);
    const refusals = [
      await refusedUpgrade(tokens[2] as string),
      await refusedUpgrade(tokens[3] as string),
    ];
    assert.deepEqual(
      refusals.map((r) => [r.status, r.code]),
      [
        [429, 'too_many_sessions'],
        [429, 'too_many_sessions'],
      ],
    );
    // Each worker refused once: at least one of them held fewer than 2 sockets itself.
    assert.equal(new Set(refusals.map((r) => r.worker)).size, 2, 'both workers refused');
    assert.equal((await token(key)).code, 'too_many_sessions', 'session creation counts them too');
    a.talk.close();
    await a.talk.closed;
    await until('the closed socket to free its slot', async () =>
      (await openSessions(id)) === 1 ? true : undefined,
    );
    const freed = await token(key);
    assert.equal(freed.status, 201);
    const c = await open(freed.token);
    b.talk.close();
    c.talk.close();
  });

  test('sessions per minute per client address are counted across workers', async () => {
    const { key } = await newKey({ sessionsPerMinutePerIp: 3 });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await token(key, '203.0.113.7'));
    assert.deepEqual(
      results.map((r) => r.status),
      [201, 201, 201, 429],
    );
    assert.equal(results[3]?.code, 'rate_limited');
  });

  test('a conversation resumes on another worker; usage and metrics add up across workers', async () => {
    const { id, key } = await newKey();
    const first = await open((await token(key)).token);
    first.talk.start({ input: 'text', output: 'text' });
    const ready = await first.talk.next('ready');
    first.talk.send({ type: 'text', text: 'Remember the word pineapple.' });
    await first.talk.next('done', () => true, { timeoutMs: 10_000 });
    first.talk.close();
    await first.talk.closed;

    const second = await openElsewhere(key, first.worker);
    second.talk.start({ input: 'text', output: 'text', conversation_id: ready.conversation_id });
    // Sent before `ready`, while the worker fetches the conversation: it is held, not refused.
    second.talk.send({ type: 'text', text: 'Which word?' });
    const resumed = await second.talk.next('ready');
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.conversation_id, ready.conversation_id);
    assert.deepEqual(
      resumed.history.map((m) => m.role),
      ['user', 'assistant'],
    );
    assert.equal(resumed.history[0]?.text, 'Remember the word pineapple.');
    await second.talk.next('done', () => true, { timeoutMs: 10_000 });
    assert.deepEqual(second.talk.of('error'), []);
    // The second worker's LLM request carries the first worker's turn.
    const lastChat = upstream.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1);
    assert.ok(JSON.stringify(lastChat?.body).includes('pineapple'));

    const sockets = logs.filter((l) => l.msg === 'socket open').length;
    const usage = await until("both workers' turns in the usage", async () => {
      const res = await admin('GET', `/keys/${id}/usage`);
      const day = (
        res.json.days as { turns: number; sessions: number; sockets: number }[] | undefined
      )?.[0];
      return day && day.turns === 2 ? day : undefined;
    });
    assert.ok(usage.sockets >= 2 && usage.sessions === usage.sockets, JSON.stringify(usage));
    const open1 = await admin('GET', `/keys/${id}`);
    assert.equal(open1.json.open_sessions, 1, 'the open socket, counted by the primary');
    second.talk.close();

    const metrics = await http(`${relayUrl}/metrics`);
    assert.equal(metrics.status, 200);
    const total = Number(/^voicebot_sessions_total (\d+)/m.exec(metrics.text)?.[1]);
    assert.equal(total, sockets, 'sockets opened on both workers');
    assert.match(metrics.text, /^voicebot_turns_total\{outcome="done"\} \d+/m);
  });

  test('revoking a key closes its sockets on every worker', async () => {
    const { id, key } = await newKey();
    const a = await open((await token(key)).token);
    const b = await openElsewhere(key, a.worker);
    const revoked = await admin('POST', `/keys/${id}/revoke`);
    assert.equal(revoked.status, 200);
    const [closedA, closedB] = await Promise.all([a.talk.closed, b.talk.closed]);
    assert.equal(closedA.code, 4003);
    assert.equal(closedB.code, 4003);
    await until('the broadcast to reach the other worker', () =>
      logs.some(
        (l) => l.msg === 'key revoked in another process: open sessions closed' && l.key_id === id,
      ),
    );
  });

  test("a worker that dies is replaced; the other keeps its sockets; the dead one's slots are freed", async () => {
    const { id, key } = await newKey();
    const a = await open((await token(key)).token);
    a.talk.start({ input: 'text', output: 'text' });
    await a.talk.next('ready');
    const b = await openElsewhere(key, a.worker);
    assert.equal(await openSessions(id), 2);
    const victim = logs.find((l) => l.msg === 'relay listening' && l.worker === b.worker);
    assert.ok(victim?.pid, 'the worker logs its pid');
    const listeningBefore = logs.filter((l) => l.msg === 'relay listening').length;
    process.kill(victim.pid, 'SIGKILL');
    const closedB = await b.talk.closed;
    assert.equal(closedB.code, 1006, "the dead worker's socket is gone");
    // Until the primary has seen the exit, Node's cluster may still hand it new connections.
    await until('the primary to notice', () => logs.some((l) => l.msg?.startsWith('worker died')));
    // Scraped while a worker is missing or still starting: the others answer.
    const during = await http(`${relayUrl}/metrics`);
    assert.equal(during.status, 200);
    assert.match(during.text, /^voicebot_sessions_active /m);
    await until(
      'a new worker',
      () => logs.filter((l) => l.msg === 'relay listening').length > listeningBefore,
      15_000,
    );
    await until("the dead worker's slot to be freed", async () =>
      (await openSessions(id)) === 1 ? true : undefined,
    );
    // The surviving worker's socket still talks.
    a.talk.send({ type: 'text', text: 'Still there?' });
    await a.talk.next('done', () => true, { timeoutMs: 10_000 });
    a.talk.close();
  });

  test('SIGTERM stops the workers gracefully; the usage they had not synced yet reaches the database', async () => {
    const { id, key } = await newKey();
    const { talk } = await open((await token(key)).token);
    talk.start({ input: 'text', output: 'text' });
    await talk.next('ready');
    talk.send({ type: 'text', text: 'One last thing.' });
    await talk.next('done', () => true, { timeoutMs: 10_000 });
    // At once, before the next 500 ms sync: only the worker's final sync can carry this turn.
    relay.kill('SIGTERM');
    const closed = await talk.closed;
    assert.equal(closed.code, 1001, 'the socket was closed as going away');
    assert.equal(await exited, 0);
    const storage = await openStorage({ dataDir });
    try {
      const [day] = await storage.usage.history(id, 1);
      assert.deepEqual([day?.turns, day?.sockets], [1, 1]);
    } finally {
      await storage.close();
    }
  });
});
