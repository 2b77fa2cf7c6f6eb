/**
 * The session extras' own logic (client/devices.ts), on a stand-in session without a microphone:
 * level events are throttled and emitted only while listened to; `mic_silent` tells digital silence
 * from a quiet room. (Devices, the fake microphone and the widget: test/browser/consent-devices.test.ts.)
 */
import type { AudioEngine } from '../../packages/sdk/src/audio/engine.js';
import type { VoiceBotClient } from '../../packages/sdk/src/client.js';
import type { VoiceBotError } from '../../packages/sdk/src/errors.js';
import {
  MIC_SILENT_LEVEL,
  MIC_SILENT_MS,
  SessionWatch,
} from '../../packages/sdk/src/client/devices.js';
import type { VoiceBotEvents } from '../../packages/sdk/src/client/types.js';
import { deepEqual, equal } from './support.js';

/** What SessionWatch reads of a session: the parts it uses, without a microphone. */
function session(listening: (keyof VoiceBotEvents)[]) {
  const events: { name: string; payload: unknown }[] = [];
  const engine = { context: new EventTarget(), hasMic: true } as unknown as AudioEngine;
  const client = { engine, options: {} } as unknown as VoiceBotClient;
  const watch = new SessionWatch(
    client,
    (name, payload) => events.push({ name, payload }),
    (name) => listening.includes(name),
  );
  watches.push(watch);
  return { watch, events };
}
const watches: SessionWatch[] = [];

const FRAME_MS = 20;
let now = 0;
const realNow = performance.now.bind(performance);
const tick = (ms: number): void => {
  now += ms;
};

describe('SessionWatch', () => {
  afterEach(() => {
    performance.now = realNow;
    for (const watch of watches.splice(0)) watch.dispose();
  });

  it('level events: at most 20 a second, only while listened to, and 0 at once when a reply drains', () => {
    performance.now = () => now;
    const { watch, events } = session(['input-level', 'output-level']);
    for (let i = 0; i < 50; i++) {
      watch.input(0.2, false);
      watch.output(0.3);
      tick(FRAME_MS);
    }
    const count = (name: string) => events.filter((e) => e.name === name).length;
    equal(count('input-level'), 20, 'one second of 20 ms frames → 20 events');
    equal(count('output-level'), 20);
    watch.output(0);
    deepEqual(events.at(-1), { name: 'output-level', payload: 0 });

    const quiet = session([]);
    quiet.watch.input(0.5, false);
    quiet.watch.output(0.5);
    deepEqual(quiet.events, [], 'nobody listens: nothing is emitted');
  });

  it('mic_silent after MIC_SILENT_MS of digital silence, once; a quiet room or the bot speaking is not silence', () => {
    const { watch, events } = session([]);
    const errors = () =>
      events.filter((e) => e.name === 'error').map((e) => (e.payload as VoiceBotError).code);
    const frames = MIC_SILENT_MS / FRAME_MS;
    // A quiet room: −70 dBFS, far above the digital floor.
    for (let i = 0; i < frames * 2; i++) watch.input(10 ** (-70 / 20), false);
    deepEqual(errors(), []);
    // Zeros while the bot speaks (echo cancellation may do that) do not count.
    for (let i = 0; i < frames * 2; i++) watch.input(0, true);
    deepEqual(errors(), []);
    for (let i = 0; i < frames - 1; i++) watch.input(MIC_SILENT_LEVEL / 2, false);
    deepEqual(errors(), [], 'not yet');
    watch.input(0, false);
    deepEqual(errors(), ['mic_silent']);
    for (let i = 0; i < frames * 2; i++) watch.input(0, false);
    deepEqual(errors(), ['mic_silent'], 'said once per silent stretch');
    watch.input(0.01, false);
    for (let i = 0; i < frames; i++) watch.input(0, false);
    deepEqual(
      errors(),
      ['mic_silent', 'mic_silent'],
      'again after the mic came back and went silent',
    );
  });
});
