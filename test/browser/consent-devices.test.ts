/**
 * The greeting, the recording-consent notice, audio devices, level events, the silent-microphone
 * explanation and the hidden-tab pause, end to end in real Chromium: the widget from its script tag
 * on a page served by a real relay (the fake provider answers), Chromium's fake microphone playing a
 * WAV file (a recording of speech, or digital silence written here).
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/consent-devices.test.ts
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone } from '@voice-bot/fake-provider';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { FIXTURES, REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';

const WIDGET_DIST = resolve(REPO_ROOT, 'packages/widget/dist/browser');
const PAGES = resolve(REPO_ROOT, 'test/browser/pages');
const OUTPUT = resolve(REPO_ROOT, 'test-output');
const SILENT_WAV = join(OUTPUT, 'silent-mic.wav');
const TIMEOUT = 20_000;
const GREETING = 'Hello! I am the front desk. Ask me about opening hours.';
const NOTICE = 'This call is recorded and transcribed to answer you.';

interface Probe {
  /** getUserMedia calls (the constraints' deviceId, if any). */
  gum: (string | null)[];
  sockets: number;
  events: { name: string; detail: unknown }[];
}

declare global {
  interface Window {
    __probe: Probe;
  }
}

let harness: RelayHarness;
let origin: string;
let key: string;
const browsers: Browser[] = [];

before(async () => {
  harness = await startRelay({
    upstream: {
      transcribe: () => 'When do you open on Saturday?',
      chat: () => ({ content: 'We open at ten on Saturday.' }),
      speech: (request) => ({ pcm: synthesizeTone(request.input) }),
    },
    relay: {
      bots: [
        {
          id: 'front',
          name: 'Front desk',
          systemPrompt: 'You are the front desk.',
          greeting: GREETING,
        },
      ],
      staticDirs: [
        { urlPath: '/widget/', dir: WIDGET_DIST },
        { urlPath: '/', dir: PAGES },
      ],
    },
  });
  origin = new URL(harness.url).origin;
  key = (await harness.keys.create({ origins: [origin], label: 'consent test page' })).secret;
  await mkdir(OUTPUT, { recursive: true });
  await writeFile(SILENT_WAV, silentWav(10));
});

after(async () => {
  for (const browser of browsers) await browser.close();
  await harness?.close();
});

/** A mono 48 kHz PCM16 WAV of digital silence (exact zeros), as a muted microphone delivers. */
function silentWav(seconds: number): Buffer {
  const data = 48_000 * 2 * seconds;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(48_000, 24);
  header.writeUInt32LE(96_000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data, 40);
  return Buffer.concat([header, Buffer.alloc(data)]);
}

async function launch(wav: string): Promise<Browser> {
  const browser = await launchChromium({ fakeMicWav: wav, loop: true });
  browsers.push(browser);
  return browser;
}

/** The page with the inline widget (attributes from `attrs`), its getUserMedia and sockets counted. */
async function openPage(browser: Browser, attrs: Record<string, string>): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error('[page]', error));
  await page.evaluateOnNewDocument(() => {
    const probe: Probe = { gum: [], sockets: 0, events: [] };
    window.__probe = probe;
    const media = navigator.mediaDevices;
    const gum = media.getUserMedia.bind(media);
    media.getUserMedia = (constraints) => {
      const audio = constraints?.audio;
      const id =
        typeof audio === 'object' ? (audio.deviceId as { exact?: string } | undefined) : undefined;
      probe.gum.push(id?.exact ?? null);
      return gum(constraints);
    };
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        probe.sockets++;
      }
    };
    for (const name of ['ready', 'error', 'paused', 'history'])
      document.addEventListener(`voice-bot:${name}`, (event) => {
        const detail = (event as CustomEvent).detail as unknown;
        probe.events.push({
          name,
          detail:
            detail instanceof Error ? { code: (detail as Error & { code: string }).code } : detail,
        });
      });
  });
  const params = new URLSearchParams({ key, bot: 'front', mode: 'inline', ...attrs });
  await page.goto(`${harness.url}/widget-test.html?${params}`);
  await inWidget(page, '.panel');
  return page;
}

const inWidget = (page: Page, selector: string, timeout = TIMEOUT) =>
  page.waitForFunction(
    (selector) => document.querySelector('voice-bot')?.shadowRoot?.querySelector(selector),
    { timeout },
    selector,
  );

const probe = (page: Page): Promise<Probe> => page.evaluate(() => window.__probe);

