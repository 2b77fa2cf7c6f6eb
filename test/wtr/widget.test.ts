/**
 * `<voice-bot>` from its npm entry (as a bundled app imports it), in Chromium with msw as the
 * relay: the `input` vocabulary (`audio`, `text`; `voice` a deprecated alias) and the
 * `voice-bot:tool` DOM event carrying a public tool's arguments and result.
 */
import '../../packages/widget/src/index.js';
import type { VoiceBotElement } from '../../packages/widget/src/voice-bot-element.js';
import { equal, fakeRelay, mockRelay, ok, until } from './support.js';

const RELAY_URL = 'http://relay.test';

async function mount(attributes: Record<string, string>): Promise<VoiceBotElement> {
  const element = document.createElement('voice-bot');
  for (const [name, value] of Object.entries({
    relay: RELAY_URL,
    key: 'vb_pk_test',
    mode: 'inline',
    ...attributes,
  }))
    element.setAttribute(name, value);
  document.body.append(element);
  await element.updateComplete;
  return element;
}

const part = (element: Element, name: string): Element | null | undefined =>
  element.shadowRoot?.querySelector(`[part~="${name}"]`);

describe('<voice-bot> from the npm entry', () => {
  const warnings: string[] = [];
  const warn = console.warn;
  before(async () => {
    await mockRelay();
    console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  });
  after(() => {
    console.warn = warn;
  });
  afterEach(async () => {
    for (const element of document.querySelectorAll('voice-bot')) element.remove();
    (await mockRelay()).resetHandlers();
  });

  it('input="audio" (the default) has a talk button, input="text" none; "voice" is the same as "audio", with one deprecation warning', async () => {
    ok(part(await mount({}), 'talk-button'), 'default');
    ok(part(await mount({ input: 'audio' }), 'talk-button'), 'audio');
    equal(part(await mount({ input: 'text' }), 'talk-button'), null, 'text');
    equal(warnings.length, 0);
    ok(part(await mount({ input: 'voice' }), 'talk-button'), 'voice');
    await mount({ input: 'voice', output: 'voice' });
    equal(warnings.filter((w) => w.includes('deprecated')).length, 1, warnings.join(' | '));
  });

  it('voice-bot:tool carries args and result of a public tool', async () => {
    const relay = await fakeRelay();
    const element = await mount({ input: 'text', output: 'text' });
    const details: unknown[] = [];
    element.addEventListener('voice-bot:tool', (event) => details.push(event.detail));
    await element.sendText('What are your opening hours on Saturday?');
    await until(() => relay.starts.length === 1, 5_000, 'the session');
    relay.send({
      type: 'tool',
      turn_id: 1,
      name: 'opening_hours',
      state: 'done',
      args: { day: 'saturday' },
      result: { open: '10:00' },
    });
    await until(() => details.length === 1, 3_000, 'the tool event');
    equal(
      JSON.stringify(details[0]),
      JSON.stringify({
        turnId: 1,
        name: 'opening_hours',
        state: 'done',
        args: { day: 'saturday' },
        result: { open: '10:00' },
      }),
    );
  });
});
