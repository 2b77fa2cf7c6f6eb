/**
 * `VoiceBotClient` in Chromium against msw standing in for the relay (session API and WebSocket):
 * tool events keep a public tool's arguments and result; `stt: 'browser'` without
 * @voice-bot/stt-whisper fails with a typed error that says what to install, falls back to the
 * relay's STT when allowed, and uses a loader given per client or with `setWhisperLoader()`.
 */
import { VoiceBotClient, type VoiceBotOptions } from '../../packages/sdk/src/client.js';
import type { VoiceBotError } from '../../packages/sdk/src/errors.js';
import {
  setWhisperLoader,
  type SpeechRecognizer,
  type SpeechRecognizerOptions,
} from '../../packages/sdk/src/stt.js';
import { RELAY, equal, fakeRelay, match, mockRelay, ok, until } from './support.js';

describe('VoiceBotClient', () => {
  let clients: VoiceBotClient[] = [];
  const make = (
    options: Partial<VoiceBotOptions>,
  ): { client: VoiceBotClient; events: { type: string; payload: unknown }[] } => {
    const client = new VoiceBotClient({
      relayUrl: RELAY,
      clientKey: 'vb_pk_test',
      persistence: false,
      assetBaseUrl: '/packages/sdk/dist/audio/',
      vad: { model: 'energy' },
      ...options,
    });
    clients.push(client);
    const events: { type: string; payload: unknown }[] = [];
    for (const type of ['error', 'tool', 'stt-fallback', 'stt-ready', 'stt-progress'] as const)
      client.on(type, (payload) => events.push({ type, payload }));
    return { client, events };
  };

  before(async () => {
    await mockRelay();
  });
  afterEach(async () => {
    setWhisperLoader(undefined);
    await Promise.all(clients.map((c) => c.stop()));
    clients = [];
    (await mockRelay()).resetHandlers();
  });

  it("a public tool's args and result reach the tool event; a private tool's event has neither", async () => {
    const relay = await fakeRelay();
    const { client, events } = make({ input: 'text', output: 'text' });
    await client.connect();
    relay.send({
      type: 'tool',
      turn_id: 1,
      name: 'opening_hours',
      state: 'started',
      args: { day: 'saturday' },
    });
    relay.send({
      type: 'tool',
      turn_id: 1,
      name: 'opening_hours',
      state: 'done',
      args: { day: 'saturday' },
      result: { open: '10:00', close: '14:00' },
    });
    relay.send({ type: 'tool', turn_id: 1, name: 'lookup_customer', state: 'done' });
    await until(
      () => events.filter((e) => e.type === 'tool').length === 3,
      3_000,
      'three tool events',
    );
    equal(
      JSON.stringify(events.filter((e) => e.type === 'tool').map((e) => e.payload)),
      JSON.stringify([
        { turnId: 1, name: 'opening_hours', state: 'started', args: { day: 'saturday' } },
        {
          turnId: 1,
          name: 'opening_hours',
          state: 'done',
          args: { day: 'saturday' },
          result: { open: '10:00', close: '14:00' },
        },
        { turnId: 1, name: 'lookup_customer', state: 'done' },
      ]),
    );
  });

  it("stt: 'browser' without @voice-bot/stt-whisper: stt_unavailable saying what to install; the session stays (typing works)", async () => {
    const relay = await fakeRelay();
    const { client, events } = make({ stt: 'browser' });
    await client.start();
    await until(() => events.some((e) => e.type === 'error'), 5_000, 'the error');
    const error = events.find((e) => e.type === 'error')?.payload as VoiceBotError;
    equal(error.code, 'stt_unavailable');
    equal(error.fatal, false);
    match(error.message, /npm i @voice-bot\/stt-whisper/);
    match(error.message, /load: \(\) => import\('@voice-bot\/stt-whisper'\)/);
    equal(
      JSON.stringify(relay.starts),
      JSON.stringify([{ input: 'text', output: 'audio' }]),
      'a text session: no audio leaves the page',
    );
    equal(client.state, 'listening');
  });

  it('… with fallbackToRelay: the same notice as stt-fallback, and a new session that takes audio', async () => {
    const relay = await fakeRelay();
    const { client, events } = make({ stt: 'browser', whisper: { fallbackToRelay: true } });
    await client.start();
    await until(() => relay.starts.length === 2, 5_000, 'the second session');
    equal(JSON.stringify(relay.starts.map((s) => s.input)), JSON.stringify(['text', 'audio']));
    const fallback = events.find((e) => e.type === 'stt-fallback')?.payload as VoiceBotError;
    ok(fallback, JSON.stringify(events));
    match(fallback.message, /@voice-bot\/stt-whisper.*relay/);
  });

  it('a loader that cannot load the package (a chunk that 404s): stt_unavailable with the cause', async () => {
    await fakeRelay();
    const { client, events } = make({
      stt: 'browser',
      whisper: {
        load: () =>
          Promise.reject(
            new TypeError('Failed to fetch dynamically imported module: /assets/stt-whisper.js'),
          ),
      },
    });
    await client.start();
    await until(() => events.some((e) => e.type === 'error'), 5_000, 'the error');
    const error = events.find((e) => e.type === 'error')?.payload as VoiceBotError;
    equal(error.code, 'stt_unavailable');
    match(
      error.message,
      /@voice-bot\/stt-whisper could not be loaded \(Failed to fetch dynamically imported module/,
    );
  });

  it('the engine comes from whisper.load, else from setWhisperLoader(); it gets the settings and the asset base', async () => {
    await fakeRelay();
    const created: { by: string; options: SpeechRecognizerOptions }[] = [];
    const engine = (by: string) => ({
      createRecognizer(options: SpeechRecognizerOptions): SpeechRecognizer {
        created.push({ by, options });
        return {
          load: async () => ({ device: 'wasm' as const, loadMs: 1 }),
          transcribe: async () => 'hello',
          dispose: () => undefined,
        };
      },
    });
    setWhisperLoader(async () => engine('registered'));
    const first = make({ stt: 'browser', whisper: { model: 'tiny', dtype: 'q8' } });
    await first.client.start();
    await until(() => first.events.some((e) => e.type === 'stt-ready'), 5_000, 'stt-ready');
    const second = make({ stt: 'browser', whisper: { load: async () => engine('option') } });
    await second.client.start();
    await until(() => second.events.some((e) => e.type === 'stt-ready'), 5_000, 'stt-ready');
    equal(JSON.stringify(created.map((c) => c.by)), JSON.stringify(['registered', 'option']));
    equal(created[0]?.options.model, 'tiny');
    equal(created[0]?.options.dtype, 'q8');
    equal(String(created[0]?.options.assetBaseUrl), '/packages/sdk/dist/audio/');
    ok(
      !('load' in (created[1]?.options ?? {})) &&
        !('fallbackToRelay' in (created[1]?.options ?? {})),
      'the SDK-only options stay in the SDK',
    );
  });
});
