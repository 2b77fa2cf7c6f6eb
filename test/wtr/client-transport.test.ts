/**
 * `VoiceBotClient` with an injected transport, in Chromium: a fake one in memory (no relay, no
 * network) drives a session and `tts: 'browser'` (the browser's speech synthesis speaks the
 * replies); `droppableTransport()` from `@voice-bot/sdk/testing` drops the socket as a network
 * failure would, against msw standing in for the relay.
 */
import {
  VoiceBotClient,
  type VoiceBotEvents,
  type VoiceBotOptions,
} from '../../packages/sdk/src/client.js';
import { Emitter } from '../../packages/sdk/src/emitter.js';
import {
  PROTOCOL_VERSION,
  type ClientMessageInput,
  type ServerMessage,
} from '../../packages/sdk/src/protocol/index.js';
import { droppableTransport } from '../../packages/sdk/src/testing.js';
import type {
  TransportEvents,
  TransportOptions,
  VoiceBotTransport,
} from '../../packages/sdk/src/transport.js';
import { RELAY, deepEqual, equal, fakeRelay, mockRelay, ok, until } from './support.js';

/** A relay in memory: answers `start` with `ready`; the test sends the rest with `receive()`. */
class FakeTransport extends Emitter<TransportEvents> implements VoiceBotTransport {
  connected = false;
  readonly sent: ClientMessageInput[] = [];

  constructor(readonly options: TransportOptions) {
    super();
  }

  async connect(): Promise<void> {
    this.connected = true;
    queueMicrotask(() => this.emit('open', { reconnect: false }));
  }

  send(message: ClientMessageInput): boolean {
    if (!this.connected) return false;
    this.sent.push(message);
    if (message.type === 'start') {
      queueMicrotask(() =>
        this.receive({
          type: 'ready',
          session_id: 's1',
          conversation_id: 'c1',
          protocol_version: PROTOCOL_VERSION,
          input_sample_rate: 16_000,
          output_sample_rate: 24_000,
          resumed: false,
          history: [],
        }),
      );
    }
    return true;
  }

  sendAudio(): boolean {
    return this.connected;
  }

  close(): void {
    this.connected = false;
  }

  receive(message: ServerMessage): void {
    this.emit('message', message);
  }
}

