/**
 * The admin console in real Chromium against a real relay (SQLite, the fake provider): sign-in
 * and its cookie, CSRF refusal, create → copy → revoke a key (a socket of that key closes), edit
 * a key (the relay's refusal next to its field; the change in the list and the audit log), a
 * usage chart from seeded usage, a conversation opened from the list and deleted through its
 * dialog, knowledge upload, search, a document removed through its dialog, the upload size guard
 * and deleting a collection, a failed webhook retried, sign-out. No CSP
 * violation on the way. Screenshots in test-output/console-*.png.
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/console.test.ts
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
let hookServer: Server | undefined;
/** The webhook endpoint answers 500 while this is true, then 204. */
let hookFailing = true;
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
  hookServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(hookFailing ? 500 : 204).end());
  });
  await new Promise<void>((r) => hookServer?.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hooks`;
  harness = await startRelay({
    relay: {
      adminToken: ADMIN,
      widget: true,
      toolAllowHosts: ['127.0.0.1'],
      webhooks: [{ url: hookUrl, events: ['handoff.requested'], secretEnv: 'HOOK_SECRET' }],
      webhookEnv: { HOOK_SECRET: 'whsec-console-browser-tests-0123456789' },
      recordsTiming: {
        webhookPollMs: 50,
        webhookRetry: { baseMs: 20, maxMs: 40, giveUpAfterMs: 150 },
      },
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
  hookServer?.close();
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
    // A bad origin first: the relay's message is next to the field, nothing is created.
    await page.type(q('vb-keys >>> #origins-new'), 'app.test/contact');
    await page.click(q('vb-keys >>> form button[type="submit"]'));
    await waitForText('vb-keys >>> #origins-error-new', /not an origin: "app.test\/contact"/);
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

  test('edit a key: the relay refuses a bad origin next to the field; the saved values show in the list and the audit log', async () => {
    const row = `vb-keys >>> tr[data-key="${harness.keyId}"]`;
    await page.click(q(`${row} button.secondary`));
    const form = `vb-keys >>> form[aria-label="Edit test"]`;
    await waitFor(`${form} #origins-${harness.keyId}`);
    const origins = q(`vb-keys >>> #origins-${harness.keyId}`);
    // Looks like an origin to a quick check; the relay's parser refuses the underscore.
    await page.$eval(origins, (el) => ((el as HTMLTextAreaElement).value = ''));
    await page.type(origins, `${ORIGIN}\nhttps://book_ings.example`);
    await page.click(q(`${form} button[type="submit"]`));
    await waitFor(`vb-keys >>> #origins-error-${harness.keyId}`);
    assert.match(
      await text(`vb-keys >>> #origins-error-${harness.keyId}`),
      /^not an origin: "https:\/\/book_ings\.example" \(expected scheme:\/\/host\[:port\]\)$/,
    );
    assert.equal(
      await page.$eval(origins, (el) => el.getAttribute('aria-invalid')),
      'true',
      'the field is marked invalid',
    );
    assert.match(
      (await page.$eval(origins, (el) => el.getAttribute('aria-describedby'))) ?? '',
      new RegExp(`origins-error-${harness.keyId}`),
    );
    assert.deepEqual((await harness.keys.get(harness.keyId))?.origins, [ORIGIN], 'nothing saved');

    await page.$eval(origins, (el) => ((el as HTMLTextAreaElement).value = ''));
    await page.type(origins, `${ORIGIN}\nhttps://*.clinic.example`);
    const label = q(`vb-keys >>> #label-${harness.keyId}`);
    await page.$eval(label, (el) => ((el as HTMLInputElement).value = ''));
    await page.type(label, 'Clinic site');
    await page.click(q(`${form} input[name="bots"][value="desk"]`));
    await page.click(q(`${form} details summary`));
    await page.type(q(`vb-keys >>> #maxConcurrentSessionsPerKey-${harness.keyId}`), '3');
    await page.click(q(`${form} button[type="submit"]`));
    await waitForText('vb-keys >>> p[role="status"].ok', /Saved Clinic site/);
    assert.match(
      await text(`${row} td[data-label="Label"]`),
      /Clinic site.*Open sessions at once: 3/,
    );
    assert.equal(
      await text(`${row} td[data-label="Origins"]`),
      `${ORIGIN}, https://*.clinic.example`,
    );
    assert.equal(await text(`${row} td[data-label="Bots"]`), 'desk');
    const stored = await harness.keys.get(harness.keyId);
    assert.deepEqual(stored?.limits, { maxConcurrentSessionsPerKey: 3 });

    await page.goto(`${harness.url}/console/#audit`);
    await waitFor('vb-audit >>> tr[data-audit]');
    const first = 'vb-audit >>> tbody tr:first-child';
    assert.match(await text(`${first} td[data-label="Action"]`), /^key\.update$/);
    assert.match(await text(`${first} td[data-label="Actor"]`), /^console \(127\.0\.0\.1\)$/);
    assert.match(await text(`${first} td[data-label="Key"]`), /Clinic site/);
    assert.match(
      await text(`${first} td[data-label="Detail"]`),
      /origins: http:\/\/app\.test, https:\/\/\*\.clinic\.example; bots: desk; label: Clinic site; limits: \{"maxConcurrentSessionsPerKey":3\}/,
    );
    // Filtered by the key: its own entries only, and the URL names it.
    await page.select(q('vb-audit >>> #audit-key'), harness.keyId);
    await waitForText('vb-audit >>> p[role="status"]', /entries for this key/);
    const keys = await page.$$eval(q('vb-audit >>> td[data-label="Key"] code'), (els) =>
      els.map((el) => el.textContent),
    );
    assert.ok(keys.length >= 2 && keys.every((k) => k === harness.keyId), String(keys));
    assert.equal(await page.evaluate(() => location.hash), `#audit/${harness.keyId}`);
    await page.select(q('vb-audit >>> #audit-key'), '');
    await waitForText('vb-audit >>> p[role="status"]', /entries\.$/);
    await shot('audit');
  });

  test('webhooks: a failed delivery shows its attempts and last error; a retry delivers it', async () => {
    hookFailing = true;
    await harness.relay.webhooks.enqueue('handoff.requested', 'desk', {
      conversation_id: 'conv_console_hook',
      reason: 'wants a person',
    });
    for (const deadline = Date.now() + TIMEOUT; ;) {
      const [row] = await harness.relay.webhooks.list({ status: 'failed' }, 1);
      if (row) break;
      assert.ok(Date.now() < deadline, 'the delivery failed');
      await new Promise((r) => setTimeout(r, 50));
    }
    await page.goto(`${harness.url}/console/#webhooks`);
    await waitFor('vb-webhooks >>> tr[data-delivery]');
    const row = 'vb-webhooks >>> tr[data-delivery]';
    assert.equal(await text(`${row} td[data-label="Status"]`), 'failed');
    assert.match(
      await text(`${row} td[data-label="Event"]`),
      /handoff\.requested\s*bot desk\s*conv_console_hook/,
    );
    const attempts = Number(await text(`${row} td[data-label="Attempts"]`));
    assert.ok(attempts >= 1);
    assert.match(
      await text(`${row} td[data-label="Last error"]`),
      /^HTTP 500 \d+ attempt\(s\)(.+: HTTP 500 in \d+ ms)+$/,
    );
    assert.match(await text(`${row} td[data-label="Next attempt"]`), /gave up/);
    await shot('webhooks');
    hookFailing = false;
    await page.click(q(`${row} button`));
    await waitForText('vb-webhooks >>> p[role="status"]', /delivered \(attempt \d+\)|failed/);
    assert.match(
      await text('vb-webhooks >>> p[role="status"]'),
      new RegExp(`Retried whd_\\S+: delivered \\(attempt ${attempts + 1}\\)`),
    );
    assert.equal(await text(`${row} td[data-label="Status"]`), 'delivered');
    assert.equal(await page.$(q(`${row} button`)), null, 'nothing to retry once delivered');
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
    // The bot by its name, the key by its label (its id small under it), as on the Audit screen.
    const row = 'vb-conversations >>> tr[data-conversation]';
    assert.equal(await text(`${row} td[data-label="Bot"]`), 'Front desk');
    await waitForText(`${row} td[data-label="Key"]`, /Clinic site/);
    assert.equal(await text(`${row} td[data-label="Key"] code`), harness.keyId);
    // The key filter is a picker of labels: another key's conversations are none of these.
    const options = await page.$$eval(q('vb-conversations >>> #f-key option'), (els) =>
      els.map((el) => ({ value: (el as HTMLOptionElement).value, label: el.textContent?.trim() })),
    );
    assert.ok(options.some((o) => o.value === harness.keyId && o.label === 'Clinic site'));
    const other = options.find((o) => o.value && o.value !== harness.keyId);
    assert.ok(other, JSON.stringify(options));
    const filterBy = async (id: string) => {
      await page.select(q('vb-conversations >>> #f-key'), id);
      await page.click(q('vb-conversations >>> form.filters button[type="submit"]'));
    };
    await filterBy(other.value);
    await waitForText('vb-conversations >>> section', /No conversations match/);
    await filterBy(harness.keyId);
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

  test('deleting a conversation asks in a dialog that says what goes; "Keep it" keeps it', async () => {
    const id = await page.$eval(q('vb-conversations >>> h2'), (el) =>
      (el.textContent ?? '').replace(/^Conversation /, '').trim(),
    );
    assert.match(id, /^conv_/);
    const erase = 'vb-conversations >>> article > .row button.danger';
    await page.click(q(erase));
    await waitFor('vb-conversations >>> dialog#delete-conversation[open]');
    assert.match(
      await text('vb-conversations >>> dialog#delete-conversation'),
      new RegExp(
        `^Delete conversation ${id}\\?\\s*Its transcript \\(1 turn\\(s\\)\\), timing, summary, feedback and webhook deliveries go; the daily usage figures stay`,
      ),
    );
    await shot('conversation-delete');
    await page.click(q('vb-conversations >>> dialog#delete-conversation button.secondary'));
    assert.equal(await page.$(q('vb-conversations >>> dialog#delete-conversation[open]')), null);
    assert.ok(await harness.relay.records.store.get(id), 'kept');

    await page.click(q(erase));
    await waitFor('vb-conversations >>> dialog#delete-conversation[open]');
    await page.click(q('vb-conversations >>> dialog#delete-conversation button.danger'));
    await waitForText('vb-conversations >>> p[role="status"].ok', /deleted/);
    assert.equal(
      await text('vb-conversations >>> p[role="status"].ok'),
      `Conversation ${id} deleted.`,
    );
    assert.equal(await page.evaluate(() => location.hash), '#conversations');
    assert.equal(await page.$(q('vb-conversations >>> tr[data-conversation]')), null);
    assert.equal(await harness.relay.records.store.get(id), undefined, 'erased');
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
    const hits = await page.$$eval(q('vb-knowledge >>> .results li'), (els) =>
      els.map((el) => (el.textContent ?? '').replace(/\s+/g, ' ').trim()),
    );
    assert.ok(
      hits.some((hit) =>
        /^Parking › Bicycles \(clinic, score [\d.]+\)\s*Racks by the front door/.test(hit),
      ),
      `the title is not repeated in the section: ${hits.join(' | ')}`,
    );
    await shot('knowledge');

    // Removing one document: a dialog names it and its chunks; "Keep it" keeps it.
    const hours = join(files, 'hours.md');
    await writeFile(hours, '# Opening hours\n\nWeekdays 8 to 18.\n');
    const picker = await page.$(q('vb-knowledge >>> #files'));
    await (picker as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(hours);
    await page.click(q('vb-knowledge >>> form[aria-label="Upload files"] button'));
    await waitForText('vb-knowledge >>> p[role="status"]', /1 added|Failed/);
    await waitFor('vb-knowledge >>> button[aria-label="Remove Opening hours"]');
    await page.click(q('vb-knowledge >>> button[aria-label="Remove Opening hours"]'));
    await waitFor('vb-knowledge >>> dialog#remove-document[open]');
    assert.match(
      await text('vb-knowledge >>> dialog#remove-document'),
      /^Remove Opening hours from clinic\?\s*Its 1 chunk\(s\) are deleted: bots no longer find it/,
    );
    await shot('knowledge-remove');
    await page.click(q('vb-knowledge >>> dialog#remove-document button.secondary'));
    assert.equal(await page.$(q('vb-knowledge >>> dialog#remove-document[open]')), null);
    const titles = async () =>
      (await harness.relay.knowledge.documents('clinic')).map((d) => d.title).sort();
    assert.deepEqual(await titles(), ['Opening hours', 'Parking']);
    await page.click(q('vb-knowledge >>> button[aria-label="Remove Opening hours"]'));
    await waitFor('vb-knowledge >>> dialog#remove-document[open]');
    await page.click(q('vb-knowledge >>> dialog#remove-document button.danger'));
    await waitForText('vb-knowledge >>> p[role="status"]', /Removed|Failed/);
    assert.equal(
      await text('vb-knowledge >>> p[role="status"]'),
      'Removed Opening hours from clinic.',
    );
    assert.deepEqual(await titles(), ['Parking']);
    assert.equal(
      await page.$(q('vb-knowledge >>> button[aria-label="Remove Opening hours"]')),
      null,
    );

    // Too large to send: said before anything is read, and nothing is sent.
    const large = join(files, 'scans.pdf');
    await writeFile(large, '');
    await truncate(large, 25 * 1024 * 1024);
    const chooser = await page.$(q('vb-knowledge >>> #files'));
    await (chooser as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(large);
    await waitFor('vb-knowledge >>> #files-problem');
    assert.match(
      await text('vb-knowledge >>> #files-problem'),
      /^the chosen file is 25\.0 MB; one upload takes at most 23\.9 MB \(the relay's 32\.0 MB request limit/,
    );
    assert.match(await text('vb-knowledge >>> #files-limit'), /at most 23\.9 MB per upload/);
    assert.ok(
      await page.$(q('vb-knowledge >>> form[aria-label="Upload files"] button[disabled]')),
      'Upload is disabled',
    );

    // Deleting the collection: the dialog says how many documents go.
    await page.click(q('vb-knowledge >>> button[aria-label="Delete collection clinic"]'));
    await waitFor('vb-knowledge >>> dialog#delete-collection[open]');
    assert.match(
      await text('vb-knowledge >>> dialog#delete-collection'),
      /Delete collection clinic\?\s*Its 1 document\(s\) and \d+ chunk\(s\) go with it/,
    );
    await page.click(q('vb-knowledge >>> dialog#delete-collection button.danger'));
    await waitForText('vb-knowledge >>> p[role="status"]', /deleted|Failed/);
    assert.match(
      await text('vb-knowledge >>> p[role="status"]'),
      /Collection clinic deleted with its 1 document\(s\)/,
    );
    assert.deepEqual(await harness.relay.knowledge.collections(), []);
  });

  test('try the bot: the widget on the console page talks through a try-out key', async () => {
    await page.goto(`${harness.url}/console/#try`);
    await waitFor('vb-try >>> form button');
    await page.click(q('vb-try >>> form button'));
    await waitFor('vb-try >>> voice-bot >>> .panel');
    const tryKey = (await harness.keys.list()).find((k) => k.label === 'console try-out');
    assert.ok(tryKey && !tryKey.revoked_at);
    assert.deepEqual(tryKey.origins, [new URL(harness.url).origin]);
    await shot('try');
  });

  test('at 390 px the screens fit the width', async () => {
    await page.setViewport({ width: 390, height: 844 });
    for (const screen of ['keys', 'usage', 'conversations', 'knowledge', 'audit', 'webhooks']) {
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
