/**
 * The main way a site owner embeds in-browser speech recognition: the page on its own origin, the
 * widget loaded with one script tag from the relay on another origin, which also serves
 * `stt-worker.js`, onnxruntime's wasm and the model under /widget/ (CORS `*`). A page may not start
 * a worker from another origin's script, so the SDK starts a `blob:` module worker that imports it.
 * Real transformers.js worker, tiny random-weight Whisper, fake microphone → transcript → reply,
 * under the CSP the docs give for this setup, as a response header.
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
import {
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
let site: StaticServer;
let browser: Browser;
const pages: Record<string, string> = {};

before(async () => {
  relay = await startRelay({
    upstream: {
      transcribe: () => 'the relay must not transcribe',
      chat: () => ({ content: REPLY }),
    },
    relay: {
      staticDirs: [
        { urlPath: '/widget/models/', dir: MODELS },
        { urlPath: '/widget/', dir: WIDGET_DIST },
      ],
    },
  });
  const r = new URL(relay.url);
  // Static imports inside a module worker are checked against worker-src, dynamic ones (onnxruntime's
  // .mjs) against script-src: the relay's origin is needed in both.
  const policy = `default-src 'self'; script-src 'self' ${r.origin} 'wasm-unsafe-eval'; worker-src blob: ${r.origin}; connect-src 'self' ${r.origin} ws://${r.host}`;
  site = await serveStatic(
    {},
    { pages, headers: () => ({ 'content-security-policy': withReports(policy, () => site) }) },
  );
  browser = await launchChromium({ fakeMicWav: join(FIXTURES, '48k/hours.wav') });
});
after(async () => {
  await browser?.close();
  await site?.close();
  await relay?.close();
});

test('cross-origin script tag: worker, wasm and model from the relay; the visitor’s words are transcribed in the page', async () => {
  assert.notEqual(new URL(site.url).origin, new URL(relay.url).origin);
  const key = (await relay.keys.create({ origins: [site.url], label: 'site on another origin' }))
    .secret;
  pages['/'] = widgetPage(`${relay.url}/widget/`, relay.url, key);
  const mark = relay.upstream.requests.length;
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await recordViolations(page);
  await spyOnSockets(page);
  await page.goto(site.url);

  const started = Date.now();
  await talkUntilReply(page, REPLY);
  const { user, errors } = await shown(page);
  console.log(
    `  cross-origin widget: reply ${Date.now() - started} ms after the click; the tiny model heard ${JSON.stringify(user)}`,
  );
  assert.equal(user.length, 1, 'one utterance');
  assert.deepEqual(errors, []);

  const sent = await sentBy(page);
  assert.equal(sent.binary, 0, 'no audio left the page');
  const texts = sent.json.map(
    (s) => JSON.parse(s) as { type: string; source?: string; text?: string },
  );
  assert.deepEqual(
    texts.filter((m) => m.type === 'text').map((m) => [m.source, m.text]),
    [['speech', user[0]]],
  );
  assert.equal(
    relay.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription').length,
    0,
  );
  assert.deepEqual(await violationsIn(page), []);
  assert.deepEqual(reportLines(site), [], 'no CSP report from the page or the worker');
});
