import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { defineTool, type HttpToolConfig } from '@voice-bot/relay';
import type { ChatRequest, ChatScript, FakeFailure } from '@voice-bot/fake-provider';
import { openStartedTalk, startRelay, type RelayHarness } from './support/relay.js';

type Message = {
  role: string;
  content?: string | null;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
};

const messagesOf = (request: ChatRequest) => request.messages as Message[];
const lastUser = (request: ChatRequest) =>
  messagesOf(request)
    .filter((m) => m.role === 'user')
    .at(-1)?.content ?? '';
const toolResults = (request: ChatRequest) => messagesOf(request).filter((m) => m.role === 'tool');

/** A loopback API the HTTP tools call: opening hours, a customer, failures and a huge body. */
async function startClinicApi(): Promise<{ url: string; server: Server; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    hits.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? ''}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/hours') {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          day: url.searchParams.get('day'),
          hours: url.searchParams.get('day') === 'saturday' ? '10:00-14:00' : '9:00-17:00',
        }),
      );
    } else if (url.pathname === '/customer') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { first_name: 'Priya', tier: 'gold' } }));
    } else if (url.pathname === '/slow') {
      setTimeout(() => res.end('{}'), 3_000).unref();
    } else if (url.pathname === '/broken') {
      res.statusCode = 500;
      res.end('{"error":"db down"}');
    } else if (url.pathname === '/huge') {
      res.setHeader('content-type', 'application/json');
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const pump = () => {
        while (sent < 5 * 1024 * 1024) {
          sent += chunk.byteLength;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (url.pathname === '/text') {
      res.setHeader('content-type', 'text/plain');
      res.end('We are open ten to two on Saturday.');
    } else if (url.pathname === '/redirect-to-metadata') {
      res.statusCode = 302;
      res.setHeader('location', 'http://169.254.169.254/latest/meta-data/');
      res.end();
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits };
}

function httpTool(name: string, url: string, extra: Partial<HttpToolConfig> = {}): HttpToolConfig {
  return {
    name,
    description: `calls ${name}`,
    parameters: {
      type: 'object',
      properties: { day: { type: 'string', enum: ['monday', 'saturday', 'sunday'] } },
      required: ['day'],
      additionalProperties: false,
    },
    http: { url, timeoutMs: 1_000 },
    ...extra,
  };
}

describe('server-side tools', () => {
  let api: Awaited<ReturnType<typeof startClinicApi>>;
  let h: RelayHarness;
  const cancelled: string[] = [];
  /** What the scripted model does for each visitor line: first call tools, then answer from results. */
  const scripts: Record<string, (request: ChatRequest) => ChatScript | FakeFailure> = {};

  before(async () => {
    api = await startClinicApi();
    process.env.CLINIC_API_KEY = 'secret-clinic-key';
    h = await startRelay({
      upstream: {
        chat: (request) => {
          const said = lastUser(request);
          const script = scripts[said];
          return script ? script(request) : { content: `No script for ${said}.` };
        },
      },
      relay: {
        toolAllowHosts: ['127.0.0.1'],
        httpTools: [
          httpTool('opening_hours', `${api.url}/hours?day={{args.day}}`, {
            http: {
              url: `${api.url}/hours?day={{args.day}}`,
              headers: { authorization: 'Bearer {{env.CLINIC_API_KEY}}' },
              timeoutMs: 1_000,
            },
          }),
          httpTool('customer', `${api.url}/customer`, {
            parameters: { type: 'object', properties: {} },
            metadata: { 'customer.first_name': '{{response.data.first_name}}' },
            reply: 'The customer is {{response.data.first_name}} ({{response.data.tier}}).',
          }),
          httpTool('slow', `${api.url}/slow?day={{args.day}}`),
          httpTool('broken', `${api.url}/broken?day={{args.day}}`),
          httpTool('huge', `${api.url}/huge?day={{args.day}}`),
          httpTool('plain_text', `${api.url}/text?day={{args.day}}`, { public: true }),
          httpTool('redirector', `${api.url}/redirect-to-metadata?day={{args.day}}`),
        ],
        tools: [
          defineTool({
            name: 'book_slot',
            description: 'Books an appointment',
            parameters: {
              type: 'object',
              properties: { when: { type: 'string' } },
              required: ['when'],
            },
            execute: async (args, ctx) =>
              new Promise((resolve, reject) => {
                const timer = setTimeout(
                  () =>
                    resolve({
                      booked: args.when,
                      for: ctx.metadata['customer.first_name'] ?? 'guest',
                    }),
                  1_500,
                );
                ctx.signal.addEventListener('abort', () => {
                  clearTimeout(timer);
                  cancelled.push(String(args.when));
                  reject(new Error('aborted'));
                });
              }),
          }),
        ],
        bots: [
          {
            id: 'front-desk',
            name: 'Front desk',
            systemPrompt: 'You help {{customer.first_name}} at Acme Dental. Page: {{page}}.',
            greeting: 'Hello {{customer.first_name}}!',
            toolFiller: 'One moment, let me check.',
            tools: [
              'opening_hours',
              'customer',
              'slow',
              'broken',
              'huge',
              'plain_text',
              'redirector',
              'book_slot',
            ],
          },
        ],
      },
    });
  });
  after(async () => {
    await h.close();
    api.server.close();
    delete process.env.CLINIC_API_KEY;
  });

  /** Opens a conversation and lets the greeting turn finish, so `next('done')` is the visitor's turn. */
  async function openTalk(harness: RelayHarness, start: Parameters<typeof openStartedTalk>[1]) {
    const talk = await openStartedTalk(harness, start);
    if (harness === h) {
      await talk.next('done');
      talk.messages.length = 0;
    }
    return talk;
  }

  /** First request: tool calls; afterwards: a text answer naming the tool results it saw. */
  function callThenAnswer(calls: ChatScript['toolCalls'], options: Partial<ChatScript> = {}) {
    return (request: ChatRequest): ChatScript => {
      const results = toolResults(request);
      if (results.length === 0) return { toolCalls: calls, chunkSize: 3, ...options };
      return { content: `Results: ${results.map((r) => r.content).join(' | ')}` };
    };
  }

  test('two parallel calls streamed in fragments run on the relay; the answer uses both; the page sees names and states only', async () => {
    scripts['hours for saturday and monday'] = callThenAnswer(
      [
        { id: 'call_a', name: 'opening_hours', arguments: '{"day":"saturday"}' },
        { id: 'call_b', name: 'opening_hours', arguments: '{"day":"monday"}' },
      ],
      { interleaveToolCalls: true, content: 'Let me look that up.' },
    );
    const talk = await openTalk(h, { input: 'text', output: 'text' });
    const mark = h.upstream.requests.length;
    talk.send({ type: 'text', text: 'hours for saturday and monday' });
    const done = await talk.next('done');
    assert.match(done.text, /^Let me look that up\. Results: /);
    assert.match(done.text, /10:00-14:00/);
    assert.match(done.text, /9:00-17:00/);
    const events = talk.of('tool');
    assert.deepEqual(events.map((e) => `${e.name}:${e.state}`).sort(), [
      'opening_hours:done',
      'opening_hours:done',
      'opening_hours:started',
      'opening_hours:started',
    ]);
    for (const event of events)
      assert.deepEqual(Object.keys(event).sort(), ['name', 'state', 'turn_id', 'type']);
    const pageSaw = JSON.stringify(talk.messages);
    assert.ok(
      !pageSaw.includes('10:00-14:00') || done.text.includes('10:00-14:00'),
      'results only reach the page through the model',
    );
    assert.ok(!pageSaw.includes('"day"'), 'tool arguments never reach the page');
    assert.ok(
      api.hits.some((hit) => hit === 'GET /hours?day=saturday auth=Bearer secret-clinic-key'),
      'headers read secrets from the environment',
    );
    const chats = h.upstream.requests
      .slice(mark)
      .filter((r) => r.kind === 'chat')
      .map((r) => r.body as { messages: Message[]; tools?: unknown[] });
    assert.equal(chats.length, 2);
    assert.equal(chats[0]?.tools?.length, 8, 'the bot offers its tools');
    const assistantCall = chats[1]?.messages.find((m) => m.tool_calls);
    assert.deepEqual(
      assistantCall?.tool_calls?.map((c) => [c.id, c.function.name, c.function.arguments]),
      [
        ['call_a', 'opening_hours', '{"day":"saturday"}'],
        ['call_b', 'opening_hours', '{"day":"monday"}'],
      ],
      'streamed argument fragments were reassembled by index',
    );
    talk.close();
  });

  test('schema-invalid arguments go back to the model as a tool error, not to the visitor', async () => {
    scripts['hours on funday'] = callThenAnswer([
      { id: 'c1', name: 'opening_hours', arguments: '{"day":"funday"}' },
    ]);
    const talk = await openTalk(h, { input: 'text', output: 'text' });
    const before = api.hits.length;
    talk.send({ type: 'text', text: 'hours on funday' });
    const done = await talk.next('done');
    assert.match(
      done.text,
      /Error: invalid arguments \(\/day must be equal to one of the allowed values\)/,
    );
    assert.equal(api.hits.length, before, 'the API was not called');
    assert.equal(talk.of('error').length, 0);
    assert.deepEqual(
      talk.of('tool').map((e) => e.state),
      ['started', 'failed'],
    );
    talk.close();
  });

  for (const [tool, expected] of [
    ['slow', /timed out after 1000 ms/],
    ['broken', /HTTP 500/],
    ['huge', /response too large/],
  ] as const) {
    test(`a tool that ${tool === 'slow' ? 'times out' : tool === 'broken' ? 'returns 500' : 'returns 5 MB'} fails cleanly and the model is told`, async () => {
      scripts[`try ${tool}`] = callThenAnswer([
        { id: 'c1', name: tool, arguments: '{"day":"monday"}' },
      ]);
      const talk = await openTalk(h, { input: 'text', output: 'text' });
      talk.send({ type: 'text', text: `try ${tool}` });
      const done = await talk.next('done', () => true, { timeoutMs: 8_000 });
      assert.match(done.text, expected);
      assert.deepEqual(
        talk.of('tool').map((e) => e.state),
        ['started', 'failed'],
      );
      talk.close();
    });
  }

  test('a public tool shows its arguments and result; non-JSON responses are handled', async () => {
    scripts['plain please'] = callThenAnswer([
      { id: 'c1', name: 'plain_text', arguments: '{"day":"saturday"}' },
    ]);
    const talk = await openTalk(h, { input: 'text', output: 'text' });
    talk.send({ type: 'text', text: 'plain please' });
    const done = await talk.next('done');
    assert.match(done.text, /We are open ten to two on Saturday\./);
    const finished = talk.of('tool').find((e) => e.state === 'done');
    assert.deepEqual(finished?.args, { day: 'saturday' });
    assert.equal(finished?.result, 'We are open ten to two on Saturday.');
    talk.close();
  });

  test('metadata from the page and from tool mappings fills the prompt and greeting templates', async () => {
    scripts['who am i'] = callThenAnswer([{ id: 'c1', name: 'customer', arguments: '{}' }]);
    scripts['and now?'] = () => ({ content: 'Fine.' });
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      metadata: { page: '/pricing' },
    });
    const greeting = await talk.next('done');
    assert.equal(greeting.text, 'Hello !', 'missing placeholders render empty');
    const mark = h.upstream.requests.length;
    talk.send({ type: 'text', text: 'who am i' });
    assert.match(
      (await talk.next('done', (d) => d.turn_id !== greeting.turn_id)).text,
      /The customer is Priya \(gold\)/,
    );
    talk.send({ type: 'text', text: 'and now?' });
    await talk.next('done', (d) => d.text === 'Fine.');
    const chats = h.upstream.requests
      .slice(mark)
      .filter((r) => r.kind === 'chat')
      .map((r) => r.body as { messages: Message[] });
    assert.equal(chats[0]?.messages[0]?.content, 'You help  at Acme Dental. Page: /pricing.');
    assert.equal(
      chats.at(-1)?.messages[0]?.content,
      'You help Priya at Acme Dental. Page: /pricing.',
    );
    assert.ok(
      chats.at(-1)?.messages.some((m) => m.role === 'tool'),
      'earlier tool results stay in the LLM context',
    );
    const again = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      metadata: { 'customer.first_name': 'Mallory' },
    });
    assert.equal((await again.next('done')).text, 'Hello Mallory!');
    talk.close();
    again.close();
  });

  test('oversized page metadata is refused with a typed error', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v']));
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' }).catch((e: Error) => e);
    assert.ok(!(talk instanceof Error));
    const second = await import('./support/relay.js');
    const s = await second.createSession(h.url, { key: h.key, origin: second.ORIGIN });
    const raw = await second.connectTalk(s.body.ws_url as string, s.body.token, second.ORIGIN);
    assert.ok(raw instanceof second.TalkClient);
    raw.start({ input: 'text', output: 'text', metadata });
    assert.equal((await raw.next('error')).code, 'invalid_message');
    raw.close();
    talk.close();
  });

  test('interrupting during a tool call cancels the tool and the turn', async () => {
    scripts['book tuesday'] = callThenAnswer([
      { id: 'c1', name: 'book_slot', arguments: '{"when":"tuesday 10am"}' },
    ]);
    const talk = await openTalk(h, { input: 'text', output: 'text' });
    talk.send({ type: 'text', text: 'book tuesday' });
    const started = await talk.next('tool', (e) => e.state === 'started');
    talk.send({ type: 'interrupt', turn_id: started.turn_id, played_ms: 0 });
    const done = await talk.next('done');
    assert.equal(done.interrupted, true);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(cancelled, ['tuesday 10am']);
    talk.close();
  });

  describe('SSRF guard', () => {
    let guarded: RelayHarness;
    before(async () => {
      const targets: [string, string][] = [
        ['loopback', `${api.url}/hours?day={{args.day}}`],
        ['localhost_name', `http://localhost:${new URL(api.url).port}/hours?day={{args.day}}`],
        ['cloud_metadata', 'http://169.254.169.254/latest/meta-data/?day={{args.day}}'],
        ['private_net', 'http://10.0.0.1/?day={{args.day}}'],
        ['ipv6_loopback', 'http://[::1]/?day={{args.day}}'],
        ['mapped', 'http://[::ffff:127.0.0.1]/?day={{args.day}}'],
      ];
      guarded = await startRelay({
        upstream: {
          chat: (request) =>
            callThenAnswer([{ id: 'c1', name: lastUser(request), arguments: '{"day":"monday"}' }])(
              request,
            ),
        },
        relay: {
          httpTools: [
            ...targets.map(([name, url]) => httpTool(name, url)),
            httpTool('redirector', `${api.url}/redirect-to-metadata?day={{args.day}}`),
          ],
          toolAllowHosts: [],
          bots: [
            {
              id: 'b',
              name: 'b',
              systemPrompt: 'x',
              tools: [...targets.map(([name]) => name), 'redirector'],
            },
          ],
        },
      });
    });
    after(() => guarded.close());

    for (const target of [
      'loopback',
      'localhost_name',
      'cloud_metadata',
      'private_net',
      'ipv6_loopback',
      'mapped',
    ]) {
      test(`refuses ${target} without permission, before connecting`, async () => {
        const before = api.hits.length;
        const talk = await openStartedTalk(guarded, { input: 'text', output: 'text' });
        talk.send({ type: 'text', text: target });
        const done = await talk.next('done');
        assert.match(done.text, /refused: .*(not a public address|non-public address)/);
        assert.equal(api.hits.length, before);
        talk.close();
      });
    }

    test('a redirect to the metadata address is refused too (allowed first hop)', async () => {
      const allowed = await startRelay({
        upstream: {
          chat: (request) =>
            callThenAnswer([{ id: 'c1', name: 'redirector', arguments: '{"day":"monday"}' }])(
              request,
            ),
        },
        relay: {
          httpTools: [httpTool('redirector', `${api.url}/redirect-to-metadata?day={{args.day}}`)],
          toolAllowHosts: ['127.0.0.1'],
          bots: [{ id: 'b', name: 'b', systemPrompt: 'x', tools: ['redirector'] }],
        },
      });
      try {
        const talk = await openStartedTalk(allowed, { input: 'text', output: 'text' });
        talk.send({ type: 'text', text: 'go' });
        const done = await talk.next('done');
        assert.match(done.text, /refused: 169\.254\.169\.254 is not a public address/);
        talk.close();
      } finally {
        await allowed.close();
      }
    });
  });

  test('a spoken filler covers the silence while tools run', async () => {
    // a tool that takes 1.5 s, so the filler certainly plays while it runs
    scripts['saturday hours please'] = callThenAnswer([
      { id: 'c1', name: 'book_slot', arguments: '{"when":"saturday"}' },
    ]);
    const talk = await openTalk(h, { input: 'text', output: 'audio' });
    talk.send({ type: 'text', text: 'saturday hours please' });
    const done = await talk.next('done');
    const segments = talk
      .of('audio_segment')
      .filter((s) => s.turn_id === done.turn_id)
      .map((s) => s.text);
    assert.equal(segments[0], 'One moment, let me check.');
    const firstToolDone = talk.messages.findIndex((m) => m.type === 'tool' && m.state === 'done');
    const fillerAt = talk.messages.findIndex(
      (m) => m.type === 'audio_segment' && m.text.startsWith('One moment'),
    );
    assert.ok(
      fillerAt >= 0 && fillerAt < firstToolDone,
      'the filler is spoken before the tool finishes',
    );
    talk.close();
  });
});
