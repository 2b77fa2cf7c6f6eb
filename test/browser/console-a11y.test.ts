/**
 * The admin console for keyboard and screen-reader users, in real Chromium against a real relay
 * (SQLite, the fake provider): axe-core finds no serious or critical violation on any screen at
 * 390 and 1280 px (the confirmation dialogs open included); sign-in, every screen, create → revoke
 * a key, remove a document and delete a conversation (their confirmation dialogs included) work
 * from the keyboard alone with a visible focus ring and focus that follows
 * dialogs; the accessibility tree names the navigation, headings, charts, fields and live regions.
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/console-a11y.test.ts
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { SerializedAXNode } from 'puppeteer-core';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { ORIGIN, openStartedTalk, startRelay, type RelayHarness } from '../support/relay.js';

const ADMIN = 'admin-token-for-console-a11y-tests-01234';
const TIMEOUT = 15_000;
const SCREENS = [
  ['keys', 'Keys', 'Keys'],
  ['usage', 'Usage', 'Usage'],
  ['conversations', 'Conversations', 'Conversations'],
  ['knowledge', 'Knowledge', 'Knowledge'],
  ['try', 'Try the bot', 'Try the bot'],
  ['audit', 'Audit log', 'Audit log'],
  ['webhooks', 'Webhooks', 'Webhook deliveries'],
] as const;

let harness: RelayHarness;
let browser: Browser;
let page: Page;
let axeSource: string;

const q = (selector: string) => `vb-console >>> ${selector}`;

async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, what: string) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const waitFor = (selector: string) =>
  until(() => page.$(q(selector)).then((el) => el !== null), Boolean, `${selector} did not appear`);

interface Focused {
  tag: string;
  id: string;
  text: string;
  label: string;
  /** The focused element is inside an open dialog. */
  inDialog: boolean;
  outline: string;
}

/** The element that has focus, through the shadow roots. */
function focused(): Promise<Focused> {
  return page.evaluate(() => {
    let el: Element | null = document.activeElement;
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
    const style = el ? getComputedStyle(el) : undefined;
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      id: el?.id ?? '',
      text: (el?.textContent ?? '').replace(/\s+/g, ' ').trim(),
      label: el?.getAttribute('aria-label') ?? '',
      inDialog: !!el?.closest('dialog[open]'),
      outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '',
    };
  });
}

/** Presses Tab (or Shift+Tab) until the focused element matches; fails after `max` presses. */
async function tabTo(match: (f: Focused) => boolean, shift = false, max = 60): Promise<Focused> {
  for (let i = 0; i < max; i++) {
    if (shift) await page.keyboard.down('Shift');
    await page.keyboard.press('Tab');
    if (shift) await page.keyboard.up('Shift');
    const now = await focused();
    if (match(now)) return now;
  }
  throw new Error(`Tab never reached the element (last: ${JSON.stringify(await focused())})`);
}

const focusedIs = (what: string, match: (f: Focused) => boolean) =>
  until(focused, match, `focus never reached ${what}`);

/** Serious and critical axe-core violations on the page, one line each. */
async function axeViolations(): Promise<string[]> {
  const loaded = await page.evaluate(() => 'axe' in window);
  if (!loaded) await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            context: Document,
            options: object,
          ): Promise<{
            violations: {
              id: string;
              impact: string | null;
              help: string;
              nodes: { target: unknown[] }[];
            }[];
          }>;
        };
      }
    ).axe;
    const { violations } = await axe.run(document, { resultTypes: ['violations'] });
    return violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return results
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id} (${v.help}): ${v.targets.join(', ')}`);
}

function flatten(node: SerializedAXNode | null): SerializedAXNode[] {
  if (!node) return [];
  return [node, ...(node.children ?? []).flatMap(flatten)];
}

async function axTree(): Promise<SerializedAXNode[]> {
  return flatten(await page.accessibility.snapshot({ interestingOnly: false }));
}

/** Shows a screen (signed in already) and waits until its main view has loaded. */
async function show(screen: string, ready: string): Promise<void> {
  await page.evaluate((hash) => (location.hash = hash), `#${screen}`);
  await waitFor(ready);
}

const READY: Record<string, string> = {
  keys: 'vb-keys >>> tr[data-key]',
  usage: 'vb-usage >>> #chart-sessions canvas',
  conversations: 'vb-conversations >>> tr[data-conversation]',
  knowledge: 'vb-knowledge >>> .badge.ready',
  try: 'vb-try >>> form button',
  audit: 'vb-audit >>> tr[data-audit]',
  webhooks: 'vb-webhooks >>> tr[data-delivery]',
};

