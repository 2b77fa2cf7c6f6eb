/**
 * A relay of a fleet is killed (SIGKILL: no goodbye, nothing flushed) while the visitor waits for a
 * reply. The SDK in the page reconnects through the load balancer, lands on the other relay and
 * resumes the conversation, history included, from PostgreSQL. No sticky sessions: the balancer
 * sends each connection to the next relay in turn.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPageClient, sdkPageRelay, waitForEvent } from '../support/page-client.js';
import { startBalancer, type Balancer } from '../support/balancer.js';
import { startFleet, type Fleet, type FleetRelay } from '../support/fleet.js';
import { lastUser } from '../support/relay.js';

const EVENTS = ['state', 'ready', 'message', 'error'];

type Win = Window & {
  client: { start(): Promise<void>; stop(): Promise<void>; sendText(text: string): Promise<void> };
};

interface ChatBody {
  messages: { role: string; content: string }[];
}

/** The relay whose log shows the page's socket open (and not closed yet). */
function holder(relays: FleetRelay[], since: Map<FleetRelay, number>): FleetRelay | undefined {
  return relays.find((relay) => {
    const lines = relay.lines.slice(since.get(relay) ?? 0);
    const opened = lines.filter((l) => l.includes('"msg":"socket open"')).length;
    const closed = lines.filter((l) => l.includes('"msg":"socket closed"')).length;
    return opened > closed;
  });
}

describe('a relay of the fleet dies mid-conversation', () => {
  // Serves sdk.html and the SDK: the page is a website of its own, the fleet is elsewhere.
  const site = sdkPageRelay({});
  let fleet: Fleet;
  let balancer: Balancer;
  let key = '';

  before(async () => {
    fleet = await startFleet(2, {
      chat: (req) => {
        const text = lastUser(req);
        const reply = { content: `You said ${text.replace(/^echo:/, '')}.` };
        // A question the relay is still thinking about when it is killed.
        return text.includes('slowly')
          ? new Promise((resolve) => setTimeout(() => resolve(reply), 3_000))
          : reply;
      },
    });
    balancer = await startBalancer(fleet.relays.map((relay) => Number(new URL(relay.url).port)));
    const res = await fleet.admin(fleet.relays[0] as FleetRelay, '/keys', {
      method: 'POST',
      body: JSON.stringify({ origins: [new URL(site.h.url).origin], label: 'failover' }),
    });
    key = ((await res.json()) as { key: string }).key;
  });
  after(async () => {
    await balancer?.close();
    await fleet?.close();
  });

  test('SIGKILL of the relay holding the socket: the SDK resumes on the other relay with its history', async () => {
    const page = await site.open();
    await createPageClient(
      page,
      balancer.url,
      key,
      { input: 'text', output: 'text', persistence: false, reconnect: { baseDelayMs: 100 } },
      EVENTS,
    );
    const marks = new Map(fleet.relays.map((relay) => [relay, relay.lines.length]));
    await page.evaluate(() => (window as unknown as Win).client.start());
    const first = (await waitForEvent(page, 'ready')) as { conversationId: string };
    await page.evaluate(() =>
      (window as unknown as Win).client.sendText('echo:my name is Ada Lovelace'),
    );
    await waitForEvent(page, 'message', "p.text === 'You said my name is Ada Lovelace.'");

    const victim = holder(fleet.relays, marks);
    assert.ok(victim, 'one relay holds the socket');
    const survivor = fleet.relays.find((relay) => relay !== victim) as FleetRelay;
    const survivorMark = survivor.lines.length;

    // The visitor asks; the relay dies while it waits for the model.
    await page.evaluate(() =>
      (window as unknown as Win).client.sendText('echo:tell me slowly about your prices'),
    );
    await new Promise((r) => setTimeout(r, 500));
    await victim.kill();

    const resumed = (await waitForEvent(page, 'ready', 'p.resumed', 20_000)) as {
      conversationId: string;
      resumed: boolean;
    };
    assert.equal(resumed.conversationId, first.conversationId);
    assert.ok(
      survivor.lines.slice(survivorMark).some((l) => l.includes('"msg":"socket open"')),
      `the new socket is on ${survivor.name}`,
    );

    const mark = fleet.upstream.requests.length;
    await page.evaluate(() => (window as unknown as Win).client.sendText('echo:what is my name'));
    await waitForEvent(page, 'message', "p.text === 'You said what is my name.'", 20_000);
    const chat = fleet.upstream.requests.slice(mark).find((r) => r.kind === 'chat')
      ?.body as ChatBody;
    const said = chat.messages.slice(1).map((m) => m.content);
    assert.deepEqual(said.slice(0, 2), [
      'echo:my name is Ada Lovelace',
      'You said my name is Ada Lovelace.',
    ]);
    assert.equal(said.at(-1), 'echo:what is my name');
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });
});
