/**
 * Two relay processes sharing one PostgreSQL and one Redis, as deploy/compose.yaml runs them:
 * single-use tokens, per-key concurrency, revocation and usage hold across the fleet.
 * (A relay killed mid-conversation, with the SDK resuming on the other: browser/fleet-failover.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStorage } from '@voice-bot/relay';
import { ORIGIN, TalkClient, connectTalk, createSession } from './support/relay.js';
import { startFleet, type Fleet, type FleetRelay } from './support/fleet.js';

interface CreatedKey {
  id: string;
  key: string;
}

interface UsageDay {
  date: string;
  sessions: number;
  sockets: number;
  turns: number;
  prompt_tokens: number;
  completion_tokens: number;
  tts_chars: number;
}

/** Session on `issuer`, socket on `host` (the token works on any relay of the fleet). */
async function talkOn(issuer: FleetRelay, host: FleetRelay, key: string): Promise<TalkClient> {
  const session = await createSession(issuer.url, { key, origin: ORIGIN });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const talk = await connectTalk(
    wsUrlOn(host, session.body.ws_url as string),
    session.body.token,
    ORIGIN,
  );
  if (!(talk instanceof TalkClient))
    throw new Error(`upgrade refused on ${host.name}: ${talk.refused}`);
  talk.start({ input: 'text', output: 'text' });
  await talk.next('ready');
  return talk;
}

/** The same `ws_url` on another relay of the fleet. */
function wsUrlOn(relay: FleetRelay, wsUrl: string): string {
  const url = new URL(wsUrl);
  url.port = new URL(relay.url).port;
  return url.toString();
}

