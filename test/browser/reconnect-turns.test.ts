import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone } from '@voice-bot/fake-provider';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import {
  SDK_DIST,
  createPageClient,
  dropNetwork,
  recordedEvents,
  waitForEvent,
  type RecordedEvent,
} from '../support/page-client.js';
import { REPO_ROOT, lastUser, startRelay, type RelayHarness } from '../support/relay.js';
import { sentBy, spyOnSockets } from '../support/stt-page.js';

/**
 * Turn ids are scoped to one socket: the relay numbers every socket's turns from 1. These tests
 * make the SDK's first turns on a new socket reuse the ids of turns it interrupted (or was still
 * playing) on the previous one, and check that the new replies are shown and played in full.
 */

const GREETING =
  'Hello and welcome to Acme Dental! I can tell you about our opening hours, book or move an appointment, ' +
  'and answer questions about treatments and prices. What can I do for you today?';
const LONG_REPLY =
  'Our opening hours are nine to five on weekdays. On Saturday we open at ten and close at two. ' +
  'On Sunday the clinic is closed, but our emergency line is answered all day.';

/** The client events the tests look at. */
const EVENTS = ['state', 'ready', 'transcript', 'text-delta', 'message', 'error', 'level'];

interface Message {
  turnId: number;
  text: string;
  interrupted: boolean;
}

/** What the playback worklet reported: samples actually rendered, per turn id. */
interface PlaybackReport {
  type: 'played' | 'drained' | 'stopped';
  turnId: number;
  playedMs: number;
  t: number;
}

type Client = {
  start(): Promise<void>;
  stop(): Promise<void>;
  interrupt(): Promise<void>;
  sendText(text: string): Promise<void>;
};
type Win = Window & { client: Client; events: RecordedEvent[]; playback: PlaybackReport[] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records the playback worklet's reports (`played`, `drained`, `stopped`) in `window.playback`. */
async function recordPlayback(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as Win;
    w.playback = [];
    const Native = window.AudioWorkletNode;
    window.AudioWorkletNode = class extends Native {
      constructor(context: BaseAudioContext, name: string, init?: AudioWorkletNodeOptions) {
        super(context, name, init);
        if (name !== 'voicebot-playback') return;
        this.port.addEventListener(
          'message',
          (event: MessageEvent<{ type: string; turnId: number; playedMs: number }>) => {
            const { type, turnId, playedMs } = event.data;
            if (type === 'played' || type === 'drained' || type === 'stopped')
              w.playback.push({ type, turnId, playedMs, t: performance.now() });
          },
        );
      }
    } as typeof AudioWorkletNode;
  });
}

