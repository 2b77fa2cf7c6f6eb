// An attacker holds a publishable client key and can talk the model into any tool arguments:
// HTTP tools must not let those arguments climb the URL path, carry the tool's secrets to another
// origin through a redirect, reach non-public addresses through IPv6 spellings of IPv4, or get
// provider keys echoed into the relay's logs.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { HttpToolConfig } from '@voice-bot/relay';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { createHttpTool } from '../packages/relay/src/tools/http-tool.js';
import { assertLiteralAllowed, isPublicAddress } from '../packages/relay/src/tools/ssrf.js';
import { openStartedTalk, startRelay, type RelayHarness } from './support/relay.js';

type Message = { role: string; content?: string | null };

const messagesOf = (request: ChatRequest) => request.messages as Message[];
const lastUser = (request: ChatRequest) =>
  messagesOf(request)
    .filter((m) => m.role === 'user')
    .at(-1)?.content ?? '';
const toolResults = (request: ChatRequest) => messagesOf(request).filter((m) => m.role === 'tool');

const API_SECRET = 'hostile-test-api-secret-0123456789';

interface Hit {
  method: string;
  path: string;
  auth: string | undefined;
}

/** A loopback server that records every request it gets (path as sent, Authorization header). */
async function startRecordingServer(
  handle: (req: IncomingMessage, res: import('node:http').ServerResponse, base: string) => void,
) {
  const hits: Hit[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    hits.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization });
    handle(req, res, base);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return { url: base, port, server, hits };
}

function json(res: import('node:http').ServerResponse, body: unknown, status = 200): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

