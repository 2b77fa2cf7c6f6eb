/**
 * Handoff, feedback buttons and links in replies, end to end in real Chromium: the widget from its
 * script tag on a page served by a real relay (the fake provider scripts the model), a local
 * helpdesk receiving the signed `handoff.requested` webhook.
 *
 * Run: npm run build && node --conditions=source --import tsx --test test/browser/handoff.test.ts
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { REPO_ROOT, startRelay, type RelayHarness } from '../support/relay.js';
import {
  readmeVerifier,
  startReceiver,
  type VerifyWebhook,
  type WebhookReceiver,
} from '../support/webhooks.js';

const WIDGET_DIST = resolve(REPO_ROOT, 'packages/widget/dist/browser');
const PAGES = resolve(REPO_ROOT, 'test/browser/pages');
const OUTPUT = resolve(REPO_ROOT, 'test-output');
const TIMEOUT = 20_000;
const ADMIN = 'admin-token-for-handoff-tests-0123456789';
const SECRET = 'helpdesk-secret-0123456789abcdef';
const NEXT = 'Our front desk will call you back within the hour.';

interface HandoffDetail {
  turnId: number;
  reason: string;
  urgency: string;
  summary: string;
  targets: { phone?: string; email?: string; chatUrl?: string };
  message?: string;
}

declare global {
  interface Window {
    __handoffs: {
      detail: HandoffDetail;
      bubbles: boolean;
      composed: boolean;
      cancelable: boolean;
    }[];
  }
}

let harness: RelayHarness;
let receiver: WebhookReceiver;
let verify: VerifyWebhook;
let browser: Browser;
let origin: string;
let key: string;

/** The scripted model: hands off when asked for a person, else answers with links. */
function chat(request: ChatRequest): ChatScript {
  const last = request.messages.at(-1) as { role?: string; content?: unknown } | undefined;
  if (last?.role === 'tool') return { content: 'Of course. Our front desk will call you back.' };
  const said = String(last?.content ?? '');
  if (/person|human/i.test(said))
    return {
      toolCalls: [
        {
          name: 'handoff',
          arguments: JSON.stringify({
            reason: 'asked for a person',
            urgency: 'normal',
            summary: 'Wants to move a check-up.',
          }),
        },
      ],
    };
  return {
    content:
      `Book on [our booking page](${origin}/book), not [this one](javascript:alert(1)) ` +
      'nor at https://evil.example/phish.',
  };
}

before(async () => {
  receiver = await startReceiver();
  verify = await readmeVerifier();
  harness = await startRelay({
    upstream: { chat },
    relay: {
      adminToken: ADMIN,
      bots: [
        {
          id: 'desk',
          name: 'Front desk',
          systemPrompt: 'You are the front desk.',
          records: { transcripts: true, retentionDays: 1 },
          feedback: true,
          handoff: {
            targets: {
              webhook: true,
              phone: '+1 555 0100',
              email: 'desk@acme.example',
              chatUrl: 'https://acme.example/live-chat',
            },
            message: NEXT,
          },
        },
      ],
      toolAllowHosts: ['127.0.0.1'],
      webhooks: [{ url: receiver.url, events: ['handoff.requested'], secretEnv: 'HOOK_SECRET' }],
      webhookEnv: { HOOK_SECRET: SECRET },
      recordsTiming: { webhookPollMs: 100 },
      staticDirs: [
        { urlPath: '/widget/', dir: WIDGET_DIST },
        { urlPath: '/', dir: PAGES },
      ],
    },
  });
  origin = new URL(harness.url).origin;
  key = (await harness.keys.create({ origins: [origin], label: 'handoff test page' })).secret;
  browser = await launchChromium();
  await mkdir(OUTPUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await harness?.close();
  await receiver?.close();
});

/** A fresh page with the inline widget for typing; `cancelHandoff` makes the page open its own chat. */
async function openPage({ cancelHandoff = false } = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 900, height: 820 });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.evaluateOnNewDocument((cancel: boolean) => {
    window.__handoffs = [];
    // On the document: the event bubbles out of the element and its shadow root.
    document.addEventListener('voice-bot:handoff', (event) => {
      const { detail, bubbles, composed, cancelable } = event as CustomEvent<HandoffDetail>;
      window.__handoffs.push({ detail, bubbles, composed, cancelable });
      if (cancel) event.preventDefault();
    });
  }, cancelHandoff);
  const params = new URLSearchParams({
    key,
    bot: 'desk',
    mode: 'inline',
    input: 'text',
    output: 'text',
  });
  await page.goto(`${harness.url}/widget-test.html?${params}`);
  await waitInWidget(page, '.panel');
  return { page, errors };
}

