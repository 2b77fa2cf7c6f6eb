import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServerMessage } from '@voice-bot/protocol';
import { ConfigError } from '../config/config.js';
import { parseConfigFile } from '../config/settings.js';
import { startDemoUpstream } from '../cli/demo.js';
import { ToolRunner } from '../tools/runner.js';
import type { WebhookEvent, WebhookSink } from '../webhooks/outbox.js';
import {
  DEFAULT_HANDOFF_GUIDANCE,
  MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION,
  checkHandoffConfig,
  createHandoffTool,
  isChatUrl,
  nextSteps,
  promptWithHandoff,
  type HandoffConfig,
} from './handoff.js';

interface Delivery {
  event: WebhookEvent;
  bot: string;
  data: Record<string, unknown>;
}

/** A sink that keeps what it is given (or refuses everything, like an unreachable database). */
function sink(fail = false): WebhookSink & { sent: Delivery[] } {
  const sent: Delivery[] = [];
  return {
    sent,
    enqueue(event, bot, data) {
      if (fail) return Promise.reject(new Error('database unavailable'));
      sent.push({ event, bot, data });
      return Promise.resolve();
    },
  };
}

/** Runs the tool the way a turn does, through a ToolRunner, with one conversation's metadata. */
function harness(config: HandoffConfig, webhooks: WebhookSink) {
  const runner = new ToolRunner([createHandoffTool('front-desk', config, webhooks)]);
  const metadata: Record<string, string | number | boolean> = { page: '/contact' };
  const notified: ServerMessage[] = [];
  let calls = 0;
  return {
    notified,
    metadata,
    async call(args: Record<string, unknown>) {
      const outcome = await runner.run(
        { id: `call_${++calls}`, name: 'handoff', arguments: JSON.stringify(args) },
        {
          conversationId: 'conv-1',
          bot: 'front-desk',
          metadata,
          signal: new AbortController().signal,
          setMetadata: (values) => Object.assign(metadata, values),
          turnId: 4,
          notify: (message) => notified.push(message),
        },
      );
      return outcome;
    },
  };
}

const TARGETS = {
  webhook: true,
  phone: '+1 555 0100',
  email: 'desk@acme.example',
  chatUrl: 'https://acme.example/chat',
};