describe('hostile tool arguments', () => {
  let api: Awaited<ReturnType<typeof startRecordingServer>>;
  let other: Awaited<ReturnType<typeof startRecordingServer>>;
  let h: RelayHarness;

  before(async () => {
    other = await startRecordingServer((req, res) => json(res, { stolen: true, path: req.url }));
    api = await startRecordingServer((req, res) => {
      const path = req.url ?? '/';
      if (path.startsWith('/api/redirect-same')) {
        res.statusCode = 302;
        res.setHeader('location', '/api/landing');
        res.end();
      } else if (path.startsWith('/api/redirect-cross')) {
        res.statusCode = 302;
        res.setHeader('location', `${other.url}/steal`);
        res.end();
      } else if (path.startsWith('/api/redirect-alias')) {
        // the same server under another host name: a different origin all the same
        res.statusCode = 307;
        res.setHeader('location', `http://localhost:${api.port}/api/landing`);
        res.end();
      } else if (path.startsWith('/api/loop')) {
        res.statusCode = 302;
        res.setHeader('location', '/api/loop');
        res.end();
      } else {
        json(res, { path, landed: path.startsWith('/api/landing') });
      }
    });
    process.env.HOSTILE_API_KEY = API_SECRET;
    const headers = { authorization: 'Bearer {{env.HOSTILE_API_KEY}}' };
    const tool = (
      name: string,
      url: string,
      extra: Partial<HttpToolConfig['http']> = {},
    ): HttpToolConfig => ({
      name,
      description: `calls ${name}`,
      parameters: { type: 'object', properties: { id: { type: 'string' }, q: { type: 'string' } } },
      http: { url, headers, timeoutMs: 2_000, ...extra },
    });
    h = await startRelay({
      upstream: {
        // The visitor's text is `tool_name {json arguments}`: the model calls it, then reports the result.
        chat: (request): ChatScript => {
          const results = toolResults(request);
          if (results.length > 0)
            return { content: `Results: ${results.map((r) => r.content).join(' | ')}` };
          const said = lastUser(request);
          const space = said.indexOf(' ');
          return {
            toolCalls: [{ id: 'c1', name: said.slice(0, space), arguments: said.slice(space + 1) }],
          };
        },
      },
      relay: {
        toolAllowHosts: ['127.0.0.1', 'localhost'],
        httpTools: [
          tool('item_details', `${api.url}/api/items/{{args.id}}/details?q={{args.q}}`),
          tool('item_ext', `${api.url}/api/items/{{args.id}}.json`),
          tool('redirect_default', `${api.url}/api/redirect-same`),
          tool('redirect_same', `${api.url}/api/redirect-same`, { followRedirects: true }),
          tool('redirect_cross_default', `${api.url}/api/redirect-cross`),
          tool('redirect_cross', `${api.url}/api/redirect-cross`, { followRedirects: true }),
          tool('redirect_alias', `${api.url}/api/redirect-alias`, {
            followRedirects: true,
            method: 'POST',
          }),
          tool('redirect_loop', `${api.url}/api/loop`, { followRedirects: true }),
          tool('compat_v4', `http://[::127.0.0.1]:${api.port}/api/compat?q={{args.q}}`),
        ],
        bots: [
          {
            id: 'b',
            name: 'b',
            systemPrompt: 'x',
            tools: [
              'item_details',
              'item_ext',
              'redirect_default',
              'redirect_same',
              'redirect_cross_default',
              'redirect_cross',
              'redirect_alias',
              'redirect_loop',
              'compat_v4',
            ],
          },
        ],
      },
    });
  });
  after(async () => {
    await h.close();
    api.server.close();
    other.server.close();
    delete process.env.HOSTILE_API_KEY;
  });

  /** Has the model call `name` with `args`; returns the reply text and what each server received meanwhile. */
  async function call(name: string, args: Record<string, unknown>) {
    const apiMark = api.hits.length;
    const otherMark = other.hits.length;
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    try {
      talk.send({ type: 'text', text: `${name} ${JSON.stringify(args)}` });
      const done = await talk.next('done', () => true, { timeoutMs: 8_000 });
      return {
        text: done.text,
        api: api.hits.slice(apiMark),
        other: other.hits.slice(otherMark),
        states: talk.of('tool').map((e) => e.state),
        errors: talk.of('error'),
      };
    } finally {
      talk.close();
    }
  }

  describe('path placeholders', () => {
    for (const [label, id] of [
      ['".."', '..'],
      ['"."', '.'],
      ['an empty value', ''],
      ['"../" pieces inside a value', '../../admin'],
    ] as const) {
      test(`${label} in a path segment is refused and the API is never called`, async () => {
        const result = await call('item_details', { id, q: 'x' });
        assert.match(
          result.text,
          /Error: refused: a value in the URL path may not be empty, "\." or "\.\."/,
        );
        assert.deepEqual(result.api, [], `the API received ${JSON.stringify(result.api)}`);
        assert.deepEqual(result.states, ['started', 'failed']);
        assert.equal(result.errors.length, 0, 'the visitor sees no error');
      });
    }

    test('a placeholder that is only part of a segment refuses dots too', async () => {
      const result = await call('item_ext', { id: '.' });
      assert.match(result.text, /Error: refused: a value in the URL path/);
      assert.deepEqual(result.api, []);
    });

    test('a normal value still works, and an empty query value is fine', async () => {
      const result = await call('item_details', { id: 'abc-42', q: '' });
      assert.deepEqual(result.api, [
        { method: 'GET', path: '/api/items/abc-42/details?q=', auth: `Bearer ${API_SECRET}` },
      ]);
      assert.match(result.text, /\/api\/items\/abc-42\/details/);
    });

    test('a value with "/" or percent-encoded dots stays one encoded segment', async () => {
      const slash = await call('item_details', { id: 'a/b', q: '../..' });
      assert.deepEqual(
        slash.api.map((hit) => hit.path),
        ['/api/items/a%2Fb/details?q=..%2F..'],
      );
      const encodedDots = await call('item_details', { id: '%2e%2E', q: 'x' });
      assert.deepEqual(
        encodedDots.api.map((hit) => hit.path),
        ['/api/items/%252e%252E/details?q=x'],
      );
    });
  });

  describe('redirects', () => {
    test('are not followed by default', async () => {
      const result = await call('redirect_default', {});
      assert.match(
        result.text,
        /Error: the service answered HTTP 302 \(a redirect, which was not followed\)/,
      );
      assert.deepEqual(
        result.api.map((hit) => hit.path),
        ['/api/redirect-same'],
      );
      assert.deepEqual(result.states, ['started', 'failed']);
    });

    test('a redirect to another origin is not followed by default either; the other server sees nothing', async () => {
      const result = await call('redirect_cross_default', {});
      assert.match(result.text, /not followed/);
      assert.deepEqual(result.other, []);
    });

    test('with followRedirects, a same-origin redirect is followed with the headers', async () => {
      const result = await call('redirect_same', {});
      assert.deepEqual(result.api, [
        { method: 'GET', path: '/api/redirect-same', auth: `Bearer ${API_SECRET}` },
        { method: 'GET', path: '/api/landing', auth: `Bearer ${API_SECRET}` },
      ]);
      assert.match(result.text, /"landed":true/);
    });

    test('with followRedirects, a redirect to another port is refused and never sees the Authorization header', async () => {
      const result = await call('redirect_cross', {});
      assert.match(
        result.text,
        /Error: refused: a redirect to another origin \(http:\/\/127\.0\.0\.1:\d+\) was not followed/,
      );
      assert.deepEqual(
        result.other,
        [],
        `the other origin received ${JSON.stringify(result.other)}`,
      );
      assert.deepEqual(
        result.api.map((hit) => hit.path),
        ['/api/redirect-cross'],
      );
    });

    test('with followRedirects, a redirect to another host name for the same server is refused too', async () => {
      const result = await call('redirect_alias', {});
      assert.match(
        result.text,
        /Error: refused: a redirect to another origin \(http:\/\/localhost:\d+\)/,
      );
      assert.deepEqual(
        result.api.map((hit) => `${hit.method} ${hit.path}`),
        ['POST /api/redirect-alias'],
      );
    });

    test('followRedirects must be a boolean in the tool config', () => {
      const config = {
        name: 'x',
        description: 'x',
        parameters: { type: 'object' },
        http: { url: 'https://api.example/x', followRedirects: 'yes' },
      };
      assert.throws(
        () => createHttpTool(config as unknown as HttpToolConfig, { allowHosts: [] }, {}),
        /tool x: http\.followRedirects must be true or false/,
      );
    });

    test('with followRedirects, at most 3 redirects are followed', async () => {
      const result = await call('redirect_loop', {});
      assert.match(result.text, /Error: too many redirects/);
      assert.equal(result.api.length, 4);
    });
  });

  describe('IPv6 forms of IPv4 addresses', () => {
    test('IPv4-compatible ::/96 is never public; mapped, NAT64 and 6to4 forms of non-public addresses neither', () => {
      for (const address of [
        '::127.0.0.1',
        '::7f00:1',
        '::10.0.0.1',
        '::169.254.169.254',
        '::8.8.8.8',
        '::',
        '::1',
        '::ffff:127.0.0.1',
        '::ffff:7f00:1',
        '::ffff:169.254.169.254',
        '64:ff9b::127.0.0.1',
        '64:ff9b::a9fe:a9fe',
        '64:ff9b:1::7f00:1',
        '2002:7f00:1::',
        '2002:a9fe:a9fe::1',
        '::ffff:0:7f00:1',
      ]) {
        assert.equal(isPublicAddress(address), false, address);
      }
      for (const address of ['8.8.8.8', '::ffff:8.8.8.8', '2001:4860:4860::8888'])
        assert.equal(isPublicAddress(address), true, address);
    });

    test('URL host literals such as [::127.0.0.1] are refused before connecting', () => {
      for (const host of ['[::127.0.0.1]', '[::7f00:1]', '[::0.0.0.1]', '[::a9fe:a9fe]']) {
        const { hostname } = new URL(`http://${host}/`);
        assert.throws(
          () => assertLiteralAllowed(hostname, { allowHosts: [] }),
          /is not a public address/,
          host,
        );
      }
    });

    test('an HTTP tool aimed at [::127.0.0.1] is refused, even with 127.0.0.1 allowed', async () => {
      const result = await call('compat_v4', { q: 'x' });
      assert.match(result.text, /Error: refused: ::7f00:1 is not a public address/);
      assert.deepEqual(result.api, []);
    });
  });
});