before(async () => {
  const require = createRequire(import.meta.url);
  axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  harness = await startRelay({
    relay: {
      adminToken: ADMIN,
      bots: [
        {
          id: 'desk',
          name: 'Front desk',
          systemPrompt: 'You are the front desk.',
          records: { transcripts: true, retentionDays: 1 },
        },
      ],
      // An endpoint nobody answers: the delivery is listed (and fails).
      toolAllowHosts: ['127.0.0.1'],
      webhooks: [
        { url: 'http://127.0.0.1:9/hooks', events: ['handoff.requested'], secretEnv: 'HOOK' },
      ],
      webhookEnv: { HOOK: 'whsec-console-a11y-tests-0123456789' },
      recordsTiming: {
        webhookPollMs: 50,
        webhookRetry: { baseMs: 20, maxMs: 40, giveUpAfterMs: 100 },
      },
    },
  });
  const talk = await openStartedTalk(harness, { input: 'text', output: 'text' });
  talk.send({ type: 'text', text: 'Is there parking?' });
  await talk.next('done', () => true, { timeoutMs: TIMEOUT });
  talk.close();
  await talk.closed;
  await harness.relay.knowledge.addFiles(
    [
      {
        filename: 'parking.md',
        content: new TextEncoder().encode('# Parking\n\nBehind the clinic.\n'),
      },
    ],
    { collection: 'clinic' },
  );
  await harness.relay.webhooks.enqueue('handoff.requested', 'desk', {
    conversation_id: 'conv_a11y',
  });

  browser = await launchChromium();
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
});

after(async () => {
  await browser?.close();
  await harness?.close();
});

