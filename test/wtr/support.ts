/**
 * Helpers for the in-browser unit tests (test/wtr/*.test.ts, run by @web/test-runner): small
 * assertions, and msw (its browser bundle, loaded as a classic script by web-test-runner.config.mjs)
 * standing in for the relay's HTTP API and WebSocket.
 */
import type * as MswCore from 'msw';
import type * as MswBrowser from 'msw/browser';
import { PROTOCOL_VERSION } from '../../packages/sdk/src/protocol/index.js';

type Msw = typeof MswCore & typeof MswBrowser;
/** msw's exports: `http`, `ws`, `HttpResponse`, `delay`, `setupWorker`… */
export const msw = (globalThis as unknown as { MockServiceWorker: Msw }).MockServiceWorker;

/** A made-up relay origin: nothing answers there but msw. */
export const RELAY = 'http://relay.test';
export const TALK_URL = 'ws://relay.test/v1/talk';

export function fail(message: string): never {
  throw new Error(message);
}

export function ok(value: unknown, message = 'expected a truthy value'): asserts value {
  if (!value) fail(message);
}

export function equal<T>(actual: T, expected: T, message = ''): void {
  if (!Object.is(actual, expected))
    fail(
      `${message ? `${message}: ` : ''}expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
    );
}

export function deepEqual(actual: unknown, expected: unknown, message = ''): void {
  const [a, b] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== b) fail(`${message ? `${message}: ` : ''}expected ${b}, got ${a}`);
}

export function match(text: string | undefined, pattern: RegExp, message = ''): void {
  if (!pattern.test(text ?? ''))
    fail(`${message ? `${message}: ` : ''}${JSON.stringify(text)} does not match ${pattern}`);
}

/** The rejection of `promise` (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return fail('expected a rejection');
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `predicate` holds (fails after `timeoutMs`). */
export async function until(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let worker: ReturnType<Msw['setupWorker']> | undefined;

/**
 * msw's service worker, started once per test page; each test sets its handlers with `use()` and
 * resets them after. A request to the made-up relay without a handler is reported as an error;
 * everything else (the test runner's own modules) goes through.
 */
export async function mockRelay(): Promise<ReturnType<Msw['setupWorker']>> {
  if (!worker) {
    // The widget asks for the bot's name and greeting when its attributes give none: none here.
    worker = msw.setupWorker(
      msw.http.post(`${RELAY}/v1/bot-info`, () => new msw.HttpResponse(null, { status: 404 })),
    );
    await worker.start({
      serviceWorker: { url: '/mockServiceWorker.js' },
      quiet: true,
      onUnhandledRequest(request, print) {
        if (request.url.startsWith(RELAY)) print.error();
      },
    });
  }
  return worker;
}

/** A session grant as the relay answers `POST /v1/sessions`. */
export function grant(token = 'tok'): Response {
  return msw.HttpResponse.json(
    { token, ws_url: TALK_URL, expires_at: new Date(Date.now() + 600_000).toISOString() },
    { status: 201 },
  );
}

export interface Relay {
  /** `start` messages the page sent, in order. */
  starts: { input: string; output: string }[];
  /** Sends a server message on the latest socket. */
  send(message: object): void;
}

/** A relay that grants every session and answers `start` with `ready`. */
export async function fakeRelay(): Promise<Relay> {
  const relay: Relay & { clients: { send(data: string): void }[] } = {
    starts: [],
    clients: [],
    send(message) {
      relay.clients.at(-1)?.send(JSON.stringify(message));
    },
  };
  (await mockRelay()).use(
    msw.http.post(`${RELAY}/v1/sessions`, () => grant()),
    msw.ws.link(TALK_URL).addEventListener('connection', ({ client }) => {
      relay.clients.push(client);
      client.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') return;
        const message = JSON.parse(event.data) as { type: string; input: string; output: string };
        if (message.type !== 'start') return;
        relay.starts.push({ input: message.input, output: message.output });
        client.send(
          JSON.stringify({
            type: 'ready',
            session_id: `s${relay.starts.length}`,
            conversation_id: 'c1',
            protocol_version: PROTOCOL_VERSION,
            input_sample_rate: 16_000,
            output_sample_rate: 24_000,
            resumed: relay.starts.length > 1,
            history: [],
          }),
        );
      });
    }),
  );
  return relay;
}
