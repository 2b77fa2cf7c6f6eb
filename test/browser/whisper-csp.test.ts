/**
 * In-browser speech recognition under a strict Content-Security-Policy, with the widget and its
 * assets self-hosted on the page's origin (the relay elsewhere): the policy is a response header
 * on the page and on every file, the worker script included (a module worker takes its CSP from
 * its own response). Violations are collected from the page's `securitypolicyviolation` events and
 * from CSP reports, which the worker sends too. Real transformers.js worker, tiny random-weight
 * Whisper, Silero VAD, fake microphone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  launchChromium,
  serveStatic,
  type Browser,
  type StaticServer,
} from '../support/browser.js';
import { FIXTURES, REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';
import { SDK_DIST } from '../support/page-client.js';
import {
  loadAndTranscribe,
  MODELS,
  recordViolations,
  reportLines,
  sentBy,
  shown,
  spyOnSockets,
  talkUntilReply,
  violationsIn,
  widgetPage,
  withReports,
} from '../support/stt-page.js';

const WIDGET_DIST = join(REPO_ROOT, 'packages/widget/dist/browser');
const REPLY = 'We open at ten on Saturday.';

let relay: RelayHarness;
const servers: StaticServer[] = [];
const browsers: Browser[] = [];

before(async () => {
  relay = await startRelay({
    upstream: {
      transcribe: () => 'the relay must not transcribe',
      chat: () => ({ content: REPLY }),
    },
  });
});
after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  await Promise.all(servers.map((s) => s.close()));
  await relay?.close();
});

/** The site: widget (and SDK) with worker, wasm and model beside them, every response carrying `policy`. */
async function siteWith(policy: string, pages: Record<string, string> = {}): Promise<StaticServer> {
  const site: StaticServer = await serveStatic(
    {
      '/widget/models/': MODELS,
      '/widget/': WIDGET_DIST,
      '/sdk/models/': MODELS,
      '/sdk/': SDK_DIST,
    },
    { pages, headers: () => ({ 'content-security-policy': withReports(policy, () => site) }) },
  );
  servers.push(site);
  return site;
}

async function launch(fakeMicWav?: string): Promise<Browser> {
  const browser = await launchChromium(fakeMicWav ? { fakeMicWav } : {});
  browsers.push(browser);
  return browser;
}

test('strict CSP on page and worker: the model loads and transcribes without a single violation', async () => {
  const r = new URL(relay.url);
  const pages: Record<string, string> = {};
  const site = await siteWith(
    `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self' ${r.origin} ws://${r.host}`,
    pages,
  );
  const key = (await relay.keys.create({ origins: [site.url], label: 'strict site' })).secret;
  pages['/'] = widgetPage('/widget/', relay.url, key);
  const mark = relay.upstream.requests.length;
  const page = await (await launch(join(FIXTURES, '48k/hours.wav'))).newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await recordViolations(page);
  await spyOnSockets(page);
  const workerScript = page.waitForResponse(
    (response) => response.url().endsWith('/widget/stt-worker.js'),
    { timeout: 60_000 },
  );
  await page.goto(site.url);

  await talkUntilReply(page, REPLY);
  assert.match(
    (await workerScript).headers()['content-security-policy'] ?? '',
    /worker-src 'self'/,
    'the worker script carries the policy itself',
  );
  const { user, errors } = await shown(page);
  assert.equal(user.length, 1, 'the tiny model transcribed the utterance');
  assert.deepEqual(errors, []);
  assert.equal((await sentBy(page)).binary, 0, 'no audio left the page');
  assert.equal(
    relay.upstream.requests.slice(mark).filter((req) => req.kind === 'transcription').length,
    0,
  );
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // reports are sent asynchronously
  assert.deepEqual(await violationsIn(page), []);
  assert.deepEqual(reportLines(site), [], 'no CSP report from the page or the worker');
});

test('the check can fail: without wasm-unsafe-eval the worker reports a violation and the model does not load', async () => {
  const site = await siteWith(
    "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'",
    { '/': '<!doctype html><title>site</title>' },
  );
  const page = await (await launch()).newPage();
  await page.goto(site.url);
  const outcome = await loadAndTranscribe(page, `${site.url}/sdk/voice-bot-sdk.js`).then(
    () => 'loaded',
    (error: unknown) => String(error),
  );
  assert.match(outcome, /stt_unavailable|In-browser speech recognition is unavailable/);
  const deadline = Date.now() + 10_000;
  while (site.reports.length === 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  const lines = reportLines(site);
  assert.ok(
    lines.some(
      (line) =>
        line.startsWith('script-src') &&
        line.includes('wasm-eval') &&
        line.includes('/sdk/stt-worker.js'),
    ),
    `a wasm-eval violation reported by the worker: ${lines.join(' | ')}`,
  );
});