describe('provider error bodies in the logs', () => {
  const leaked = {
    openai: 'sk-live-abcdef1234567890XYZ',
    project: 'sk-proj-Zq9xW8vU7tS6rR5qP4oN3mL2kJ1',
    bearer: 'tok_bearer_9f8e7d6c5b4a39281706',
    client: 'vb_pk_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z',
    jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXlfMTIzIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ',
  };
  let h: RelayHarness;

  before(async () => {
    h = await startRelay({
      upstream: {
        chat: () => ({
          fail: 'http',
          status: 401,
          message:
            `Incorrect API key provided: ${leaked.openai}. You can find your API key at https://platform.openai.com/account/api-keys. ` +
            `Also tried ${leaked.project}; request headers were {"Authorization": "Bearer ${leaked.bearer}"}; ` +
            `page key ${leaked.client}; token ${leaked.jwt}. ${'padding '.repeat(400)}`,
        }),
      },
    });
  });
  after(() => h.close());

  test('a 401 echoing keys and tokens is logged without them, and capped', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    talk.send({ type: 'text', text: 'hello' });
    const error = await talk.next('error');
    assert.equal(error.code, 'upstream_llm');
    talk.close();
    const failed = h.logs.find((line) => line.includes('"turn failed"'));
    assert.ok(failed, 'the failure is logged');
    const entry = JSON.parse(failed) as { err: string };
    assert.match(entry.err, /401/, 'the log still says what happened');
    assert.match(entry.err, /sk-\[redacted\]/);
    assert.ok(entry.err.length <= 1100, `err is capped (${entry.err.length} chars)`);
    const all = h.logs.join('\n');
    for (const fragment of [
      'abcdef1234567890',
      'Zq9xW8vU7tS6',
      leaked.bearer,
      'Ab3dEf6hIj9kLm2n',
      'eyJzdWIiOiJrZXlfMTIzIn0',
      'c2lnbmF0dXJl',
    ]) {
      assert.ok(!all.includes(fragment), `the logs contain ${fragment}`);
    }
  });
});
