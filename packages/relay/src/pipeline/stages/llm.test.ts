import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APIError, APIUserAbortError } from 'openai';
import { UpstreamClient, undiciTransport } from '../../providers/upstream.js';
import { streamChat, type ChatRequest } from './llm.js';

const chunk = (body: object) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', ...body })}\n\n`;
const content = (text: string) => chunk({ choices: [{ index: 0, delta: { content: text } }] });

describe('streamChat (server-sent events off the Node stream)', () => {
  let server: Server;
  let client: UpstreamClient;
  let requestBody: Record<string, unknown> = {};
  let closed: Promise<void> = Promise.resolve();
  const routes: Record<string, (res: ServerResponse, req: IncomingMessage) => void> = {
    // The reply cut at awkward places: mid-event, mid-line and inside a multi-byte character.
    reply: (res) => {
      const bytes = Buffer.from(
        content('Grüß ') +
          content('dich 😀.') +
          chunk({
            choices: [
              {
                index: 0,
                delta: {
                  tool_calls: [
                    { index: 1, id: 'b', function: { name: 'second', arguments: '{"x"' } },
                    { index: 0, function: { name: 'fir', arguments: '' } },
                  ],
                },
              },
            ],
          }) +
          chunk({
            choices: [
              {
                index: 0,
                delta: {
                  tool_calls: [
                    { index: 0, function: { name: 'st', arguments: '{}' } },
                    { index: 1, function: { arguments: ':1}' } },
                  ],
                },
              },
            ],
          }) +
          chunk({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 5 } }) +
          'data: [DONE]\n\n',
      );
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const cuts = [3, 17, 40, 41, 42, 43, 97, 200, 333];
      let at = 0;
      const next = () => {
        const cut = cuts.shift() ?? bytes.byteLength;
        res.write(bytes.subarray(at, cut));
        at = cut;
        if (at < bytes.byteLength) setTimeout(next, 2);
        else res.end();
      };
      next();
    },
    error: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(content('Hi') + chunk({ error: { message: 'overloaded' } }));
    },
    endless: (res, req) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write(content('word ')), 10);
      closed = new Promise((resolve) =>
        req.socket.once('close', () => {
          clearInterval(timer);
          resolve();
        }),
      );
    },
  };

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requestBody = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
        const messages = requestBody.messages as { content: string }[];
        routes[messages[0]?.content ?? '']?.(res, req);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new UpstreamClient(
      {
        baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        apiKey: 'k',
        model: 'm',
        timeoutMs: 5000,
        maxRetries: 0,
      },
      undiciTransport(),
    );
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const request = (route: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
    model: 'gpt-x',
    messages: [{ role: 'user', content: route }],
    ...extra,
  });

  it('sends the request as the SDK did; text in order, tool calls assembled by index, usage at the end', async () => {
    const texts: string[] = [];
    const round = await streamChat(
      client,
      request('reply', { temperature: 0.2, maxTokens: 50 }),
      new AbortController().signal,
      (text) => void texts.push(text),
    );
    assert.deepEqual(requestBody, {
      model: 'gpt-x',
      messages: [{ role: 'user', content: 'reply' }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      max_completion_tokens: 50,
    });
    assert.deepEqual(texts, ['Grüß ', 'dich 😀.']);
    assert.deepEqual(round.usage, { promptTokens: 12, completionTokens: 5 });
    assert.deepEqual(round.toolCalls, [
      { id: 'call_0', name: 'first', arguments: '{}' },
      { id: 'b', name: 'second', arguments: '{"x":1}' },
    ]);
  });

  it('backpressure: while onText’s promise is pending no more text is read', async () => {
    let release!: () => void;
    const texts: string[] = [];
    const done = streamChat(client, request('reply'), new AbortController().signal, (text) => {
      texts.push(text);
      return texts.length === 1 ? new Promise<void>((resolve) => (release = resolve)) : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(texts, ['Grüß ']);
    release();
    await done;
    assert.deepEqual(texts, ['Grüß ', 'dich 😀.']);
  });

  it('an error event in the stream rejects with an APIError (no status: "broke off")', async () => {
    await assert.rejects(
      streamChat(client, request('error'), new AbortController().signal, () => undefined),
      (error: Error) => error instanceof APIError && error.status === undefined,
    );
  });

  it('an abort mid-stream rejects within milliseconds and closes the connection', async () => {
    const controller = new AbortController();
    let words = 0;
    const pending = streamChat(client, request('endless'), controller.signal, () => {
      words++;
      return undefined;
    });
    while (words < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    const aborted = performance.now();
    controller.abort(new Error('interrupted'));
    await assert.rejects(pending, APIUserAbortError);
    assert.ok(performance.now() - aborted < 50);
    await closed;
  });
});