describe('admin console: keyboard and screen readers', () => {
  test('keyboard only: sign in, create a key, revoke it through its dialog; focus is visible and follows the dialog', async () => {
    await page.goto(`${harness.url}/console/`);
    await waitFor('#token');
    await tabTo((f) => f.id === 'token');
    await page.keyboard.type(ADMIN);
    await page.keyboard.press('Enter');
    await focusedIs('the Keys heading', (f) => f.tag === 'h2' && f.text === 'Keys');
    await waitFor(READY.keys ?? '');

    const newKey = await tabTo((f) => f.id === 'new-key');
    assert.equal(newKey.outline, 'solid 3px', 'a focus ring');
    await page.keyboard.press('Enter');
    await focusedIs('the new key form', (f) => f.id === 'label-new');
    await page.keyboard.type('Keyboard key');
    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'origins-new');
    await page.keyboard.type(ORIGIN);
    await tabTo((f) => f.tag === 'button' && f.text === 'Create key');
    await page.keyboard.press('Enter');
    await focusedIs('the new key', (f) => f.id === 'created-title');
    const created = (await harness.keys.list()).find((k) => k.label === 'Keyboard key');
    assert.ok(created);

    const revoke = await tabTo((f) => f.label === 'Revoke Keyboard key');
    assert.equal(revoke.outline, 'solid 3px');
    await page.keyboard.press('Enter');
    await waitFor('vb-keys >>> dialog#revoke[open]');
    const inDialog = await focusedIs('the dialog', (f) => f.inDialog);
    assert.equal(inDialog.text, 'Keep it', 'the safe choice has focus');
    await page.keyboard.press('Escape');
    await focusedIs('the Revoke button again', (f) => f.label === 'Revoke Keyboard key');
    assert.equal(await page.$(q('vb-keys >>> dialog#revoke[open]')), null);
    assert.equal((await harness.keys.get(created.id))?.revoked_at, null, 'Escape keeps the key');

    await page.keyboard.press('Enter');
    await focusedIs('the dialog', (f) => f.inDialog);
    const confirm = await tabTo((f) => f.inDialog && f.text === 'Revoke key', true, 4);
    assert.equal(confirm.outline, 'solid 3px');
    await page.keyboard.press('Enter');
    await focusedIs('the Keys heading', (f) => f.tag === 'h2' && f.text === 'Keys');
    await until(
      () => harness.keys.get(created.id),
      (k) => !!k?.revoked_at,
      'the key was not revoked',
    );
    const status = await page.$eval(q('vb-keys >>> p[role="status"].ok'), (el) => el.textContent);
    assert.match(status ?? '', /Revoked Keyboard key/);
  });

  test('keyboard only: every screen is reached from the navigation (Shift+Tab, arrow keys, Enter)', async () => {
    for (const [id, link, heading] of SCREENS.slice(1).concat(SCREENS.slice(0, 1))) {
      await tabTo((f) => f.tag === 'a' && SCREENS.some(([, title]) => title === f.text), true);
      for (let i = 0; i < SCREENS.length && (await focused()).text !== link; i++)
        await page.keyboard.press('ArrowLeft');
      assert.equal((await focused()).text, link);
      await page.keyboard.press('Enter');
      await focusedIs(`the ${heading} heading`, (f) => f.tag === 'h2' && f.text === heading);
      assert.equal(await page.evaluate(() => location.hash), `#${id}`);
    }
  });

  test('axe-core: no serious or critical violation on any screen at 1280 and 390 px', async () => {
    const found: string[] = [];
    for (const width of [1280, 390]) {
      await page.setViewport({ width, height: 900 });
      for (const [id] of SCREENS) {
        await show(id, READY[id] ?? '');
        found.push(...(await axeViolations()).map((v) => `${id} @${width}: ${v}`));
      }
      // The key form and the revoke dialog too.
      await show('keys', READY.keys ?? '');
      await page.click(q('vb-keys >>> #new-key'));
      await waitFor('vb-keys >>> #label-new');
      found.push(...(await axeViolations()).map((v) => `key form @${width}: ${v}`));
      await page.click(q('vb-keys >>> form.key-form button.secondary'));
      // The remove-document and delete-conversation dialogs, open.
      await show('knowledge', READY.knowledge ?? '');
      await page.click(q('vb-knowledge >>> button[aria-label="Remove Parking"]'));
      await waitFor('vb-knowledge >>> dialog#remove-document[open]');
      found.push(...(await axeViolations()).map((v) => `remove document @${width}: ${v}`));
      await page.keyboard.press('Escape');
      await show('conversations', READY.conversations ?? '');
      await page.click(q('vb-conversations >>> tr[data-conversation] a'));
      await waitFor('vb-conversations >>> article > .row button.danger');
      await page.click(q('vb-conversations >>> article > .row button.danger'));
      await waitFor('vb-conversations >>> dialog#delete-conversation[open]');
      found.push(...(await axeViolations()).map((v) => `delete conversation @${width}: ${v}`));
      await page.keyboard.press('Escape');
    }
    await page.setViewport({ width: 1280, height: 900 });
    assert.deepEqual(found, []);
  });

  test('webhooks on a relay without endpoints: a clear "not configured" note', async () => {
    const plain = await startRelay({ relay: { adminToken: ADMIN } });
    // A context of its own: cookies do not tell ports apart, the other relay's would replace ours.
    const context = await browser.createBrowserContext();
    const other = await context.newPage();
    try {
      await other.goto(`${plain.url}/console/#webhooks`);
      await other.waitForSelector(q('#token'));
      await other.type(q('#token'), ADMIN);
      await other.keyboard.press('Enter');
      const note = await until(
        () => other.$(q('vb-webhooks >>> [data-not-configured]')),
        (el) => el !== null,
        'the note did not appear',
      );
      assert.match(
        (await note?.evaluate((el) => el.textContent?.replace(/\s+/g, ' ').trim())) ?? '',
        /^Webhooks are not configured on this relay: add webhooks endpoints/,
      );
      assert.equal(await other.$(q('vb-webhooks >>> form')), null, 'no filters to use');
    } finally {
      await context.close();
      await plain.close();
    }
  });

  test('the accessibility tree names the navigation, headings, charts, fields and live regions', async () => {
    await show('usage', READY.usage ?? '');
    let tree = await axTree();
    assert.ok(tree.some((n) => n.role === 'navigation' && n.name === 'Console sections'));
    assert.ok(tree.some((n) => n.role === 'heading' && n.name === 'Usage' && n.level === 2));
    const charts = tree.filter((n) => n.role === 'image').map((n) => n.name ?? '');
    for (const title of ['Sessions and turns', 'Audio minutes', 'LLM tokens', 'Errors by code'])
      assert.ok(
        charts.some((name) => name.startsWith(`${title}, `) && /total \d/.test(name)),
        `${title} has a text summary: ${charts.join(' | ')}`,
      );

    await show('keys', READY.keys ?? '');
    await page.click(q('vb-keys >>> #new-key'));
    await waitFor('vb-keys >>> #label-new');
    await page.type(q('vb-keys >>> #origins-new'), 'https://bad_host.example');
    await page.click(q('vb-keys >>> form.key-form button[type="submit"]'));
    await waitFor('vb-keys >>> #origins-error-new');
    tree = await axTree();
    assert.ok(tree.some((n) => n.role === 'heading' && n.name === 'Keys' && n.level === 2));
    assert.ok(tree.some((n) => n.role === 'form' && n.name === 'New key'));
    assert.ok(tree.some((n) => n.role === 'textbox' && n.name === 'Label'));
    const origins = tree.find((n) => n.role === 'textbox' && n.name === 'Origins (one a line)');
    assert.ok(origins, 'the origins field is named by its label');
    assert.equal(origins.invalid, 'true');
    assert.match(origins.description ?? '', /^The sites that may use the key.*not an origin/s);
    assert.ok(tree.some((n) => n.role === 'checkbox' && n.name === 'Front desk'));
    assert.ok(tree.some((n) => n.role === 'alert' && /Check the marked field/.test(text(n))));
    assert.ok(
      tree.some((n) => n.role === 'status'),
      'a status region for outcomes',
    );
    await page.click(q('vb-keys >>> form.key-form button.secondary'));

    await show('webhooks', READY.webhooks ?? '');
    tree = await axTree();
    assert.ok(tree.some((n) => n.role === 'heading' && n.name === 'Webhook deliveries'));
    assert.ok(tree.some((n) => n.role === 'combobox' && n.name === 'Status'));
    assert.ok(
      tree.some(
        (n) =>
          n.role === 'button' && /^Retry now: handoff\.requested delivery whd_/.test(n.name ?? ''),
      ),
    );
  });

  test('keyboard only: removing a document and deleting a conversation ask in a dialog; Escape keeps them, focus comes back', async () => {
    // The webhooks test's page came to the front: a background page's focus does not move.
    await page.bringToFront();
    await show('knowledge', READY.knowledge ?? '');
    await tabTo((f) => f.label === 'Remove Parking');
    await page.keyboard.press('Enter');
    await waitFor('vb-knowledge >>> dialog#remove-document[open]');
    const keep = await focusedIs('the dialog', (f) => f.inDialog);
    assert.equal(keep.text, 'Keep it', 'the safe choice has focus');
    await page.keyboard.press('Escape');
    await focusedIs('the Remove button again', (f) => f.label === 'Remove Parking');
    assert.equal(await page.$(q('vb-knowledge >>> dialog#remove-document[open]')), null);
    assert.equal((await harness.relay.knowledge.documents('clinic')).length, 1, 'Escape keeps it');
    await page.keyboard.press('Enter');
    await focusedIs('the dialog', (f) => f.inDialog);
    await tabTo((f) => f.inDialog && f.text === 'Remove document', true, 4);
    await page.keyboard.press('Enter');
    await focusedIs('the Documents heading', (f) => f.tag === 'h3' && f.text === 'Documents');
    await until(
      () => harness.relay.knowledge.documents('clinic'),
      (docs) => docs.length === 0,
      'the document was not removed',
    );

    await show('conversations', READY.conversations ?? '');
    await tabTo((f) => f.tag === 'a' && f.id === '' && /\d/.test(f.text));
    await page.keyboard.press('Enter');
    await focusedIs('the conversation heading', (f) => f.id === 'conversation-title');
    const id = (await focused()).text.replace(/^Conversation /, '');
    const erase = await tabTo((f) => f.tag === 'button' && f.text === 'Delete conversation');
    assert.equal(erase.outline, 'solid 3px');
    await page.keyboard.press('Enter');
    await waitFor('vb-conversations >>> dialog#delete-conversation[open]');
    assert.equal((await focusedIs('the dialog', (f) => f.inDialog)).text, 'Keep it');
    await page.keyboard.press('Escape');
    await focusedIs(
      'the Delete button again',
      (f) => !f.inDialog && f.text === 'Delete conversation',
    );
    assert.ok(await harness.relay.records.store.get(id), 'Escape keeps it');
    await page.keyboard.press('Enter');
    await focusedIs('the dialog', (f) => f.inDialog);
    await tabTo((f) => f.inDialog && f.text === 'Delete conversation', true, 4);
    await page.keyboard.press('Enter');
    await focusedIs(
      'the Conversations heading',
      (f) => f.tag === 'h2' && f.text === 'Conversations',
    );
    assert.equal(await harness.relay.records.store.get(id), undefined, 'erased');
    const status = await page.$eval(
      q('vb-conversations >>> p[role="status"].ok'),
      (el) => el.textContent,
    );
    assert.equal(status, `Conversation ${id} deleted.`);
  });
});

/** A node's name with its descendants' (an alert's text is in its children). */
function text(node: SerializedAXNode): string {
  return [node.name ?? '', ...(node.children ?? []).map(text)].join(' ');
}
