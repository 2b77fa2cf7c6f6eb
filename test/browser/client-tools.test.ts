/**
 * Page-side tools and signed-in visitors in real Chromium: the <voice-bot> element (one script tag)
 * on a page that registers a tool, a real relay whose scripted model calls it, and a visitor token
 * signed the way a site's server does it.
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/client-tools.test.ts
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { launchChromium, type Browser } from '../support/browser.js';
import { REPO_ROOT, lastUser, startRelay, type RelayHarness } from '../support/relay.js';

const WIDGET_DIST = resolve(REPO_ROOT, 'packages/widget/dist/browser');
const PAGES = resolve(REPO_ROOT, 'test/browser/pages');
const TIMEOUT = 20_000;

type Message = { role: string; content?: string | null };

let harness: RelayHarness;
let browser: Browser;
const prompts: string[] = [];

/** What the test page records (`widget-test.html`) and what the page's tool handler saw. */
type PageWindow = Window & { __events: { name: string; detail: unknown }[]; __ran: unknown[] };

before(async () => {
  harness = await startRelay({
    upstream: {
      chat: (request: ChatRequest): ChatScript => {
        const messages = request.messages as Message[];
        prompts.push(String(messages[0]?.content));
        const last = messages.at(-1);
        if (last?.role === 'tool') return { content: `The page answered ${last.content ?? ''}` };
        return lastUser(request).includes('prices')
          ? { toolCalls: [{ name: 'show_section', arguments: '{"section":"prices"}' }] }
          : { content: 'ok' };
      },
    },
    relay: {
      staticDirs: [
        { urlPath: '/widget/', dir: WIDGET_DIST },
        { urlPath: '/', dir: PAGES },
      ],
      bots: [
        {
          id: 'front-desk',
          name: 'Front desk',
          systemPrompt: 'Signed in: {{user.name}}. Page: {{page}}.',
          greeting: 'Hi {{user.name}}!',
          clientTools: [
            {
              name: 'show_section',
              description: 'Scrolls the page to a section',
              parameters: {
                type: 'object',
                properties: { section: { type: 'string' } },
                required: ['section'],
              },
            },
          ],
        },
      ],
    },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await harness?.close();
});

test('the widget’s page runs the tool the model calls; metadata and a visitor token reach the bot', async () => {
  const origin = new URL(harness.url).origin;
  const { record, secret } = await harness.keys.create({ origins: [origin], label: 'tools page' });
  const visitorSecret = (await harness.keys.setVisitorSecret(record.id))?.secret ?? '';
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ name: 'Ana' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('u_7')
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(new TextEncoder().encode(visitorSecret));

  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  const params = new URLSearchParams({
    key: secret,
    input: 'text',
    output: 'text',
    metadata: JSON.stringify({ page: 'pricing' }),
    'visitor-token': token,
  });
  await page.goto(`${harness.url}/widget-test.html?${params}`);
  // A string, not a function: tsx would wrap the page's functions in a `__name` the page lacks.
  await page.evaluate(`(async () => {
    await customElements.whenDefined('voice-bot');
    window.__ran = [];
    const element = document.querySelector('voice-bot');
    element.registerTool({
      name: 'show_section',
      handler: async (args) => {
        window.__ran.push(args);
        await new Promise((r) => setTimeout(r, 50));
        return { shown: args.section, title: document.title };
      },
    });
    await element.sendText('show me the prices');
  })()`);
  const reply = await page.waitForFunction(
    () =>
      (window as unknown as PageWindow).__events
        .filter((e) => e.name === 'message')
        .map((e) => (e.detail as { text: string }).text)
        .find((text) => text.startsWith('The page answered')),
    { timeout: TIMEOUT },
  );
  assert.equal(
    await reply.jsonValue(),
    'The page answered {"shown":"prices","title":"Acme Dental — widget test page"}',
  );
  assert.deepEqual(await page.evaluate(() => (window as unknown as PageWindow).__ran), [
    { section: 'prices' },
  ]);
  // The public tool data reaches the page's DOM event.
  const tools = await page.evaluate(() =>
    (window as unknown as PageWindow).__events
      .filter((e) => e.name === 'tool')
      .map((e) => e.detail),
  );
  assert.deepEqual(tools.at(-1), {
    turnId: 2,
    name: 'show_section',
    state: 'done',
    args: { section: 'prices' },
    result: { shown: 'prices', title: 'Acme Dental — widget test page' },
  });
  const greeting = await page.evaluate(
    () =>
      (window as unknown as PageWindow).__events
        .filter((e) => e.name === 'message')
        .map((e) => (e.detail as { text: string }).text)[0],
  );
  assert.equal(greeting, 'Hi Ana!');
  assert.equal(prompts.at(-1), 'Signed in: Ana. Page: pricing.');
  assert.deepEqual(errors, []);
  await context.close();
});
