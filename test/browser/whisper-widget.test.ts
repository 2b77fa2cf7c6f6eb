/**
 * `<voice-bot stt="browser">` in real Chromium: the `stt-*` attributes reach the recogniser, the
 * model download shows as a styled progress bar that goes away when the model is ready, and a model
 * that cannot load never leaves the visitor stuck (relay fallback, or "type instead"). The widget is
 * self-hosted on the page's origin (its `stt-worker.js` replaced by the protocol stand-in
 * test/browser/pages/fake-stt-worker.js); the relay runs on another origin.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  launchChromium,
  serveStatic,
  type Browser,
  type Page,
  type StaticServer,
} from '../support/browser.js';
import { FIXTURES, REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';

const WIDGET_DIST = resolve(REPO_ROOT, 'packages/widget/dist/browser');
const PAGES = resolve(REPO_ROOT, 'test/browser/pages');
const OUTPUT = resolve(REPO_ROOT, 'test-output');
const TIMEOUT = 30_000;
const SPOKEN = 'What are your opening hours on Saturday?';
const REPLY = 'We open at ten on Saturday.';

interface RecordedEvent {
  name: string;
  detail: unknown;
}
type Win = Window & { __events: RecordedEvent[] };

let relay: RelayHarness;
let site: StaticServer;
let browser: Browser;
let key: string;

before(async () => {
  relay = await startRelay({
    upstream: { transcribe: () => SPOKEN, chat: () => ({ content: REPLY }) },
  });
  site = await serveStatic(
    { '/widget/': WIDGET_DIST, '/': PAGES },
    { files: { '/widget/stt-worker.js': join(PAGES, 'fake-stt-worker.js') } },
  );
  key = (await relay.keys.create({ origins: [site.url], label: 'widget stt' })).secret;
  browser = await launchChromium({ fakeMicWav: join(FIXTURES, '48k/hours.wav') });
  await mkdir(OUTPUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await site?.close();
  await relay?.close();
});

/** A fresh context with the widget inline; `attributes` become the element's attributes. */
async function openWidget(
  attributes: Record<string, string>,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.createBrowserContext();
  await context.setPermission(site.url, { permission: { name: 'microphone' }, state: 'granted' });
  const page = await context.newPage();
  await page.setViewport({ width: 900, height: 760 });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  const params = new URLSearchParams({
    key,
    relay: relay.url,
    mode: 'inline',
    output: 'text',
    stt: 'browser',
    ...attributes,
  });
  await page.goto(`${site.url}/widget-test.html?${params}`);
  await page.waitForFunction(
    () => document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="talk-button"]'),
    { timeout: TIMEOUT },
  );
  return { page, errors };
}

const recorded = (page: Page, name: string): Promise<unknown[]> =>
  page.evaluate(
    (name) =>
      (window as unknown as Win).__events.filter((e) => e.name === name).map((e) => e.detail),
    name,
  );

const waitForEvent = (page: Page, name: string): Promise<unknown> =>
  page.waitForFunction(
    (name) => (window as unknown as Win).__events.some((e) => e.name === name),
    { timeout: TIMEOUT },
    name,
  );

const waitForBotText = (page: Page, text: string): Promise<unknown> =>
  page.waitForFunction(
    (text) =>
      [
        ...(document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelectorAll('.msg.bot:not(.streaming)') ?? []),
      ].some((node) => node.textContent?.includes(text)),
    { timeout: TIMEOUT },
    text,
  );

