/**
 * The SDK's relay transport in Chromium, against msw standing in for the relay: typed session
 * errors, connect timeouts, reconnects with their retries and their end.
 */
import { VoiceBotError } from '../../packages/sdk/src/errors.js';
import { RelayTransport, type TransportOptions } from '../../packages/sdk/src/transport.js';
import {
  RELAY,
  TALK_URL,
  equal,
  grant,
  mockRelay,
  msw,
  ok,
  rejection,
  sleep,
  until,
} from './support.js';

const { http, HttpResponse, ws, delay } = msw;
const talk = ws.link(TALK_URL);

const transport = (options: Partial<TransportOptions> = {}): RelayTransport =>
  new RelayTransport({
    relayUrl: RELAY,
    clientKey: 'vb_pk_test',
    connectTimeoutMs: 2_000,
    reconnect: { baseDelayMs: 10, maxDelayMs: 20 },
    ...options,
  });

describe('RelayTransport', () => {
  let open: RelayTransport[] = [];
  const make = (options?: Partial<TransportOptions>): RelayTransport => {
    const t = transport(options);
    open.push(t);
    return t;
  };

  before(async () => {
    await mockRelay();
  });
  afterEach(async () => {
    for (const t of open) t.close();
    open = [];
    (await mockRelay()).resetHandlers();
  });

  it('a refused key or origin is a typed, fatal error with the HTTP status', async () => {
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, () =>
        HttpResponse.json(
          {
            error: {
              code: 'origin_not_allowed',
              message: 'This key may not be used from http://localhost.',
            },
          },
          { status: 403 },
        ),
      ),
    );
    const error = (await rejection(make().connect())) as VoiceBotError;
    ok(error instanceof VoiceBotError);
    equal(error.code, 'origin_not_allowed');
    equal(error.fatal, true);
    equal(error.options.status, 403);
    equal(error.message, 'This key may not be used from http://localhost.');
  });

  it('a rate limit keeps its code and is not fatal (a later attempt may pass)', async () => {
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, () =>
        HttpResponse.json(
          { error: { code: 'rate_limited', message: 'Too many sessions.' } },
          { status: 429, headers: { 'retry-after': '3' } },
        ),
      ),
    );
    const error = (await rejection(make().connect())) as VoiceBotError;
    equal(error.code, 'rate_limited');
    equal(error.fatal, false);
    equal(error.options.status, 429);
  });

  it('an answer that is not a session (a proxy error page) is relay_unreachable with the status', async () => {
    (await mockRelay()).use(
      http.post(
        `${RELAY}/v1/sessions`,
        () =>
          new HttpResponse('<h1>Bad gateway</h1>', {
            status: 502,
            headers: { 'content-type': 'text/html' },
          }),
      ),
    );
    const error = (await rejection(make().connect())) as VoiceBotError;
    equal(error.code, 'relay_unreachable');
    equal(error.options.status, 502);
    ok(error.message.includes('502'), error.message);
  });

  it('a network failure is relay_unreachable', async () => {
    (await mockRelay()).use(http.post(`${RELAY}/v1/sessions`, () => HttpResponse.error()));
    const error = (await rejection(make().connect())) as VoiceBotError;
    equal(error.code, 'relay_unreachable');
    equal(error.fatal, false);
  });

  it('a session request nobody answers fails after connectTimeoutMs', async () => {
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, async () => {
        await delay('infinite');
        return HttpResponse.text('never');
      }),
    );
    const started = performance.now();
    const error = (await rejection(make({ connectTimeoutMs: 300 }).connect())) as VoiceBotError;
    const elapsed = performance.now() - started;
    equal(error.code, 'relay_unreachable');
    ok(elapsed >= 250 && elapsed < 3_000, `gave up after ${Math.round(elapsed)} ms`);
  });

  it('sends the key as a bearer token and the bot in the body; opens the socket with the token as a subprotocol', async () => {
    const seen: { auth: string | null; body: unknown }[] = [];
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, async ({ request }) => {
        seen.push({ auth: request.headers.get('authorization'), body: await request.json() });
        return grant('tok-1');
      }),
      talk.addEventListener('connection', () => undefined),
    );
    const protocols: (string | string[] | undefined)[] = [];
    const Recording = class extends WebSocket {
      constructor(url: string | URL, requested?: string | string[]) {
        super(url, requested);
        protocols.push(requested);
      }
    };
    const t = make({ bot: 'front-desk', WebSocketImpl: Recording });
    const opened: boolean[] = [];
    t.on('open', ({ reconnect }) => opened.push(reconnect));
    await t.connect();
    equal(t.connected, true);
    equal(seen[0]?.auth, 'Bearer vb_pk_test');
    equal(JSON.stringify(seen[0]?.body), JSON.stringify({ bot: 'front-desk' }));
    equal(JSON.stringify(protocols), JSON.stringify([['voicebot.v1', 'bearer.tok-1']]));
    equal(JSON.stringify(opened), '[false]');
  });

  it('an unexpected close reconnects with a new session token, and retries failed session requests with backoff', async () => {
    let sessions = 0;
    let sockets = 0;
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, () => {
        sessions++;
        // the first reconnect attempts hit a relay that is restarting
        return sessions === 2 || sessions === 3
          ? HttpResponse.json(
              { error: { code: 'internal', message: 'restarting' } },
              { status: 503 },
            )
          : grant(`tok-${sessions}`);
      }),
      talk.addEventListener('connection', ({ client }) => {
        sockets++;
        if (sockets === 1) setTimeout(() => client.close(1011, 'relay restarting'), 20);
      }),
    );
    const t = make({ reconnect: { baseDelayMs: 10, maxDelayMs: 20, maxAttempts: 6 } });
    const events: string[] = [];
    t.on('open', ({ reconnect }) => events.push(reconnect ? 'reopen' : 'open'));
    t.on('close', ({ code, reconnecting }) =>
      events.push(`close ${code} ${reconnecting ? 'reconnecting' : 'final'}`),
    );
    t.on('error', (error) => events.push(`error ${error.code}`));
    await t.connect();
    await until(() => events.includes('reopen'), 5_000, 'the reconnect');
    equal(JSON.stringify(events), JSON.stringify(['open', 'close 1011 reconnecting', 'reopen']));
    equal(sessions, 4, 'one session, two refused retries, the one that worked');
    equal(sockets, 2);
  });

  it('gives up after maxAttempts with a fatal error of the last failure', async () => {
    let sessions = 0;
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, () => (++sessions === 1 ? grant() : HttpResponse.error())),
      talk.addEventListener('connection', ({ client }) => {
        setTimeout(() => client.close(1006), 10);
      }),
    );
    const t = make({ reconnect: { baseDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } });
    const errors: VoiceBotError[] = [];
    t.on('error', (error) => errors.push(error));
    await t.connect();
    await until(() => errors.length > 0, 5_000, 'the final error');
    equal(errors[0]?.code, 'relay_unreachable');
    equal(errors[0]?.fatal, true);
    equal(sessions, 4, 'the first session and three attempts');
    await sleep(100);
    equal(sessions, 4, 'and no more');
  });

  it('a final close code (key revoked) does not reconnect: connection_lost, fatal', async () => {
    let sessions = 0;
    (await mockRelay()).use(
      http.post(`${RELAY}/v1/sessions`, () => (sessions++, grant())),
      talk.addEventListener('connection', ({ client }) => {
        setTimeout(() => client.close(4003, 'key revoked'), 10);
      }),
    );
    const t = make();
    const errors: VoiceBotError[] = [];
    const closes: boolean[] = [];
    t.on('error', (error) => errors.push(error));
    t.on('close', ({ reconnecting }) => closes.push(reconnecting));
    await t.connect();
    await until(() => errors.length > 0, 3_000, 'connection_lost');
    equal(errors[0]?.code, 'connection_lost');
    equal(errors[0]?.fatal, true);
    equal(JSON.stringify(closes), '[false]');
    equal(sessions, 1);
  });
});