describe('a fleet of two relays on PostgreSQL and Redis', () => {
  let fleet: Fleet;
  let a: FleetRelay;
  let b: FleetRelay;

  const createKey = async (limits: Record<string, number> = {}): Promise<CreatedKey> => {
    const res = await fleet.admin(a, '/keys', {
      method: 'POST',
      body: JSON.stringify({ origins: [ORIGIN], label: 'fleet', limits }),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as CreatedKey;
  };

  before(async () => {
    fleet = await startFleet(2);
    [a, b] = fleet.relays as [FleetRelay, FleetRelay];
  });
  after(() => fleet?.close());

  test('db migrate applied the schema once; both relays are ready', async () => {
    assert.match(fleet.migrated, /applied 001_initial/);
    assert.doesNotMatch(fleet.migrated, new RegExp(fleet.postgres.password));
    for (const relay of [a, b]) {
      const ready = await fetch(`${relay.url}/readyz`);
      assert.equal(ready.status, 200);
      const health = (await (await fetch(`${relay.url}/healthz`)).json()) as { ok: boolean };
      assert.equal(health.ok, true);
      assert.ok(!relay.lines.join('\n').includes(fleet.postgres.password));
    }
  });

  test('a token issued by A opens one socket, on A or on B, never two', async () => {
    const { key } = await createKey();
    for (let round = 0; round < 5; round++) {
      const session = await createSession(a.url, { key, origin: ORIGIN });
      assert.equal(session.status, 201);
      const wsUrl = session.body.ws_url as string;
      const attempts = await Promise.all(
        [a, b].map((relay) => connectTalk(wsUrlOn(relay, wsUrl), session.body.token, ORIGIN)),
      );
      const opened = attempts.filter((t): t is TalkClient => t instanceof TalkClient);
      const refused = attempts.filter((t) => !(t instanceof TalkClient)) as { refused: number }[];
      assert.equal(opened.length, 1, `round ${round}: ${JSON.stringify(refused)}`);
      assert.equal(refused[0]?.refused, 401);
      for (const talk of opened) talk.close();
    }
  });

  test('the per-key concurrency limit counts sockets on both relays', async () => {
    const { key } = await createKey({ maxConcurrentSessionsPerKey: 2 });
    const onA = await talkOn(a, a, key);
    const onB = await talkOn(b, b, key);
    for (const relay of [a, b]) {
      const third = await createSession(relay.url, { key, origin: ORIGIN });
      assert.equal(third.status, 429, `${relay.name}: ${JSON.stringify(third.body)}`);
      assert.equal(third.body.error?.code, 'too_many_sessions');
    }
    onB.close();
    await onB.closed;
    // B gives its slot back in Redis when the socket closes: A can issue one again.
    const deadline = Date.now() + 2_000;
    let again = await createSession(a.url, { key, origin: ORIGIN });
    while (again.status !== 201 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      again = await createSession(a.url, { key, origin: ORIGIN });
    }
    assert.equal(again.status, 201);
    onA.close();
  });

  test('revoking through A closes the socket held on B within a second', async () => {
    const { id, key } = await createKey();
    const onB = await talkOn(a, b, key);
    const started = performance.now();
    const res = await fleet.admin(a, `/keys/${id}/revoke`, { method: 'POST' });
    assert.equal(res.status, 200);
    const closed = await onB.closed;
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `closed after ${ms.toFixed(0)} ms`);
    assert.equal(closed.code, 4003);
    // Through Redis pub/sub, not B's once-a-second look at the database.
    assert.ok(
      b.lines.some((line) => line.includes('key revoked in another process') && line.includes(id)),
      'B did not hear the revocation on Redis',
    );
    // Neither relay issues a session for it any more.
    for (const relay of [a, b])
      assert.equal((await createSession(relay.url, { key, origin: ORIGIN })).status, 401);
    // The audit log (in PostgreSQL) names the change, read through B.
    const audit = (await (await fleet.admin(b, `/audit?key=${id}`)).json()) as {
      entries: { action: string; actor: { kind: string } }[];
    };
    assert.deepEqual(
      audit.entries.map((e) => e.action),
      ['key.revoke', 'key.create'],
    );
  });

  test('usage is exact across both relays, and in the database once they stop', async () => {
    const { id, key } = await createKey();
    const turnsOn = async (relay: FleetRelay, turns: number) => {
      const talk = await talkOn(relay, relay, key);
      for (let i = 0; i < turns; i++) {
        const from = talk.messages.length;
        talk.send({ type: 'text', text: `echo:turn ${i} on ${relay.name}` });
        await talk.next('done', () => true, { from });
      }
      talk.close();
      await talk.closed;
    };
    await Promise.all([turnsOn(a, 2), turnsOn(b, 3), turnsOn(a, 1)]);
    const expected = { sessions: 3, sockets: 3, turns: 6 };
    const read = async (relay: FleetRelay): Promise<UsageDay> => {
      const res = await fleet.admin(relay, `/keys/${id}/usage`);
      return ((await res.json()) as { days: UsageDay[] }).days[0] as UsageDay;
    };
    // Each relay sends its counts to Redis every 250 ms.
    const deadline = Date.now() + 3_000;
    let views = await Promise.all([read(a), read(b)]);
    while (views.some((v) => v.turns < expected.turns) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      views = await Promise.all([read(a), read(b)]);
    }
    const [fromA, fromB] = views as [UsageDay, UsageDay];
    assert.deepEqual(
      { sessions: fromA.sessions, sockets: fromA.sockets, turns: fromA.turns },
      expected,
    );
    assert.deepEqual(fromB, fromA);
    assert.ok(fromA.prompt_tokens > 0 && fromA.completion_tokens > 0);

    // A graceful stop writes what each relay counted to PostgreSQL: the totals there are exact too.
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
    const storage = await openStorage({ databaseUrl: fleet.postgres.url });
    try {
      const [stored] = await storage.usage.history(id, 1);
      assert.ok(stored);
      assert.deepEqual(
        {
          sessions: stored.sessions,
          sockets: stored.sockets,
          turns: stored.turns,
          prompt_tokens: stored.prompt_tokens,
          completion_tokens: stored.completion_tokens,
        },
        {
          ...expected,
          prompt_tokens: fromA.prompt_tokens,
          completion_tokens: fromA.completion_tokens,
        },
      );
    } finally {
      await storage.close();
    }
  });
});