describe('VoiceBotClient with an injected transport', () => {
  let clients: VoiceBotClient[] = [];
  const make = (options: Partial<VoiceBotOptions>) => {
    const made: FakeTransport[] = [];
    const client = new VoiceBotClient({
      relayUrl: RELAY,
      clientKey: 'vb_pk_test',
      persistence: false,
      transport: (settings) => {
        const transport = new FakeTransport(settings);
        made.push(transport);
        return transport;
      },
      ...options,
    });
    clients.push(client);
    const events: { type: keyof VoiceBotEvents; payload: unknown }[] = [];
    for (const type of ['state', 'message', 'text-delta', 'error'] as const)
      client.on(type, (payload) => events.push({ type, payload }));
    const transport = made[0];
    ok(transport, 'the client made its transport when it was created');
    return { client, transport, events };
  };
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    clients = [];
  });

  it("gets the client's relay settings and carries the session: start, ready, a typed turn and its reply", async () => {
    const { client, transport, events } = make({
      bot: 'front-desk',
      connectTimeoutMs: 5_000,
      input: 'text',
      output: 'text',
    });
    deepEqual(transport.options, {
      relayUrl: RELAY,
      clientKey: 'vb_pk_test',
      bot: 'front-desk',
      connectTimeoutMs: 5_000,
    });
    await client.connect();
    equal(client.conversation, 'c1');
    await client.sendText('Hello');
    transport.receive({ type: 'text_delta', turn_id: 1, delta: 'Hi there.' });
    transport.receive({
      type: 'done',
      turn_id: 1,
      text: 'Hi there.',
      interrupted: false,
      metrics: {} as never,
    });
    deepEqual(
      transport.sent.map((m) => m.type),
      ['start', 'text'],
    );
    deepEqual(
      events.filter((e) => e.type === 'message').map((e) => e.payload),
      [{ turnId: 1, text: 'Hi there.', interrupted: false }],
    );
    deepEqual(
      events.filter((e) => e.type === 'state').map((e) => e.payload),
      ['connecting', 'listening', 'thinking', 'speaking', 'listening'],
    );
  });

  it("tts: 'browser': the session's output is text, each completed sentence is spoken in the given language, typing cancels", async () => {
    const spoken: string[] = [];
    const { speak, cancel } = speechSynthesis;
    speechSynthesis.speak = (utterance) => void spoken.push(`${utterance.lang}|${utterance.text}`);
    speechSynthesis.cancel = () => void spoken.push('cancel');
    try {
      const { client, transport } = make({
        input: 'text',
        tts: 'browser',
        speechSynthesis: { lang: 'es-ES' },
      });
      await client.connect();
      const start = transport.sent[0] as { input: string; output: string };
      deepEqual({ input: start.input, output: start.output }, { input: 'text', output: 'text' });
      transport.receive({ type: 'text_delta', turn_id: 1, delta: 'Hola. Abrimos ' });
      transport.receive({ type: 'text_delta', turn_id: 1, delta: 'a las nueve.' });
      transport.receive({
        type: 'done',
        turn_id: 1,
        text: 'Hola. Abrimos a las nueve.',
        interrupted: false,
        metrics: {} as never,
      });
      deepEqual(spoken, ['es-ES|Hola.', 'es-ES|Abrimos a las nueve.']);
      transport.receive({ type: 'text_delta', turn_id: 2, delta: 'Un momento. Y ' });
      await client.sendText('Gracias');
      transport.receive({ type: 'text_delta', turn_id: 2, delta: 'más. ' });
      deepEqual(
        spoken.slice(2),
        ['es-ES|Un momento.', 'cancel'],
        'typing cancels the reply being spoken, and its rest stays unspoken',
      );
    } finally {
      speechSynthesis.speak = speak;
      speechSynthesis.cancel = cancel;
    }
  });

  it("tts: 'browser' with output: 'text' speaks nothing (output decides whether replies are spoken)", async () => {
    const spoken: string[] = [];
    const { speak } = speechSynthesis;
    speechSynthesis.speak = (utterance) => void spoken.push(utterance.text);
    try {
      const { client, transport } = make({ input: 'text', output: 'text', tts: 'browser' });
      await client.connect();
      transport.receive({
        type: 'done',
        turn_id: 1,
        text: 'Silent.',
        interrupted: false,
        metrics: {} as never,
      });
      deepEqual(spoken, []);
    } finally {
      speechSynthesis.speak = speak;
    }
  });
});

describe('@voice-bot/sdk/testing: droppableTransport()', () => {
  let client: VoiceBotClient | undefined;
  before(async () => {
    await mockRelay();
  });
  afterEach(async () => {
    await client?.stop();
    (await mockRelay()).resetHandlers();
  });

  it('drop() closes the socket as a network failure would: the client reconnects and resumes the conversation', async () => {
    const relay = await fakeRelay();
    const network = droppableTransport();
    client = new VoiceBotClient({
      relayUrl: RELAY,
      clientKey: 'vb_pk_test',
      persistence: false,
      input: 'text',
      output: 'text',
      reconnect: { baseDelayMs: 10, maxDelayMs: 20 },
      transport: network.transport,
    });
    const ready: boolean[] = [];
    const states: string[] = [];
    client.on('ready', ({ resumed }) => ready.push(resumed));
    client.on('state', (state) => states.push(state));
    await client.connect();
    ok(network.current, 'the client made its transport through the factory');
    network.drop();
    await until(() => ready.length === 2, 5_000, 'the second ready');
    deepEqual(ready, [false, true]);
    equal(relay.starts.length, 2);
    deepEqual(states, ['connecting', 'listening', 'connecting', 'listening']);
  });
});
