/**
 * The instrumented pages under bench/pages, in headless Chromium: a relay that serves them (the
 * SDK at `/sdk/`, the pages at `/`), and a fresh browser per measurement whose fake microphone
 * loops a recording.
 */
import { join } from 'node:path';
import type { FakeUpstreamOptions } from '@voice-bot/fake-provider';
import { launchChromium, type Page } from '../test/support/browser.js';
import { startRelay, type RelayHarness } from '../test/support/relay.js';
import { REPO_ROOT } from './common.js';

/** A relay with a scripted upstream serving bench/pages (and `extraDirs`), and a client key for its own origin. */
export async function startPageRelay(
  upstream: FakeUpstreamOptions,
  extraDirs: { urlPath: string; dir: string }[] = [],
): Promise<{ h: RelayHarness; key: string }> {
  const h = await startRelay({
    upstream,
    relay: {
      staticDirs: [
        { urlPath: '/sdk/', dir: join(REPO_ROOT, 'packages/sdk/dist/browser') },
        ...extraDirs,
        { urlPath: '/', dir: join(REPO_ROOT, 'bench/pages') },
      ],
    },
  });
  const key = (await h.keys.create({ origins: [new URL(h.url).origin] })).secret;
  return { h, key };
}

/**
 * Launches Chromium with `fakeMicWav` looping as its microphone, opens `url` and runs `measure` on
 * the page (with the browser's version); the browser is closed afterwards, whatever happens.
 */
export async function withBenchPage<T>(
  url: string,
  fakeMicWav: string,
  measure: (page: Page, chromium: string) => Promise<T>,
): Promise<T> {
  const browser = await launchChromium({ fakeMicWav, loop: true });
  try {
    const chromium = await browser.version();
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('[browser] page error:', error));
    await page.goto(url);
    return await measure(page, chromium);
  } finally {
    await browser.close();
  }
}
