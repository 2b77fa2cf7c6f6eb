/**
 * The admin console in real Chromium against a real relay (SQLite, the fake provider): sign-in
 * and its cookie, CSRF refusal, create → copy → revoke a key (a socket of that key closes), a
 * usage chart from seeded usage, a conversation opened from the list, knowledge upload and
 * search, sign-out. No CSP violation on the way. Screenshots in test-output/console-*.png.
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/console.test.ts
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DayUsage } from '../../packages/relay/src/policy/usage.js';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import {
  ORIGIN,
  REPO_ROOT,
  TalkClient,
  connectTalk,
  createSession,
  openStartedTalk,
  startRelay,
  type RelayHarness,
} from '../support/relay.js';

const OUTPUT = resolve(REPO_ROOT, 'test-output');
const ADMIN = 'admin-token-for-console-tests-0123456789';
const TIMEOUT = 15_000;
const DAY_MS = 86_400_000;

let harness: RelayHarness;
let browser: Browser;
let page: Page;
let files: string;
const violations: string[] = [];
const pageErrors: string[] = [];

declare global {
  interface Window {
    __reportCsp(violation: string): void;
  }
}

function day(date: string, n: number): DayUsage {
  return {
    date,
    sessions: n,
    sockets: n,
    turns: n * 4,
    audio_in_ms: n * 30_000,
    audio_out_ms: n * 45_000,
    prompt_tokens: n * 900,
    completion_tokens: n * 120,
    tts_chars: n * 400,
    speculative_confirmed: 0,
    speculative_discarded: 0,
    errors: n % 2 ? { upstream_llm: 1 } : {},
  };
}

/** Usage of the harness key on the six days before today: 1 + 2 + … + 6 = 21 sessions. */
const SEEDED_SESSIONS = 21;
/** Today's: the recorded conversation's session and the socket opened on the console's key. */
const TODAYS_SESSIONS = 2;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUTPUT, `console-${name}.png`), fullPage: true });
}

const q = (selector: string) => `vb-console >>> ${selector}`;

async function text(selector: string): Promise<string> {
  return page.$eval(q(selector), (el) => (el.textContent ?? '').replace(/\s+/g, ' ').trim());
}

