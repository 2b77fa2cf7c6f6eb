/**
 * Page-side helpers for the tests that drive the SDK's `VoiceBotClient` in real Chromium, on
 * test/browser/pages/sdk.html served by the real relay beside the SDK's browser build at `/sdk/`:
 * the relay and browsers of a suite, a client in the page whose events are recorded, waiting for
 * and reading those events.
 *
 * Functions cannot cross into the page (tsx would name them with a `__name` the page lacks), so
 * event predicates are strings: a JavaScript expression over the event's payload `p`.
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { FakeUpstreamOptions } from '@voice-bot/fake-provider';
import { launchChromium, type Browser, type Page } from './browser.js';
import { REPO_ROOT, startRelay, type RelayHarness } from './relay.js';

/** The SDK's browser build. */
export const SDK_DIST = join(REPO_ROOT, 'packages/sdk/dist/browser');
/** The relay's `staticDirs` for sdk.html: the SDK at `/sdk/`, test/browser/pages at `/`. */
const SDK_PAGE_DIRS = [
  { urlPath: '/sdk/', dir: SDK_DIST },
  { urlPath: '/', dir: join(REPO_ROOT, 'test/browser/pages') },
];

/** An event the client emitted: errors as `{ code, message }`, `t` is the page's `performance.now()`. */
export interface RecordedEvent {
  type: string;
  payload: unknown;
  t: number;
}

type Win = Window & { client: unknown; events: RecordedEvent[]; network?: { drop(): void } };

export interface SdkPageRelay {
  /** The relay (running from the suite's `before` on). */
  readonly h: RelayHarness;
  /** A client key for the relay's own origin. */
  readonly key: string;
  /**
   * Launches Chromium (with `fakeMicWav` as its microphone, if given), logs the page's uncaught
   * errors and opens sdk.html; `prepare` runs before the page loads (e.g. `evaluateOnNewDocument`).
   */
  open(fakeMicWav?: string, prepare?: (page: Page) => Promise<void>): Promise<Page>;
}

/**
 * For the calling `describe`: a relay with a scripted upstream serving sdk.html (and `extraDirs`),
 * started before its tests and closed after them, with every browser `open` launched.
 */
export function sdkPageRelay(
  upstream: FakeUpstreamOptions,
  extraDirs: { urlPath: string; dir: string }[] = [],
): SdkPageRelay {
  let harness: RelayHarness | undefined;
  let key = '';
  const browsers: Browser[] = [];
  before(async () => {
    harness = await startRelay({
      upstream,
      relay: { staticDirs: [...extraDirs, ...SDK_PAGE_DIRS] },
    });
    key = (await harness.keys.create({ origins: [new URL(harness.url).origin] })).secret;
  });
  after(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await harness?.close();
  });
  const relay: SdkPageRelay = {
    get h(): RelayHarness {
      if (!harness) throw new Error("the relay starts in the suite's before()");
      return harness;
    },
    get key(): string {
      return key;
    },
    async open(fakeMicWav, prepare) {
      const browser = await launchChromium(fakeMicWav ? { fakeMicWav } : {});
      browsers.push(browser);
      const page = await browser.newPage();
      page.on('pageerror', (error) => console.error('page error:', error));
      await prepare?.(page);
      await page.goto(`${relay.h.url}/sdk.html`);
      return page;
    },
  };
  return relay;
}

/**
 * In the page: `window.client`, a `VoiceBotClient` for `relayUrl` and `key` with its assets at
 * `/sdk/` and `options`, and `window.events`, every event of `types` it emits (`level` only while
 * something plays). `droppable`: its transport comes from `@voice-bot/sdk/testing` (the browser
 * build's `/sdk/testing.js`), so `dropNetwork(page)` can drop its socket.
 */
export async function createPageClient(
  page: Page,
  relayUrl: string,
  key: string,
  options: Record<string, unknown>,
  types: readonly string[],
  { droppable = false } = {},
): Promise<void> {
  await page.evaluate(
    async (relayUrl, key, options, types, droppable) => {
      const w = window as unknown as Win;
      const sdk = await import('/sdk/voice-bot-sdk.js' as string);
      const network = droppable
        ? (await import('/sdk/testing.js' as string)).droppableTransport()
        : undefined;
      w.network = network;
      const client = new sdk.VoiceBotClient({
        relayUrl,
        clientKey: key,
        assetBaseUrl: '/sdk/',
        ...options,
        ...(network ? { transport: network.transport } : {}),
      });
      const events: RecordedEvent[] = [];
      for (const type of types) {
        client.on(type, (payload: unknown) => {
          const p =
            payload instanceof Error
              ? { code: (payload as Error & { code: string }).code, message: payload.message }
              : payload;
          if (type !== 'level' || (p as { output: number }).output > 0)
            events.push({ type, payload: p, t: performance.now() });
        });
      }
      w.client = client;
      w.events = events;
    },
    relayUrl,
    key,
    options,
    types,
    droppable,
  );
}

/** Drops the socket of a client made with `droppable` as a network failure would: it reconnects. */
export const dropNetwork = (page: Page): Promise<void> =>
  page.evaluate(() => (window as unknown as Win).network?.drop());

/** Waits for the first recorded event of `type` whose payload `p` satisfies `predicate`; returns its payload. */
export async function waitForEvent(
  page: Page,
  type: string,
  predicate = 'true',
  timeoutMs = 30_000,
): Promise<unknown> {
  const handle = await page.waitForFunction(
    (type, predicate) => {
      const events = (window as unknown as Win).events;
      const found = events.find(
        (e) => e.type === type && new Function('p', `return ${predicate}`)(e.payload),
      );
      return found ? found.payload : undefined;
    },
    { timeout: timeoutMs, polling: 50 },
    type,
    predicate,
  );
  return handle.jsonValue();
}

/** Every event recorded so far. */
export const recordedEvents = (page: Page): Promise<RecordedEvent[]> =>
  page.evaluate(() => (window as unknown as Win).events);

/** The payloads of the events of `type` recorded so far. */
export const eventsOf = (page: Page, type: string): Promise<unknown[]> =>
  page.evaluate(
    (type) =>
      (window as unknown as Win).events.filter((e) => e.type === type).map((e) => e.payload),
    type,
  );