const botTexts = (page: Page): Promise<string[]> =>
  page.evaluate(() =>
    [...(document.querySelector('voice-bot')?.shadowRoot?.querySelectorAll('.msg') ?? [])].map(
      (m) =>
        `${m.classList.contains('user') ? 'user' : 'bot'}: ${m.textContent?.replace(/^\w+: /, '').trim()}`,
    ),
  );

describe('greeting, consent, devices, levels and the page lifecycle in the widget', () => {
  test("the bot's greeting and name show before any connection, and the greeting stays first when the visitor types; the consent notice blocks the microphone until accepted, and is remembered", async () => {
    const browser = await launch(join(FIXTURES, '48k/hours.wav'));
    // No greeting or bot-name attribute: the panel shows the bot's own, from POST /v1/bot-info.
    const page = await openPage(browser, {
      consent: NOTICE,
      'consent-link': `${origin}/privacy`,
      output: 'text',
    });
    await page.waitForFunction(
      () => document.querySelector('voice-bot')?.shadowRoot?.querySelector('.msg.bot'),
      { timeout: TIMEOUT },
    );
    assert.deepEqual(await botTexts(page), [`bot: ${GREETING}`]);
    assert.equal(await page.$eval('voice-bot >>> header h2', (h) => h.textContent), 'Front desk');
    assert.equal((await probe(page)).sockets, 0, 'the greeting needs no connection');

    await page.click('voice-bot >>> [part="talk-button"]');
    await inWidget(page, '[part~="consent"]');
    const notice = await page.$eval(
      'voice-bot >>> [part~="consent"]',
      (el) => el.textContent ?? '',
    );
    assert.match(notice, /recorded and transcribed/);
    assert.equal(
      await page.$eval(
        'voice-bot >>> [part~="consent-link"]',
        (a) => (a as HTMLAnchorElement).href,
      ),
      `${origin}/privacy`,
    );
    assert.deepEqual((await probe(page)).gum, [], 'no microphone before consent');

    // Typing works without consent, and the relay's greeting is not a second bubble: it stays first.
    await page.click('voice-bot >>> input[part="input"]');
    await page.keyboard.type('When do you open?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () =>
        (document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelectorAll('.msg.bot:not(.streaming)').length ?? 0) >= 2,
      { timeout: TIMEOUT },
    );
    assert.deepEqual(await botTexts(page), [
      `bot: ${GREETING}`,
      'user: When do you open?',
      'bot: We open at ten on Saturday.',
    ]);
    assert.deepEqual((await probe(page)).gum, [], 'typing opens no microphone');

    await page.click('voice-bot >>> [part~="consent-accept"]');
    await page.waitForFunction(() => window.__probe.gum.length === 1, { timeout: TIMEOUT });
    await inWidget(page, '[part="talk-button"][aria-pressed="true"]');

    // Remembered for this site, relay and bot: after a reload the talk button opens the mic at once.
    await page.reload();
    await inWidget(page, '.panel');
    await page.click('voice-bot >>> [part="talk-button"]');
    await page.waitForFunction(() => window.__probe.gum.length === 1, { timeout: TIMEOUT });
    assert.equal(await page.$('voice-bot >>> [part~="consent"]'), null, 'no notice once accepted');
    await page.close();
  });

  test('levels while speaking, the output stream, the device menu switching microphones without dropping the session, an unplugged microphone replaced by the default, and the hidden tab pausing the microphone', async () => {
    const browser = await launch(join(FIXTURES, '48k/hours.wav'));
    const page = await openPage(browser, {});
    await page.evaluate(() => {
      const el = document.querySelector('voice-bot') as HTMLElement & { start(): Promise<void> };
      void el.start();
    });
    await page.waitForFunction(() => window.__probe.events.some((e) => e.name === 'ready'), {
      timeout: TIMEOUT,
    });
    const levels = await page.evaluate(async () => {
      const client = (
        document.querySelector('voice-bot') as HTMLElement & {
          client: {
            on(event: string, listener: (value: number) => void): () => void;
            outputStream(): MediaStream | undefined;
          };
        }
      ).client;
      const input: number[] = [];
      const output: number[] = [];
      const offIn = client.on('input-level', (v) => input.push(v));
      const offOut = client.on('output-level', (v) => output.push(v));
      const stream = client.outputStream();
      await new Promise((r) => setTimeout(r, 6000)); // the question, the greeting and the reply play
      offIn();
      offOut();
      return {
        input,
        output,
        tracks: stream?.getAudioTracks().length ?? -1,
      };
    });
    // Throttled to 20 a second (6 s → ≤ 121), emitted while speaking, levels in 0..1.
    assert.ok(
      levels.input.length > 60 && levels.input.length <= 121,
      `${levels.input.length} input levels`,
    );
    assert.ok(Math.max(...levels.input) > 0.01, 'the fake mic speaks');
    assert.ok(
      levels.output.length > 5 && levels.output.length <= 121,
      `${levels.output.length} output levels`,
    );
    assert.ok(Math.max(...levels.output) > 0.01, 'the reply plays');
    assert.ok(levels.input.every((v) => v >= 0 && v <= 1));
    assert.equal(levels.tracks, 1, 'outputStream() is a MediaStream with one audio track');

    // Chromium's fake devices: more than one microphone, and setSinkId → the menu has both choices.
    await page.click('voice-bot >>> [part~="devices"] summary');
    await inWidget(page, '[part="device-input"]');
    await inWidget(page, '[part="device-output"]');
    const other = await page.$eval('voice-bot >>> [part="device-input"]', (select) =>
      [...(select as HTMLSelectElement).options]
        .map((o) => o.value)
        .find((v) => v && v !== 'default'),
    );
    assert.ok(other, 'a second microphone to choose');
    await page.select('voice-bot >>> [part="device-input"]', other);
    await page.waitForFunction(
      (id) => window.__probe.gum.includes(id),
      { timeout: TIMEOUT },
      other,
    );
    // The capture moves to the new microphone's track; the old one is released.
    await page.waitForFunction(
      (id) => {
        const client = (
          document.querySelector('voice-bot') as HTMLElement & {
            client: { engine: { stream: MediaStream } };
          }
        ).client;
        const t = client.engine.stream.getAudioTracks()[0];
        return t?.getSettings().deviceId === id && t.readyState === 'live';
      },
      { timeout: TIMEOUT },
      other,
    );

    // That microphone is unplugged (its track ends; synthetic: Chromium's fake devices cannot be
    // unplugged): the default microphone takes over, on the same socket.
    const before = (await probe(page)).gum.length;
    await page.evaluate(() => {
      const client = (
        document.querySelector('voice-bot') as HTMLElement & {
          client: { engine: { stream: MediaStream } };
        }
      ).client;
      client.engine.stream.getAudioTracks()[0]?.dispatchEvent(new Event('ended'));
    });
    await page.waitForFunction(
      (n, id) => {
        const client = (
          document.querySelector('voice-bot') as HTMLElement & {
            client: { engine: { stream: MediaStream } };
          }
        ).client;
        const t = client.engine.stream.getAudioTracks()[0];
        return (
          window.__probe.gum.length > n &&
          window.__probe.gum.at(-1) === null &&
          t?.getSettings().deviceId !== id &&
          t?.readyState === 'live'
        );
      },
      { timeout: TIMEOUT },
      before,
      other,
    );

    // The tab is hidden (a synthetic visibilitychange: headless Chromium keeps pages visible).
    const hide = (hidden: boolean) =>
      page.evaluate((hidden) => {
        Object.defineProperty(document, 'visibilityState', {
          configurable: true,
          value: hidden ? 'hidden' : 'visible',
        });
        document.dispatchEvent(new Event('visibilitychange'));
        const client = (
          document.querySelector('voice-bot') as HTMLElement & {
            client: { engine: { stream: MediaStream } };
          }
        ).client;
        return client.engine.stream.getAudioTracks()[0]?.enabled;
      }, hidden);
    assert.equal(await hide(true), false, 'the microphone pauses while hidden');
    assert.equal(await hide(false), true, 'and listens again when shown');
    const after = await probe(page);
    assert.deepEqual(
      after.events.filter((e) => e.name === 'paused').map((e) => e.detail),
      [true, false],
    );
    assert.equal(
      after.events.filter((e) => e.name === 'ready').length,
      1,
      'one session throughout',
    );
    assert.equal(after.sockets, 1);
    await page.close();
  });

  test('a microphone that delivers only digital silence is explained', async () => {
    const browser = await launch(SILENT_WAV);
    const page = await openPage(browser, { output: 'text' });
    await page.click('voice-bot >>> [part="talk-button"]');
    await inWidget(page, '[part~="error"][data-code="mic_silent"]', 10_000);
    const text = await page.$eval('voice-bot >>> [part~="error"]', (el) => el.textContent ?? '');
    assert.match(text, /only silence/);
    // Not fatal: the session goes on (the visitor can choose another microphone or type).
    assert.equal(
      await page.$eval('voice-bot >>> [part="talk-button"]', (b) => b.getAttribute('aria-pressed')),
      'true',
    );
    await page.close();
  });
});