async function waitForText(selector: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const found = await page.$eval(q(selector), (el) => el.textContent ?? '').catch(() => '');
    if (pattern.test(found)) return;
    if (Date.now() > deadline)
      throw new Error(`${selector} never matched ${pattern}: ${JSON.stringify(found)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls for a (shadow-piercing) selector: puppeteer's own wait may miss changes inside shadow roots. */
async function waitFor(selector: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT;
  while (!(await page.$(q(selector)))) {
    if (Date.now() > deadline) {
      await shot('failure');
      throw new Error(`${selector} did not appear`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  harness = await startRelay({
    relay: {
      adminToken: ADMIN,
      widget: true,
      bots: [
        {
          id: 'desk',
          name: 'Front desk',
          systemPrompt: 'You are the front desk.',
          records: { transcripts: true, retentionDays: 1 },
        },
      ],
    },
  });
  const now = Date.now();
  const days: Record<string, Record<string, DayUsage>> = {};
  for (let i = 1; i <= 6; i++) {
    const date = new Date(now - i * DAY_MS).toISOString().slice(0, 10);
    days[date] = { [harness.keyId]: day(date, 7 - i) };
  }
  await harness.storage.usage.add(days);
  // One conversation, recorded through a real text turn.
  const talk = await openStartedTalk(harness, { input: 'text', output: 'text' });
  talk.send({ type: 'text', text: 'Can I book a check-up on Friday?' });
  await talk.next('done', () => true, { timeoutMs: TIMEOUT });
  talk.close();
  await talk.closed;

  files = await mkdtemp(join(tmpdir(), 'voicebot-console-'));
  await writeFile(
    join(files, 'parking.md'),
    '# Parking\n\nTwelve free spaces behind the clinic on Elm Street.\n\n## Bicycles\n\nRacks by the front door.\n',
  );
  await mkdir(OUTPUT, { recursive: true });
  browser = await launchChromium();
  const context = await browser.createBrowserContext();
  await context.overridePermissions(harness.url, ['clipboard-read', 'clipboard-sanitized-write']);
  page = await context.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await page.exposeFunction('__reportCsp', (violation: string) => violations.push(violation));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__reportCsp(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
});

after(async () => {
  await browser?.close();
  await harness?.close();
  if (files) await rm(files, { recursive: true, force: true });
});

describe('admin console', () => {
  test('the console page has a strict CSP and is not served without an admin token', async () => {
    const response = await fetch(`${harness.url}/console/`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'( 'wasm-unsafe-eval')?;/);
    assert.match(csp, /style-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    const without = await startRelay();
    try {
      assert.equal((await fetch(`${without.url}/console/`)).status, 404);
      assert.equal((await fetch(`${without.url}/console/session`, { method: 'POST' })).status, 404);
    } finally {
      await without.close();
    }
  });

  test('sign in: a wrong token is refused; the right one sets an HttpOnly SameSite=Strict cookie', async () => {
    await page.goto(`${harness.url}/console/`);
    await waitFor('#token');
    await shot('signin');
    await page.type(q('#token'), 'not-the-admin-token');
    await page.click(q('button[type="submit"]'));
    await waitForText('#sign-in-error', /not the admin token/);
    await page.$eval(q('#token'), (el) => ((el as HTMLInputElement).value = ''));
    await page.type(q('#token'), ADMIN);
    await page.keyboard.press('Enter');
    await waitFor('vb-keys >>> tr[data-key]');

    const cookie = (await page.cookies()).find((c) => c.name === 'vb_console');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'no Secure flag on 127.0.0.1 (plain http)');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires > Date.now() / 1000 + 7 * 3600, 'expires in about 8 hours');
    assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read it');

    // The cookie alone changes nothing: a POST without the CSRF header is refused.
    const refused = await page.evaluate(async () => {
      const response = await fetch('/admin/keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ origins: ['https://csrf.example'] }),
      });
      return response.status;
    });
    assert.equal(refused, 403);
  });

  test('create a key (secret shown once, copied), then revoke it: its open socket closes', async () => {
    await page.click(q('vb-keys >>> .row > button'));
    await page.type(q('vb-keys >>> #label-new'), 'Clinic website');
    // A bad origin first: the form says what is wrong, nothing is created.
    await page.type(q('vb-keys >>> #origins-new'), 'app.test/contact');
    await page.click(q('vb-keys >>> form button[type="submit"]'));
    await waitForText('vb-keys >>> form [role="alert"]', /is not an origin/);
    await page.$eval(
      q('vb-keys >>> #origins-new'),
      (el) => ((el as HTMLTextAreaElement).value = ''),
    );
    await page.type(q('vb-keys >>> #origins-new'), ORIGIN);
    await page.click(q('vb-keys >>> input[name="bots"][value="desk"]'));
    await page.click(q('vb-keys >>> form button[type="submit"]'));
    await waitFor('vb-keys >>> #secret');
    const secret = await page.$eval(
      q('vb-keys >>> #secret'),
      (el) => (el as HTMLInputElement).value,
    );
    assert.match(secret, /^vb_pk_/);
    assert.match(
      await text('vb-keys >>> .secret pre'),
      /<voice-bot relay="http:\/\/127\.0\.0\.1:\d+" key="vb_pk_[^"]+" bot="desk">/,
    );
    await page.click(q('vb-keys >>> button[data-copy="key"]'));
    await waitForText('vb-keys >>> .secret [role="status"]', /copied/);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await shot('keys-created');

    const created = (await harness.keys.list()).find((k) => k.label === 'Clinic website');
    assert.ok(created);
    assert.deepEqual(created.bots, ['desk']);
    const audit = await harness.storage.audit.list({ keyId: created.id });
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor.kind]),
      [['key.create', 'console']],
    );

    // A visitor's socket on that key.
    const session = await createSession(harness.url, { key: secret, origin: ORIGIN, bot: 'desk' });
    assert.equal(session.status, 201);
    const socket = await connectTalk(session.body.ws_url ?? '', session.body.token, ORIGIN);
    assert.ok(socket instanceof TalkClient);

    await page.click(q(`vb-keys >>> tr[data-key="${created.id}"] button.danger`));
    await waitFor('vb-keys >>> dialog#revoke[open]');
    assert.match(
      await text('vb-keys >>> dialog#revoke'),
      /open sessions \(1 now\) close immediately/,
    );
    await page.click(q('vb-keys >>> dialog#revoke button.danger'));
    await waitForText('vb-keys >>> p[role="status"].ok', /Revoked Clinic website: 1 open session/);
    const closed = await Promise.race([
      socket.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), TIMEOUT)),
    ]);
    assert.ok(closed, 'the socket closed');
    assert.ok((await harness.keys.get(created.id))?.revoked_at);
    await shot('keys');
  });

  test('usage: charts drawn from the stored usage; live figures', async () => {
    await page.goto(`${harness.url}/console/#usage`);
    await waitFor('vb-usage >>> #chart-sessions canvas');
    await waitFor('vb-usage >>> #chart-latency canvas');
    const sessions = SEEDED_SESSIONS + TODAYS_SESSIONS;
    assert.equal(Number(await text('vb-usage >>> [data-figure="sessions"]')), sessions);
    assert.equal(await text('vb-usage >>> [data-figure="open"]'), '0');
    const label = await page.$eval(q('vb-usage >>> #chart-sessions'), (el) =>
      el.getAttribute('aria-label'),
    );
    assert.match(label ?? '', new RegExp(`Sessions: total ${sessions}; Turns: total 85`));
    const errors = await page.$eval(q('vb-usage >>> #chart-errors'), (el) =>
      el.getAttribute('aria-label'),
    );
    assert.match(errors ?? '', /upstream_llm: total 3/);
    await shot('usage');
  });

  test('conversations: the recorded one opens from the list with its transcript and timing', async () => {
    await page.goto(`${harness.url}/console/#conversations`);
    await waitFor('vb-conversations >>> tr[data-conversation] a');
    await shot('conversations');
    await page.click(q('vb-conversations >>> tr[data-conversation] a'));
    await waitFor('vb-conversations >>> .transcript .turn');
    assert.match(
      await text('vb-conversations >>> .transcript'),
      /Visitor\s*Can I book a check-up on Friday\?/,
    );
    assert.match(await text('vb-conversations >>> .transcript'), /Bot\s*You said/);
    assert.ok(await page.$(q('vb-conversations >>> .timing svg rect')), 'a timing bar');
    await shot('conversation');
  });

  test('knowledge: make a collection, upload a file, try a search', async () => {
    await page.goto(`${harness.url}/console/#knowledge`);
    await waitFor('vb-knowledge >>> form[aria-label="New collection"] input');
    await page.type(q('vb-knowledge >>> form[aria-label="New collection"] input'), 'clinic');
    await page.click(q('vb-knowledge >>> form[aria-label="New collection"] button'));
    await waitForText('vb-knowledge >>> p[role="status"]', /Collection clinic created|Failed/);
    assert.match(await text('vb-knowledge >>> p[role="status"]'), /Collection clinic created/);
    await waitFor('vb-knowledge >>> #files');
    const input = await page.$(q('vb-knowledge >>> #files'));
    await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(
      join(files, 'parking.md'),
    );
    await page.click(q('vb-knowledge >>> form[aria-label="Upload files"] button'));
    await waitForText('vb-knowledge >>> p[role="status"]', /1 added/);
    await waitFor('vb-knowledge >>> .badge.ready');
    await page.type(q('vb-knowledge >>> #q'), 'where can I park my bicycle');
    await page.click(q('vb-knowledge >>> form[aria-label="Try a search"] button'));
    await waitFor('vb-knowledge >>> .results li');
    assert.match(await text('vb-knowledge >>> .results'), /Racks by the front door/);
    await shot('knowledge');
  });

  test('try the bot: the widget on the console page talks through a try-out key', async () => {
    await page.goto(`${harness.url}/console/#try`);
    await page.click(q('vb-try >>> form button'));
    await waitFor('vb-try >>> voice-bot >>> .panel');
    const tryKey = (await harness.keys.list()).find((k) => k.label === 'console try-out');
    assert.ok(tryKey && !tryKey.revoked_at);
    assert.deepEqual(tryKey.origins, [new URL(harness.url).origin]);
    await shot('try');
  });

  test('at 390 px the screens fit the width', async () => {
    await page.setViewport({ width: 390, height: 844 });
    for (const screen of ['keys', 'usage', 'conversations']) {
      await page.goto(`${harness.url}/console/#${screen}`);
      await waitFor(`vb-${screen} >>> h2`);
      if (screen === 'usage') await waitFor('vb-usage >>> #chart-sessions canvas');
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 1, `${screen} is ${overflow} px wider than the screen`);
      await shot(`${screen}-390`);
    }
    await page.setViewport({ width: 1280, height: 900 });
  });

  test('sign out: the session ends, the try-out key is revoked, the API refuses the cookie', async () => {
    await page.goto(`${harness.url}/console/#keys`);
    await waitFor('header button.secondary');
    await page.click(q('header button.secondary'));
    await waitFor('#token');
    assert.match(await text('#sign-in-error'), /Signed out/);
    assert.equal(await page.evaluate(async () => (await fetch('/admin/keys')).status), 401);
    const tryKey = (await harness.keys.list()).find((k) => k.label === 'console try-out');
    assert.ok(tryKey?.revoked_at, 'the try-out key is revoked at sign-out');
    const audit = await harness.storage.audit.list({ limit: 50 });
    const actions = audit.map((e) => e.action);
    for (const action of [
      'console.sign_in',
      'console.sign_in_failed',
      'console.sign_out',
      'console.change',
    ])
      assert.ok(actions.includes(action), `${action} is in the audit log`);
    assert.deepEqual(violations, [], 'no CSP violations');
    assert.deepEqual(pageErrors, []);
  });
});