describe('handoff tool', () => {
  test('hands off: the page gets a handoff message, the helpdesk a webhook, the model what happens next', async () => {
    const webhooks = sink();
    const h = harness({ targets: TARGETS, message: 'Maria will call you back today.' }, webhooks);
    const outcome = await h.call({
      reason: 'asked for a person',
      urgency: 'high',
      summary: 'Wants to   move\nFriday’s appointment.',
      contact: { name: 'Sam', phone: '+1 555 0199' },
    });
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.result, {
      status: 'handed_off',
      next: 'Maria will call you back today.',
      instruction:
        'Tell the visitor briefly and warmly what happens next. Do not invent other options.',
    });
    assert.deepEqual(h.notified, [
      {
        type: 'handoff',
        turn_id: 4,
        reason: 'asked for a person',
        urgency: 'high',
        summary: 'Wants to move Friday’s appointment.',
        targets: {
          phone: '+1 555 0100',
          email: 'desk@acme.example',
          chat_url: 'https://acme.example/chat',
        },
        message: 'Maria will call you back today.',
      },
    ]);
    assert.deepEqual(webhooks.sent, [
      {
        event: 'handoff.requested',
        bot: 'front-desk',
        data: {
          conversation_id: 'conv-1',
          reason: 'asked for a person',
          urgency: 'high',
          summary: 'Wants to move Friday’s appointment.',
          contact: { name: 'Sam', phone: '+1 555 0199' },
          metadata: { page: '/contact' },
        },
      },
    ]);
  });

  test('requireContact: without a phone number or email the model is told to ask first, and nothing is sent', async () => {
    const webhooks = sink();
    const h = harness({ targets: { webhook: true }, requireContact: true }, webhooks);
    const first = await h.call({
      reason: 'callback',
      summary: 'Wants a callback.',
      contact: { name: 'Sam', phone: 'soon' },
    });
    assert.ok(first.ok);
    assert.equal((first.result as { status: string }).status, 'contact_needed');
    assert.match(first.content, /ask the visitor for their name and a phone number or email/i);
    assert.equal(h.notified.length, 0);
    assert.equal(webhooks.sent.length, 0);

    const second = await h.call({
      reason: 'callback',
      summary: 'Wants a callback.',
      contact: { name: 'Sam', email: 'sam@example.com' },
    });
    assert.equal((second.ok && (second.result as { status: string }).status) || '', 'handed_off');
    assert.match(second.content, /will contact the visitor with the details given/);
    assert.equal(webhooks.sent.length, 1);
    assert.equal(h.notified.length, 1);
    assert.equal(webhooks.sent[0]?.data.urgency, 'normal', 'urgency defaults to normal');
  });

  test(`at most ${MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION} webhooks per conversation, however often the model calls`, async () => {
    const webhooks = sink();
    const h = harness({ targets: TARGETS }, webhooks);
    for (let i = 0; i < MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION + 2; i++)
      assert.ok((await h.call({ reason: 'person', summary: `call ${i}` })).ok);
    assert.equal(webhooks.sent.length, MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION);
    assert.equal(
      h.notified.length,
      MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION + 2,
      'the card each time',
    );
    assert.equal(h.metadata['handoff.count'], MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION);
  });

  test('a webhook that cannot be queued: the other ways are offered; with none, the call fails', async () => {
    const withPhone = harness({ targets: { webhook: true, phone: '+1 555 0100' } }, sink(true));
    const outcome = await withPhone.call({ reason: 'person', summary: 'Needs a person.' });
    assert.ok(outcome.ok);
    assert.match(
      outcome.content,
      /could not be notified automatically\. To reach a person now, the visitor can call \+1 555 0100\./,
    );
    assert.equal(withPhone.notified.length, 1);

    const alone = harness({ targets: { webhook: true } }, sink(true));
    const failed = await alone.call({ reason: 'person', summary: 'Needs a person.' });
    assert.equal(failed.ok, false);
    assert.match(failed.content, /could not be notified/);
    assert.equal(alone.notified.length, 0);
  });

  test('bad arguments are the model’s to fix (urgency outside the list, unknown fields)', async () => {
    const h = harness({ targets: TARGETS }, sink());
    const outcome = await h.call({ reason: 'x', summary: 'y', urgency: 'asap' });
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.error, 'invalid_arguments');
    const extra = await h.call({ reason: 'x', summary: 'y', contact: { ssn: '1' } });
    assert.equal(extra.ok, false);
    assert.equal(h.notified.length, 0);
  });

  test('what happens next, from the targets', () => {
    assert.equal(
      nextSteps({ targets: TARGETS }, {}),
      'The team has been notified with a summary of this conversation. To reach a person now, the visitor can call +1 555 0100, email desk@acme.example or continue in live chat (a button is on the screen).',
    );
    assert.equal(
      nextSteps({ targets: { email: 'desk@acme.example' } }, undefined),
      'To reach a person now, the visitor can email desk@acme.example.',
    );
  });

  test('guidance goes into the tool description by default, or into the system prompt', () => {
    const inTool = createHandoffTool('b', { targets: TARGETS }, sink());
    assert.ok(inTool.description.endsWith(DEFAULT_HANDOFF_GUIDANCE));
    assert.equal(promptWithHandoff('Be nice.', { targets: TARGETS }), 'Be nice.');
    const config: HandoffConfig = {
      targets: TARGETS,
      guidance: 'Hand off billing questions.',
      guidanceIn: 'prompt',
    };
    assert.equal(promptWithHandoff('Be nice.', config), 'Be nice.\n\nHand off billing questions.');
    assert.ok(!createHandoffTool('b', config, sink()).description.includes('billing'));
  });

  test('configuration: targets are checked, and a chat URL is https (http only on localhost)', () => {
    assert.ok(isChatUrl('https://acme.example/chat'));
    assert.ok(isChatUrl('http://localhost:8787/chat'));
    assert.equal(isChatUrl('http://acme.example/chat'), false);
    assert.equal(isChatUrl('javascript:alert(1)'), false);
    assert.throws(() => checkHandoffConfig('b', { targets: {} }), ConfigError);
    assert.throws(
      () => checkHandoffConfig('b', { targets: { chatUrl: 'javascript:alert(1)' } }),
      /bot b: handoff targets\.chatUrl must be an https URL/,
    );
    assert.throws(
      () => checkHandoffConfig('b', { targets: { phone: 'call us' } }),
      /not a phone number/,
    );
    assert.throws(() => checkHandoffConfig('b', { targets: { email: 'desk' } }), /not an email/);
    assert.doesNotThrow(() => checkHandoffConfig('b', { targets: TARGETS }));
  });

  test('voicebot.config.json: a bad handoff block names the field', () => {
    const file = (handoff: unknown) =>
      JSON.stringify({ bots: [{ id: 'desk', systemPrompt: 'Hi.', handoff }] });
    assert.throws(
      () => parseConfigFile(file({ targets: { chatUrl: 'javascript:alert(1)' } }), 'v.json'),
      /bots\[0\]\.handoff\.targets\.chatUrl: must be an https URL/,
    );
    assert.throws(
      () => parseConfigFile(file({ targets: {} }), 'v.json'),
      /bots\[0\]\.handoff\.targets: needs at least one of webhook, phone, email, chatUrl/,
    );
    assert.throws(
      () => parseConfigFile(file({ targets: { phone: '+1 555 0100' }, when: 'always' }), 'v.json'),
      /bots\[0\]\.handoff/,
    );
    const ok = parseConfigFile(
      JSON.stringify({
        bots: [
          {
            id: 'desk',
            systemPrompt: 'Hi.',
            handoff: { targets: TARGETS },
            linkHosts: ['*.acme.example'],
          },
        ],
      }),
      'v.json',
    );
    assert.deepEqual(ok.bots?.[0]?.handoff, { targets: TARGETS });
    assert.throws(
      () =>
        parseConfigFile(
          JSON.stringify({
            bots: [{ id: 'desk', systemPrompt: 'Hi.', linkHosts: ['javascript:x'] }],
          }),
          'v.json',
        ),
      /linkHosts\[0\]: must be a host/,
    );
  });

  test('the offline demo model calls handoff when asked for a person, then says what happens next', async () => {
    const demo = await startDemoUpstream();
    try {
      const complete = async (messages: unknown[]) => {
        const response = await fetch(`${demo.providers.llm.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer demo' },
          body: JSON.stringify({
            model: 'demo-llm',
            messages,
            tools: [{ type: 'function', function: { name: 'handoff', parameters: {} } }],
          }),
        });
        const body = (await response.json()) as {
          choices: {
            message: { content: string | null; tool_calls?: { function: { name: string } }[] };
          }[];
        };
        return body.choices[0]?.message;
      };
      const asked = await complete([{ role: 'user', content: 'Can I speak to someone?' }]);
      assert.equal(asked?.tool_calls?.[0]?.function.name, 'handoff');
      const after = await complete([
        { role: 'user', content: 'Can I speak to someone?' },
        {
          role: 'tool',
          tool_call_id: 'c',
          content: JSON.stringify({ status: 'handed_off', next: 'Call us, the visitor can.' }),
        },
      ]);
      assert.equal(after?.content, 'Of course. Call us, you can.');
      const other = await complete([{ role: 'user', content: 'What is a crown?' }]);
      assert.equal(other?.tool_calls, undefined);
    } finally {
      await demo.close();
    }
  });
});