async function waitInWidget(page: Page, selector: string, timeout = TIMEOUT): Promise<void> {
  await page.waitForFunction(
    (selector) => document.querySelector('voice-bot')?.shadowRoot?.querySelector(selector),
    { timeout },
    selector,
  );
}

async function typeAndSend(page: Page, text: string): Promise<void> {
  await page.click('voice-bot >>> input[part="input"]');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

/** Waits until the widget has `count` finished bot replies. */
const waitForReplies = (page: Page, count: number) =>
  page.waitForFunction(
    (count) =>
      (document.querySelector('voice-bot')?.shadowRoot?.querySelectorAll('.msg.bot:not(.streaming)')
        .length ?? 0) >= count,
    { timeout: TIMEOUT },
    count,
  );

describe('handoff, feedback and links in the widget', () => {
  test('asking for a person: the card shows the configured ways, the DOM event fires, the webhook arrives signed', async () => {
    const { page, errors } = await openPage();
    await typeAndSend(page, 'Can I talk to a person?');
    await waitInWidget(page, '[part~="handoff"]');
    await waitForReplies(page, 1);

    const handoffs = await page.evaluate(() => window.__handoffs);
    assert.equal(handoffs.length, 1);
    const event = handoffs[0];
    assert.ok(event?.bubbles && event.composed && event.cancelable);
    assert.deepEqual(
      { ...event.detail, turnId: typeof event.detail.turnId },
      {
        turnId: 'number',
        reason: 'asked for a person',
        urgency: 'normal',
        summary: 'Wants to move a check-up.',
        targets: {
          phone: '+1 555 0100',
          email: 'desk@acme.example',
          chatUrl: 'https://acme.example/live-chat',
        },
        message: NEXT,
      },
    );

    // In the page: no helper functions inside (the test's TypeScript transform would name them).
    const card = await page.evaluate(() => {
      const box = document
        .querySelector('voice-bot')
        ?.shadowRoot?.querySelector('[part~="handoff"]');
      const links = Object.fromEntries(
        [...(box?.querySelectorAll('a') ?? [])].map((a) => [
          a.getAttribute('part'),
          {
            href: a.getAttribute('href'),
            text: a.textContent?.trim(),
            target: a.target,
            rel: a.rel,
          },
        ]),
      );
      return {
        text: box?.querySelector('p')?.textContent,
        title: box?.querySelector('strong')?.textContent,
        chat: links['handoff-chat'],
        call: links['handoff-call'],
        email: links['handoff-email'],
      };
    });
    assert.equal(card.title, 'Talk to a person');
    assert.equal(card.text, NEXT);
    assert.deepEqual(card.call, {
      href: 'tel:+15550100',
      text: 'Call +1 555 0100',
      target: '',
      rel: '',
    });
    assert.deepEqual(card.email, {
      href: 'mailto:desk@acme.example',
      text: 'Email desk@acme.example',
      target: '',
      rel: '',
    });
    assert.deepEqual(card.chat, {
      href: 'https://acme.example/live-chat',
      text: 'Open live chat (opens in a new tab)',
      target: '_blank',
      rel: 'noopener noreferrer',
    });

    const panel = await page.$('voice-bot');
    await panel?.screenshot({ path: resolve(OUTPUT, 'handoff-card.png') });

    const [delivery] = await receiver.waitFor(1);
    assert.ok(delivery && verify(SECRET, delivery.headers, delivery.body), 'signed webhook');
    const body = JSON.parse(delivery.body) as { type: string; data: { summary: string } };
    assert.equal(body.type, 'handoff.requested');
    assert.equal(body.data.summary, 'Wants to move a check-up.');

    // Hidden with its close button; the conversation goes on.
    await page.click('voice-bot >>> [part~="handoff-close"]');
    await page.waitForFunction(
      () => !document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="handoff"]'),
    );
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });

  test('a page that calls preventDefault() gets the event and no card', async () => {
    const { page, errors } = await openPage({ cancelHandoff: true });
    await typeAndSend(page, 'I want a human');
    await waitForReplies(page, 1);
    await page.waitForFunction(() => window.__handoffs.length === 1);
    // The reply rendered after the handoff: had there been a card, it would be there by now.
    const card = await page.evaluate(
      () =>
        document.querySelector('voice-bot')?.shadowRoot?.querySelector('[part~="handoff"]') !==
        null,
    );
    assert.equal(card, false);
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });

  test('a reply renders only the allowed link; feedback buttons reach the relay', async () => {
    const { page, errors } = await openPage();
    await typeAndSend(page, 'Where can I book?');
    await waitForReplies(page, 1);
    await waitInWidget(page, '.msg.bot a');
    const reply = await page.evaluate(() => {
      const message = document.querySelector('voice-bot')?.shadowRoot?.querySelector('.msg.bot');
      const copy = message?.cloneNode(true) as HTMLElement | undefined;
      for (const hidden of copy?.querySelectorAll('.sr-only') ?? []) hidden.remove();
      return {
        links: [...(copy?.querySelectorAll('a') ?? [])].map((a) => ({
          href: a.getAttribute('href'),
          text: a.textContent,
          target: a.target,
          rel: a.rel,
        })),
        text: copy?.textContent,
      };
    });
    assert.deepEqual(reply.links, [
      {
        href: `${origin}/book`,
        text: 'our booking page',
        target: '_blank',
        rel: 'noopener noreferrer',
      },
    ]);
    assert.match(reply.text ?? '', /not this one nor at https:\/\/evil\.example\/phish\./);
    assert.ok(
      !(reply.text ?? '').includes('javascript:'),
      'a refused Markdown link keeps its label only',
    );

    // Thumbs down opens an optional comment; sending it reaches the conversation's record.
    await waitInWidget(page, '[part~="feedback-down"]');
    await page.click('voice-bot >>> [part~="feedback-down"]');
    await waitInWidget(page, '[part~="feedback-comment"]');
    await page.type('voice-bot >>> [part~="feedback-comment"]', 'Wanted the phone number');
    await page.click('voice-bot >>> [part~="feedback-send"]');
    await waitInWidget(page, '[part~="feedback"][role="status"]');
    const conversationId = await page.evaluate(() => {
      const recorded = (window as unknown as { __events: { name: string; detail: unknown }[] })
        .__events;
      return (recorded.find((e) => e.name === 'ready')?.detail as { conversationId: string })
        .conversationId;
    });
    const deadline = Date.now() + TIMEOUT;
    let feedback: unknown;
    while (Date.now() < deadline) {
      const response = await fetch(`${harness.url}/admin/conversations/${conversationId}`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      const record = response.ok
        ? ((await response.json()) as { turns?: { feedback: unknown }[] })
        : undefined;
      feedback = record?.turns?.find((t) => t.feedback)?.feedback;
      if (feedback) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      { ...(feedback as { rating: string; comment: string }), at: undefined },
      { rating: 'down', comment: 'Wanted the phone number', at: undefined },
    );
    // The first download stays the loader and the element; the extras came as their own chunk.
    const scripts = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .map((entry) => new URL(entry.name).pathname)
        .filter((path) => path.endsWith('.js')),
    );
    assert.ok(
      scripts.some((path) => /\/widget\/chunks\/extras-[\w-]+\.js$/.test(path)),
      scripts.join(),
    );
    assert.deepEqual(errors, []);
    await page.browserContext().close();
  });
});
