import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { defineTool } from '@voice-bot/relay';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  lastUser,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

type Message = { role: string; content?: string | null };

/** What a site's server does: signs the signed-in visitor's claims with the key's visitor secret. */
function visitorToken(
  secret: string,
  claims: Record<string, unknown>,
  {
    iat = Math.floor(Date.now() / 1000),
    ttl = 300,
    jti,
    sub = 'u_42',
  }: { iat?: number; ttl?: number; jti?: string; sub?: string } = {},
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl);
  if (jti) jwt.setJti(jti);
  return jwt.sign(new TextEncoder().encode(secret));
}

async function requestSession(
  h: RelayHarness,
  body: Record<string, unknown>,
  key = h.key,
): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string } } }> {
  const res = await fetch(`${h.url}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, origin: ORIGIN, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never };
}

describe('signed-in visitors (visitor tokens)', () => {
  let h: RelayHarness;
  let secret: string;
  /** What the `whoami` tool saw, and the system prompts the model got. */
  const seen: { user?: unknown; metadata?: unknown }[] = [];
  const prompts: string[] = [];

  before(async () => {
    h = await startRelay({
      upstream: {
        chat: (request: ChatRequest): ChatScript => {
          const messages = request.messages as Message[];
          prompts.push(String(messages[0]?.content));
          const last = messages.at(-1);
          if (last?.role === 'tool') return { content: `Tool: ${last.content ?? ''}` };
          return lastUser(request) === 'who am I'
            ? { toolCalls: [{ name: 'whoami', arguments: '{}' }] }
            : { content: 'ok' };
        },
      },
      relay: {
        tools: [
          defineTool({
            name: 'whoami',
            description: 'The signed-in visitor',
            parameters: { type: 'object', properties: {} },
            execute: (_args, context) => {
              seen.push({ user: context.user, metadata: context.metadata });
              return { id: context.user?.id ?? null, name: context.user?.name ?? null };
            },
          }),
        ],
        bots: [
          {
            id: 'shop',
            name: 'Shop',
            systemPrompt: 'Visitor: {{user.name}} ({{user.id}}); page says {{metadata.user.name}}.',
            greeting: 'Hi {{user.name}}!',
            tools: ['whoami'],
          },
        ],
      },
    });
    const set = await h.keys.setVisitorSecret(h.keyId);
    assert.ok(set?.secret?.startsWith('vb_vs_'));
    secret = set?.secret ?? '';
  });
  after(() => h.close());

  async function open(token: string, metadata?: Record<string, string>): Promise<TalkClient> {
    const session = await requestSession(h, { visitor_token: token });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const talk = await connectTalk(String(session.body.ws_url), String(session.body.token), ORIGIN);
    assert.ok(talk instanceof TalkClient);
    talk.start({ input: 'text', output: 'text', ...(metadata ? { metadata } : {}) });
    await talk.next('ready');
    return talk;
  }

  /** Opens a socket (signed in with `token`, or anonymous) asking to resume `conversationId`. */
  async function resume(
    token: string | undefined,
    conversationId: string | undefined,
  ): Promise<{ id: string; resumed: boolean }> {
    const session = await requestSession(h, token ? { visitor_token: token } : {});
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const talk = await connectTalk(String(session.body.ws_url), String(session.body.token), ORIGIN);
    assert.ok(talk instanceof TalkClient);
    talk.start({
      input: 'text',
      output: 'text',
      ...(conversationId ? { conversation_id: conversationId } : {}),
    });
    const ready = await talk.next('ready');
    if (!ready.resumed) await talk.next('done');
    talk.send({ type: 'text', text: 'hello' });
    await talk.next('done', (m) => m.text === 'ok');
    talk.close();
    return { id: ready.conversation_id, resumed: ready.resumed };
  }

  test("a signed-in visitor's conversation resumes only for that visitor", async () => {
    const ana = () => visitorToken(secret, { name: 'Ana' }, { sub: 'u_ana' });
    const bob = () => visitorToken(secret, { name: 'Bob' }, { sub: 'u_bob' });
    const first = await resume(await ana(), undefined);
    assert.equal(first.resumed, false);
    assert.deepEqual(await resume(await ana(), first.id), { id: first.id, resumed: true });
    const asBob = await resume(await bob(), first.id);
    assert.equal(
      asBob.resumed,
      false,
      'another signed-in visitor starts a conversation of their own',
    );
    assert.notEqual(asBob.id, first.id);
    const anonymous = await resume(undefined, first.id);
    assert.equal(anonymous.resumed, false, 'an anonymous visitor cannot resume it either');
    const anonymousAgain = await resume(undefined, anonymous.id);
    assert.deepEqual(anonymousAgain, { id: anonymous.id, resumed: true });
    assert.equal((await resume(await ana(), anonymous.id)).resumed, false);
  });

  test('the claims reach the greeting, the prompt and a code tool; page metadata cannot override them', async () => {
    const token = await visitorToken(secret, {
      name: 'Ana',
      email: 'ana@example.com',
      plan: 'gold',
    });
    const session = await requestSession(h, { visitor_token: token });
    assert.deepEqual(session.body.user, {
      name: 'Ana',
      email: 'ana@example.com',
      plan: 'gold',
      id: 'u_42',
    });
    const talk = await open(token, { 'user.name': 'Mallory', 'user.id': 'admin', user: 'root' });
    assert.equal((await talk.next('done')).text, 'Hi Ana!');
    talk.send({ type: 'text', text: 'who am I' });
    const done = await talk.next('done', (m) => m.turn_id === 2);
    assert.equal(done.text, 'Tool: {"id":"u_42","name":"Ana"}');
    assert.equal(prompts.at(-1), 'Visitor: Ana (u_42); page says Mallory.');
    const { user, metadata } = seen.at(-1) ?? {};
    assert.deepEqual(user, { name: 'Ana', email: 'ana@example.com', plan: 'gold', id: 'u_42' });
    assert.equal((metadata as Record<string, string>)['user.name'], 'Mallory');
    talk.close();
  });

  test('an anonymous visitor has no user: templates are empty, the tool sees none', async () => {
    const session = await requestSession(h, {});
    assert.equal(session.status, 201);
    assert.equal(session.body.user, undefined);
    const talk = await connectTalk(String(session.body.ws_url), String(session.body.token), ORIGIN);
    assert.ok(talk instanceof TalkClient);
    talk.start({ input: 'text', output: 'text', metadata: { 'user.name': 'Mallory' } });
    assert.equal((await talk.next('done')).text, 'Hi !');
    talk.send({ type: 'text', text: 'who am I' });
    assert.equal(
      (await talk.next('done', (m) => m.turn_id === 2)).text,
      'Tool: {"id":null,"name":null}',
    );
    talk.close();
  });

  test('forged, expired, too long-lived, replayed or foreign tokens are refused with invalid_visitor_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = await h.keys.create({ origins: [ORIGIN], label: 'other' });
    const otherSecret = (await h.keys.setVisitorSecret(other.record.id))?.secret ?? '';
    const cases: [string, string, string?][] = [
      ['forged', await visitorToken('vb_vs_not-the-secret-at-all-0123456789', { name: 'Eve' })],
      ['expired', await visitorToken(secret, { name: 'Ana' }, { iat: now - 700, ttl: 600 })],
      ['too long-lived', await visitorToken(secret, { name: 'Ana' }, { ttl: 3600 })],
      ['nested claim', await visitorToken(secret, { roles: ['admin'] })],
      ['another key’s', await visitorToken(otherSecret, { name: 'Ana' })],
      ['not a JWT', 'hello'],
    ];
    for (const [label, token] of cases) {
      const session = await requestSession(h, { visitor_token: token });
      assert.equal(session.status, 401, label);
      assert.equal(session.body.error?.code, 'invalid_visitor_token', label);
      assert.equal(session.body.token, undefined, label);
    }
    // With a jti, a token opens one session.
    const once = await visitorToken(secret, { name: 'Ana' }, { jti: 'j-1' });
    assert.equal((await requestSession(h, { visitor_token: once })).status, 201);
    const replay = await requestSession(h, { visitor_token: once });
    assert.equal(replay.body.error?.code, 'invalid_visitor_token');
    // A key without a visitor secret takes no visitor token; removing the secret stops its tokens.
    const valid = await visitorToken(otherSecret, { name: 'Ana' });
    assert.equal((await requestSession(h, { visitor_token: valid }, other.secret)).status, 201);
    await h.keys.setVisitorSecret(other.record.id, undefined, true);
    const removed = await requestSession(h, { visitor_token: valid }, other.secret);
    assert.equal(removed.body.error?.code, 'invalid_visitor_token');
  });
});