describe('<voice-bot stt="browser">', () => {
  test('the attributes reach the recogniser; a themed progress bar shows the download, then goes away', async () => {
    const { page, errors } = await openWidget({
      'stt-model': 'fake/slow',
      'stt-model-base': '/custom-models/',
      'stt-dtype': 'q8',
    });
    await page.evaluate(() =>
      document
        .querySelector<HTMLElement>('voice-bot')
        ?.style.setProperty('--voice-bot-accent', 'rgb(10, 120, 90)'),
    );
    await page.click('voice-bot >>> [part~="talk-button"]');

    const midway = await page.waitForFunction(
      () => {
        const root = document.querySelector('voice-bot')?.shadowRoot;
        const bar = root?.querySelector<HTMLProgressElement>('progress[part~="stt-progress"]');
        if (!bar || bar.value !== 50) return undefined;
        return {
          value: bar.value,
          max: bar.max,
          label: root?.querySelector('.stt-label')?.textContent?.trim(),
          ariaLabel: bar.getAttribute('aria-label'),
          height: getComputedStyle(bar).height,
        };
      },
      { timeout: TIMEOUT, polling: 50 },
    );
    const shown = (await midway.jsonValue()) as {
      value: number;
      max: number;
      label: string;
      ariaLabel: string;
      height: string;
    };
    assert.equal(shown.max, 100);
    assert.equal(shown.label, `Preparing speech recognition… ${shown.value} %`);
    assert.equal(shown.ariaLabel, shown.label, 'the bar has the same accessible name');
    assert.equal(shown.height, '6px', 'the widget styles the bar (not the browser default)');
    // What is painted: the filled part in the accent colour, the rest in the border colour.
    const bar = await page.$('voice-bot >>> progress[part~="stt-progress"]');
    const png = Buffer.from((await bar?.screenshot({ encoding: 'base64' })) ?? '', 'base64');
    const [filled, track] = await page.evaluate(async (base64) => {
      const bitmap = await createImageBitmap(
        await (await fetch(`data:image/png;base64,${base64}`)).blob(),
      );
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext('2d');
      context?.drawImage(bitmap, 0, 0);
      const y = Math.floor(bitmap.height / 2);
      return [0.1, 0.97].map((at) =>
        [...(context?.getImageData(Math.floor(bitmap.width * at), y, 1, 1).data ?? [])]
          .slice(0, 3)
          .join(','),
      );
    }, png.toString('base64'));
    assert.equal(filled, '10,120,90', 'the fill follows --voice-bot-accent');
    assert.equal(track, '227,230,236', 'the track is the border colour');
    await page.emulateMediaFeatures([{ name: 'prefers-reduced-motion', value: 'reduce' }]);
    const transitions = await page.evaluate(() => {
      const root = document.querySelector('voice-bot')?.shadowRoot;
      const found: string[] = [];
      for (const sheet of root?.adoptedStyleSheets ?? []) {
        for (const rule of sheet.cssRules) {
          if (!(rule instanceof CSSMediaRule) || !matchMedia(rule.conditionText).matches) continue;
          for (const inner of rule.cssRules) {
            if (inner instanceof CSSStyleRule && inner.selectorText.includes('progress-value'))
              found.push(inner.style.transitionDuration || inner.style.transition);
          }
        }
      }
      return found;
    });
    assert.deepEqual(transitions, ['0s'], 'an active reduced-motion rule stops the fill animating');
    await page.screenshot({ path: resolve(OUTPUT, 'widget-stt-progress.png') });

    await page.evaluate(() => new BroadcastChannel('fake-stt').postMessage('continue'));
    await waitForEvent(page, 'stt-ready');
    await page.waitForFunction(
      () =>
        !document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="stt"], progress'),
      { timeout: TIMEOUT },
    );
    const progress = (await recorded(page, 'stt-progress')) as { percent: number; file: string }[];
    assert.deepEqual(
      progress.map((p) => p.percent),
      [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    );
    assert.equal(
      progress[0]?.file,
      `${site.url}/custom-models/fake/slow/onnx/encoder_model_q8.onnx`,
      'stt-model, stt-model-base and stt-dtype reached the worker',
    );

    // The utterance the fake microphone plays is transcribed in the page and answered.
    await waitForBotText(page, REPLY);
    assert.equal(await page.$('voice-bot >>> [part~="error"]'), null);
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });

  test('stt-fallback="relay": a model that fails is replaced by the relay’s STT without an error on screen', async () => {
    const mark = relay.upstream.requests.length;
    const { page, errors } = await openWidget({
      'stt-model': 'fake/broken',
      'stt-fallback': 'relay',
    });
    await page.click('voice-bot >>> [part~="talk-button"]');
    await waitForEvent(page, 'stt-fallback');
    await waitForBotText(page, REPLY);
    const users = await page.$$eval('voice-bot >>> .msg.user', (nodes) =>
      nodes.map((node) => node.textContent?.replace('You:', '').trim()),
    );
    assert.deepEqual(users, [SPOKEN], 'the relay transcribed what was said');
    assert.equal(
      relay.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription').length,
      1,
    );
    const codes = ((await recorded(page, 'error')) as { code: string }[]).map((e) => e.code);
    assert.deepEqual(
      codes,
      ['stt_unavailable'],
      'the SDK reported the failure (for the site owner)…',
    );
    assert.equal(
      await page.$('voice-bot >>> [part~="error"]'),
      null,
      '…but the visitor has nothing to act on',
    );
    assert.equal(
      await page.$eval('voice-bot >>> [part~="talk-button"]', (node) =>
        node.getAttribute('aria-pressed'),
      ),
      'true',
      'still listening',
    );
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });

  test('no fallback: a model that fails ends the voice session and offers Try again and Type instead', async () => {
    const mark = relay.upstream.requests.length;
    const { page, errors } = await openWidget({ 'stt-model': 'fake/broken' });
    await page.click('voice-bot >>> [part~="talk-button"]');
    await page.waitForFunction(
      () =>
        document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelector('[part~="error"][data-code="stt_unavailable"]'),
      { timeout: TIMEOUT },
    );
    const text = await page.$eval(
      'voice-bot >>> [part~="error"]',
      (node) => node.textContent ?? '',
    );
    assert.match(text, /Speech recognition isn’t working in this browser right now/);
    assert.ok(await page.$('voice-bot >>> [part~="retry-button"]'), 'offers to try again');
    assert.ok(await page.$('voice-bot >>> [part~="type-instead-button"]'), 'offers typing');
    await page.waitForFunction(
      () =>
        document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelector('[part~="talk-button"]')
          ?.getAttribute('aria-pressed') === 'false',
      { timeout: TIMEOUT },
    );
    await page.screenshot({ path: resolve(OUTPUT, 'widget-stt-unavailable.png') });

    // Try again really tries again: a new voice session loads the model anew (and fails anew here).
    await page.click('voice-bot >>> [part~="retry-button"]');
    await page.waitForFunction(
      () =>
        (window as unknown as Win).__events.filter(
          (e) => e.name === 'error' && (e.detail as { code: string }).code === 'stt_unavailable',
        ).length === 2,
      { timeout: TIMEOUT },
    );
    await page.waitForFunction(
      () =>
        document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelector('[part~="error"][data-code="stt_unavailable"]'),
      { timeout: TIMEOUT },
    );

    await page.click('voice-bot >>> [part~="type-instead-button"]');
    await page.waitForFunction(
      () => !document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="error"]'),
      { timeout: TIMEOUT },
    );
    await page.click('voice-bot >>> input');
    await page.keyboard.type('Are you open on Saturday?');
    await page.keyboard.press('Enter');
    await waitForBotText(page, REPLY);
    assert.equal(
      relay.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription').length,
      0,
      'no audio went to the relay',
    );
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });
});