async function waitFor(page: Page, predicate: string, timeoutMs = 30_000): Promise<void> {
  try {
    await page.waitForFunction(
      (predicate) => {
        const w = window as unknown as Win;
        return new Function('events', 'playback', `return ${predicate}`)(w.events, w.playback);
      },
      { timeout: timeoutMs, polling: 50 },
      predicate,
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message} waiting for ${predicate}; events:\n${await timeline(page)}`,
    );
  }
}

async function timeline(page: Page): Promise<string> {
  const events = await recordedEvents(page);
  return events
    .filter((e) => e.type !== 'level' && e.type !== 'text-delta')
    .map((e) => `${Math.round(e.t)} ${e.type} ${JSON.stringify(e.payload)}`)
    .join('\n');
}

const now = (page: Page): Promise<number> => page.evaluate(() => performance.now());
const messages = async (page: Page): Promise<Message[]> =>
  (await recordedEvents(page)).filter((e) => e.type === 'message').map((e) => e.payload as Message);

/** The audio the relay streamed for the speech requests from `mark` on, in ms (the fake TTS is `synthesizeTone`). */
function spokenMs(h: RelayHarness, mark: number): number {
  const speech = h.upstream.requests.slice(mark).filter((r) => r.kind === 'speech');
  return speech.reduce(
    (ms, r) => ms + synthesizeTone((r.body as { input: string }).input).byteLength / 48,
    0,
  );
}

/**
 * Waits until the playback worklet has rendered all of turn `turnId` (reports after `since`) and
 * checks that it played `expectedMs` of audio for it.
 */
async function assertPlayedInFull(
  page: Page,
  turnId: number,
  since: number,
  expectedMs: number,
): Promise<void> {
  assert.ok(expectedMs > 1000, `a reply worth playing (${expectedMs} ms)`);
  const mine = `playback.filter(r => r.turnId === ${turnId} && r.t > ${since})`;
  await waitFor(
    page,
    `${mine}.some(r => r.type === 'drained') && ${mine}.reduce((m, r) => Math.max(m, r.playedMs), 0) >= ${expectedMs - 50}`,
    30_000,
  );
  const reports = await page.evaluate(
    (turnId, since) =>
      (window as unknown as Win).playback.filter((r) => r.turnId === turnId && r.t > since),
    turnId,
    since,
  );
  const played = Math.max(...reports.map((r) => r.playedMs));
  assert.ok(
    Math.abs(played - expectedMs) <= 50,
    `played ${played} ms of turn ${turnId}, the relay sent ${expectedMs} ms`,
  );
  assert.ok(!reports.some((r) => r.type === 'stopped'), 'the reply was not cut short');
}

describe('turn ids across sockets: the first replies after a reconnect are played, not dropped', () => {
  let h: RelayHarness;
  let key = '';
  const browsers: Browser[] = [];

  before(async () => {
    h = await startRelay({
      upstream: {
        chat: (request) => ({
          content: lastUser(request).startsWith('echo:')
            ? `You said ${lastUser(request).slice(5)}.`
            : LONG_REPLY,
        }),
        speech: (request) => ({ pcm: synthesizeTone(request.input) }),
      },
      relay: {
        bots: [
          { id: 'front-desk', name: 'Front desk', systemPrompt: 'Be brief.', greeting: GREETING },
          { id: 'quiet', name: 'No greeting', systemPrompt: 'Be brief.' },
        ],
        staticDirs: [
          { urlPath: '/sdk/', dir: SDK_DIST },
          { urlPath: '/', dir: join(REPO_ROOT, 'test/browser/pages') },
        ],
      },
    });
    key = (await h.keys.create({ origins: [new URL(h.url).origin] })).secret;
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await h?.close();
  });

  /** sdk.html in a fresh Chromium, recording playback, with a text-input client that speaks its replies (and whose socket `dropNetwork` drops). */
  async function open(
    options: Record<string, unknown>,
    prepare?: (page: Page) => Promise<void>,
  ): Promise<Page> {
    const browser = await launchChromium();
    browsers.push(browser);
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await prepare?.(page);
    await page.goto(`${h.url}/sdk.html`);
    await recordPlayback(page);
    await createPageClient(
      page,
      h.url,
      key,
      { input: 'text', persistence: false, reconnect: { baseDelayMs: 50 }, ...options },
      EVENTS,
      { droppable: true },
    );
    return page;
  }

  /** Starts the client, lets turn 1 (the greeting or a typed question's reply) play for a moment, then interrupts it. */
  async function interruptFirstTurn(page: Page, question?: string): Promise<Message> {
    await page.evaluate(async (question) => {
      const client = (window as unknown as Win).client;
      await client.start();
      if (question) await client.sendText(question);
    }, question);
    await waitFor(page, "events.some(e => e.type === 'level' && e.payload.output > 0.01)");
    await sleep(600);
    await page.evaluate(() => (window as unknown as Win).client.interrupt());
    const cut = (await waitForEvent(page, 'message', 'p.interrupted')) as Message;
    // The id the relay will give the new socket's first turn.
    assert.equal(cut.turnId, 1);
    return cut;
  }

  /** Types `echo:…` and waits for its whole reply; returns it with the page time it was sent at. */
  async function ask(
    page: Page,
    words: string,
  ): Promise<{ reply: Message; sentAt: number; mark: number }> {
    const mark = h.upstream.requests.length;
    const sentAt = await now(page);
    await page.evaluate(
      (text) => (window as unknown as Win).client.sendText(text),
      `echo:${words}`,
    );
    const reply = (await waitForEvent(
      page,
      'message',
      `p.text === ${JSON.stringify(`You said ${words}.`)}`,
    )) as Message;
    return { reply, sentAt, mark };
  }

  test('interrupt the greeting, End, start again and type: the reply plays in full, not marked interrupted', async () => {
    const page = await open({});
    await interruptFirstTurn(page);
    const firstSocket = await now(page);
    await page.evaluate(async () => {
      const client = (window as unknown as Win).client;
      await client.stop();
      await client.start();
    });
    const resumed = (await waitForEvent(page, 'ready', 'p.resumed')) as { resumed: boolean };
    assert.equal(resumed.resumed, true, 'same conversation, so no second greeting');

    const { reply, sentAt, mark } = await ask(page, 'what time do you open on Saturday');
    assert.equal(
      reply.interrupted,
      false,
      `the reply was marked interrupted; events:\n${await timeline(page)}`,
    );
    assert.equal(reply.turnId, 1, 'the new socket numbers its turns from 1 again');
    await assertPlayedInFull(page, reply.turnId, sentAt, spokenMs(h, mark));
    const all = await recordedEvents(page);
    assert.deepEqual(
      all.filter((e) => e.type === 'error' && e.t > firstSocket).map((e) => e.payload),
      [],
      'no errors',
    );
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });

  test('interrupt the greeting, End, then type: sendText() reconnects and the whole reply arrives, not marked interrupted', async () => {
    const page = await open({});
    await interruptFirstTurn(page);
    await page.evaluate(() => (window as unknown as Win).client.stop());
    const stoppedAt = await now(page);

    // End released the speakers: this reply is text only, but it must arrive whole.
    const { reply } = await ask(page, 'can I book a cleaning');
    assert.equal(
      reply.interrupted,
      false,
      `the reply was marked interrupted; events:\n${await timeline(page)}`,
    );
    assert.equal(reply.turnId, 1);
    const deltas = (await recordedEvents(page))
      .filter((e) => e.type === 'text-delta' && e.t > stoppedAt)
      .map((e) => e.payload as { turnId: number; text: string });
    assert.equal(
      deltas.at(-1)?.text,
      'You said can I book a cleaning.',
      'the reply streamed in as text deltas',
    );
    assert.ok(deltas.every((d) => d.turnId === 1));
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });

  test('interrupt a reply, then the network drops: after the automatic reconnect a typed question is answered and played in full', async () => {
    const page = await open({ bot: 'quiet' });
    await interruptFirstTurn(page, 'What are your opening hours?');
    const droppedAt = await now(page);
    await dropNetwork(page);
    await waitForEvent(page, 'ready', 'p.resumed');

    const { reply, sentAt, mark } = await ask(page, 'do you take new patients');
    assert.equal(
      reply.interrupted,
      false,
      `the reply was marked interrupted; events:\n${await timeline(page)}`,
    );
    assert.equal(reply.turnId, 1);
    await assertPlayedInFull(page, reply.turnId, sentAt, spokenMs(h, mark));
    const errors = (await recordedEvents(page))
      .filter((e) => e.type === 'error' && e.t > droppedAt)
      .map((e) => e.payload);
    assert.deepEqual(errors, [], 'no errors after the reconnect');
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });

  test('the network drops while a reply plays: its audio stops at the reconnect, no interrupt names an old turn, the next reply plays in full', async () => {
    const page = await open({ bot: 'quiet' }, spyOnSockets);
    await page.evaluate(async () => {
      const client = (window as unknown as Win).client;
      await client.start();
      await client.sendText('What are your opening hours?');
    });
    // The relay has finished turn 1 (the fake TTS is faster than real time); the speaker has not.
    await waitFor(page, "events.some(e => e.type === 'level' && e.payload.output > 0.01)");
    await sleep(600);
    await dropNetwork(page);
    await waitForEvent(page, 'ready', 'p.resumed');
    const readyAt = (await recordedEvents(page)).filter((e) => e.type === 'ready').at(-1)?.t ?? 0;
    await sleep(800);
    const stale = (await recordedEvents(page)).filter(
      (e) => e.type === 'level' && e.t > readyAt + 150,
    );
    assert.equal(
      stale.length,
      0,
      `the old socket's reply kept playing after the reconnect (${stale.length} level events)`,
    );

    const { reply, sentAt, mark } = await ask(page, 'is there parking nearby');
    assert.equal(
      reply.interrupted,
      false,
      `the reply was marked interrupted; events:\n${await timeline(page)}`,
    );
    assert.equal(reply.turnId, 1);
    await assertPlayedInFull(page, reply.turnId, sentAt, spokenMs(h, mark));

    const sent = (await sentBy(page)).json.map(
      (m) => JSON.parse(m) as { type: string; turn_id?: number },
    );
    assert.deepEqual(
      sent.filter((m) => m.type === 'interrupt'),
      [],
      'no interrupt was sent (least of all one naming a turn of the old socket)',
    );
    // The reply the relay had finished (and keeps whole) is announced once, when its socket is replaced.
    assert.deepEqual(
      (await messages(page)).map((m) => [m.turnId, m.text, m.interrupted]),
      [
        [1, LONG_REPLY, false],
        [1, 'You said is there parking nearby.', false],
      ],
    );
    assert.deepEqual(
      (await recordedEvents(page)).filter((e) => e.type === 'error').map((e) => e.payload),
      [],
      'no errors (e.g. stale_turn)',
    );
    await page.evaluate(() => (window as unknown as Win).client.stop());
  });
});
