/**
 * Handoff to a person through the real relay socket, with the fake provider as the model and a
 * local helpdesk receiving the signed `handoff.requested` webhook: the bot asks for contact
 * details first (`requireContact`), then the page gets a `handoff` message, the model the tool's
 * "what happens next", and the helpdesk the summary with the visitor's contact details.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import type { ServerMessageOf } from '@voice-bot/protocol';
import type { BotConfig } from '@voice-bot/relay';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  startRelay,
  type RelayHarness,
} from './support/relay.js';
import {
  readmeVerifier,
  startReceiver,
  type VerifyWebhook,
  type WebhookReceiver,
} from './support/webhooks.js';

const SECRET = 'helpdesk-secret-0123456789abcdef';

const desk: BotConfig = {
  id: 'desk',
  name: 'Front desk',
  systemPrompt: 'You are the front desk of Acme Dental.',
  handoff: {
    requireContact: true,
    targets: {
      webhook: true,
      phone: '+1 555 0100',
      email: 'desk@acme.example',
      chatUrl: 'https://acme.example/chat',
    },
    message: 'Maria from the front desk will get back to you within the hour.',
  },
  linkHosts: ['*.acme.example'],
};

const toolTurn = (req: ChatRequest): string | undefined => {
  const last = req.messages.at(-1) as { role?: string; content?: unknown } | undefined;
  return last?.role === 'tool' ? String(last.content) : undefined;
};

/** A model that hands off when asked for a person, with the contact details once it has them. */
function chat(req: ChatRequest): ChatScript {
  const result = toolTurn(req);
  // The tool's result, as the model received it, becomes the reply (so the test can read it).
  if (result !== undefined) return { content: `[tool said] ${result}` };
  const users = req.messages.filter((m) => (m as { role?: string }).role === 'user');
  const said = String((users.at(-1) as { content?: unknown } | undefined)?.content ?? '');
  const email = /\S+@\S+\.\w+/.exec(said)?.[0];
  if (/person|human/i.test(said) || email)
    return {
      toolCalls: [
        {
          name: 'handoff',
          arguments: JSON.stringify({
            reason: 'asked for a person',
            urgency: 'high',
            summary: 'Wants to move Friday’s check-up to next week.',
            ...(email ? { contact: { name: 'Sam', email } } : {}),
          }),
        },
      ],
    };
  return { content: 'Happy to help.' };
}

describe('handoff to a person (relay)', () => {
  let h: RelayHarness;
  let receiver: WebhookReceiver;
  let verify: VerifyWebhook;

  before(async () => {
    receiver = await startReceiver();
    verify = await readmeVerifier();
    h = await startRelay({
      upstream: { chat },
      relay: {
        bots: [desk, { id: 'plain', name: 'Plain', systemPrompt: 'Hi.' }],
        toolAllowHosts: ['127.0.0.1'],
        webhooks: [{ url: receiver.url, events: ['handoff.requested'], secretEnv: 'HOOK_SECRET' }],
        webhookEnv: { HOOK_SECRET: SECRET },
        recordsTiming: { webhookPollMs: 100 },
      },
    });
  });

  after(async () => {
    await h?.close();
    await receiver?.close();
  });

  async function talk(bot: string): Promise<TalkClient> {
    const session = await createSession(h.url, { key: h.key, origin: ORIGIN, bot });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const client = await connectTalk(session.body.ws_url as string, session.body.token, ORIGIN);
    assert.ok(client instanceof TalkClient);
    client.start({ input: 'text', output: 'text' });
    await client.next('ready');
    return client;
  }

  async function say(client: TalkClient, text: string): Promise<ServerMessageOf<'done'>> {
    const from = client.messages.length;
    client.send({ type: 'text', text });
    return client.next('done', () => true, { from, timeoutMs: 10_000 });
  }

  test('asks for contact details, then hands off: handoff message, tool result to the model, signed webhook', async () => {
    const client = await talk('desk');
    const ready = client.of('ready')[0];
    assert.ok(ready?.features?.includes('handoff'), 'ready announces handoff');
    assert.deepEqual(ready?.link_hosts, ['*.acme.example']);
    const conversationId = ready?.conversation_id;

    // The model offered the tool, with the default guidance in its description.
    const first = await say(client, 'Can I talk to a person?');
    const offered = h.upstream.requests.findLast((r) => r.kind === 'chat');
    const tools = (
      offered?.body as { tools?: { function: { name: string; description: string } }[] }
    ).tools;
    const handoffTool = tools?.find((t) => t.function.name === 'handoff');
    assert.match(handoffTool?.function.description ?? '', /asks to talk to a person/);
    // requireContact: no contact yet, so the model is told to ask, and nothing goes out.
    assert.match(first.text, /contact_needed/);
    assert.match(first.text, /Ask the visitor for their name and a phone number or email/);
    assert.equal(client.of('handoff').length, 0);

    const from = client.messages.length;
    const second = await say(client, 'Sure, I am Sam: sam@example.com');
    const handoff = client.of('handoff').at(-1);
    assert.deepEqual(handoff, {
      type: 'handoff',
      turn_id: second.turn_id,
      reason: 'asked for a person',
      urgency: 'high',
      summary: 'Wants to move Friday’s check-up to next week.',
      targets: {
        phone: '+1 555 0100',
        email: 'desk@acme.example',
        chat_url: 'https://acme.example/chat',
      },
      message: 'Maria from the front desk will get back to you within the hour.',
    });
    // The page hears of it before the turn's done, and never sees the visitor's contact details.
    const order = client.messages.slice(from).map((m) => m.type);
    assert.ok(order.indexOf('handoff') < order.indexOf('done'), order.join(' '));
    assert.ok(!JSON.stringify(handoff).includes('sam@example.com'));
    // The tool's result reached the model: what happens next, to tell the visitor.
    assert.match(second.text, /"status":"handed_off"/);
    assert.match(second.text, /Maria from the front desk will get back to you within the hour/);

    const [delivery] = await receiver.waitFor(1);
    assert.ok(delivery);
    assert.ok(
      verify(SECRET, delivery.headers, delivery.body),
      'signed with the endpoint secret (README snippet)',
    );
    assert.equal(verify('another-secret-0123456789abcdef', delivery.headers, delivery.body), false);
    const body = JSON.parse(delivery.body) as { type: string; data: Record<string, unknown> };
    assert.equal(body.type, 'handoff.requested');
    assert.deepEqual(body.data, {
      conversation_id: conversationId,
      reason: 'asked for a person',
      urgency: 'high',
      summary: 'Wants to move Friday’s check-up to next week.',
      contact: { name: 'Sam', email: 'sam@example.com' },
      metadata: {},
    });
    client.close();
  });

  test('a bot without handoff offers no such tool and announces nothing', async () => {
    const client = await talk('plain');
    const ready = client.of('ready')[0];
    assert.equal(ready?.features?.includes('handoff'), false);
    assert.equal(ready?.link_hosts, undefined);
    await say(client, 'Can I talk to a person?');
    const request = h.upstream.requests.findLast((r) => r.kind === 'chat');
    assert.equal((request?.body as { tools?: unknown }).tools, undefined);
    assert.equal(client.of('handoff').length, 0);
    client.close();
  });
});
