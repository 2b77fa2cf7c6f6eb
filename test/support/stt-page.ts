/**
 * Page-side helpers for the in-browser speech recognition tests: load the tiny Whisper with
 * `BrowserStt`, embed the widget with `stt="browser"` and talk to it, count what its socket sends,
 * and collect CSP violations from the page and from CSP reports. Nothing here evaluates strings in
 * the page, so it works under a CSP without 'unsafe-eval'.
 */
import { join } from 'node:path';
import type { Page, StaticServer } from './browser.js';
import { REPO_ROOT } from './relay.js';

/** Holds `tiny-whisper/` (a random-weight Whisper made by scripts/make-tiny-whisper.py). */
export const MODELS = join(REPO_ROOT, 'test/fixtures');
/** The model and precision the fixture provides; headless Chromium has no WebGPU adapter. */
export const TINY = { model: 'tiny-whisper', dtype: 'fp32', device: 'wasm' } as const;

/** What a page's sockets sent: JSON messages, the number of binary frames, and everything in order (binary frames as their byte length). */
export interface SentBySockets {
  json: string[];
  binary: number;
  sequence: (string | number)[];
}

type Win = Window & { sent: SentBySockets; violations: string[] };

export interface LoadResult {
  /** The worker's own measure: model files, wasm, sessions and a warm-up inference. */
  loadMs: number;
  /** From `new BrowserStt()` to ready, as the page sees it (includes starting the worker). */
  wallMs: number;
  transcribeMs: number;
  text: string;
}

/** Loads the tiny model with `BrowserStt` (assets beside `sdkUrl`) and transcribes one second of a tone. */
export function loadAndTranscribe(
  page: Page,
  sdkUrl: string,
  extra: Record<string, unknown> = {},
): Promise<LoadResult> {
  return page.evaluate(
    async (sdkUrl, options) => {
      const sdk = await import(sdkUrl);
      const started = performance.now();
      const stt = new sdk.BrowserStt({ assetBaseUrl: new URL('./', sdkUrl).href, ...options });
      const { loadMs } = (await stt.load()) as { loadMs: number };
      const wallMs = Math.round(performance.now() - started);
      const tone = new Float32Array(16_000).map(
        (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / 16_000),
      );
      const t0 = performance.now();
      const text = (await stt.transcribe(tone)) as string;
      const transcribeMs = Math.round(performance.now() - t0);
      stt.dispose();
      return { loadMs, wallMs, transcribeMs, text };
    },
    sdkUrl,
    { ...TINY, ...extra },
  );
}

/**
 * A site owner's page: the one-tag embed from `widgetBase` (a URL ending in `/`), inline, with
 * in-browser recognition of the tiny model.
 */
export function widgetPage(widgetBase: string, relayUrl: string, key: string): string {
  return `<!doctype html><meta charset="utf-8"><title>A site</title>
<script src="${widgetBase}voice-bot.js" async></script>
<voice-bot relay="${relayUrl}" key="${key}" mode="inline" output="text" stt="browser" stt-model="${TINY.model}" stt-dtype="${TINY.dtype}"></voice-bot>`;
}

/** Counts what the page's WebSockets send (JSON messages, binary audio frames), from the first script on. */
export async function spyOnSockets(page: Page): Promise<void> {
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as Win;
    w.sent = { json: [], binary: 0, sequence: [] };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data: string | ArrayBufferLike | Blob | ArrayBufferView) {
      if (typeof data === 'string') {
        w.sent.json.push(data);
        w.sent.sequence.push(data);
      } else {
        w.sent.binary++;
        w.sent.sequence.push(data instanceof Blob ? data.size : data.byteLength);
      }
      return send.call(this, data);
    };
  });
}

export const sentBy = (page: Page): Promise<SentBySockets> =>
  page.evaluate(() => (window as unknown as Win).sent);

/** Clicks the widget's talk button and waits for a finished reply containing `text`. */
export async function talkUntilReply(page: Page, text: string, timeoutMs = 90_000): Promise<void> {
  await page.waitForFunction(
    () => document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="talk-button"]'),
    { timeout: 30_000 },
  );
  await page.click('voice-bot >>> [part~="talk-button"]');
  await page.waitForFunction(
    (text) =>
      [
        ...(document
          .querySelector('voice-bot')
          ?.shadowRoot?.querySelectorAll('.msg.bot:not(.streaming)') ?? []),
      ].some((node) => node.textContent?.includes(text)),
    { timeout: timeoutMs, polling: 100 },
    text,
  );
}

/** What the widget shows the visitor said, and any error it shows. */
export const shown = (page: Page): Promise<{ user: string[]; errors: string[] }> =>
  page.evaluate(() => {
    const root = document.querySelector('voice-bot')?.shadowRoot;
    const [user, errors] = ['.msg.user', '[part~="error"]'].map((selector) =>
      [...(root?.querySelectorAll(selector) ?? [])].map((node) => {
        const copy = node.cloneNode(true) as Element;
        copy.querySelector('.sr-only')?.remove();
        return copy.textContent?.trim() ?? '';
      }),
    );
    return { user: user ?? [], errors: errors ?? [] };
  });

/** Records the document's `securitypolicyviolation` events from its first script on; read with `violationsIn`. */
export async function recordViolations(page: Page): Promise<void> {
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as Win;
    w.violations = [];
    document.addEventListener('securitypolicyviolation', (event) =>
      w.violations.push(`${event.effectiveDirective} ${event.blockedURI} ${event.sourceFile}`),
    );
  });
}

export const violationsIn = (page: Page): Promise<string[]> =>
  page.evaluate(() => (window as unknown as Win).violations);

/**
 * A CSP header value that also reports to `server` (absolute: a worker started from a `blob:` URL
 * could not resolve a relative `report-uri`). Workers report there too, which page listeners cannot see.
 */
export const withReports = (policy: string, server: () => StaticServer): string =>
  `${policy}; report-uri ${server().url}/csp-report`;

/** The CSP reports `server` received, one line each: directive, blocked URI, where. */
export const reportLines = (server: StaticServer): string[] =>
  server.reports.map((r) => {
    const report = (r as { 'csp-report'?: Record<string, string> })['csp-report'] ?? {};
    return `${report['effective-directive'] ?? report['violated-directive']} ${report['blocked-uri']} in ${report['document-uri']} (${report['source-file'] ?? ''})`;
  });
