import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createFakeUpstream } from './index.js';
import { servedFake } from './served.fixture.js';
import type { ChatScript, FakeResult } from './index.js';

/** Per-test scripting: each test sets what the next chat call returns. */
let nextChat: (body: Record<string, unknown>) => FakeResult<ChatScript> = () => ({
  content: 'default',
});

const served = servedFake({ chat: (req) => nextChat(req.body) });
const fake = served.fake;

const messages = [{ role: 'user' as const, content: 'What are your opening hours?' }];

describe('chat completions', () => {
  test('streamed text reassembles exactly, with a usage chunk', async () => {
    const content = 'We are open from 9 to 5,  Monday–Friday. 🙂 See you!\n';
    nextChat = () => ({ content, usage: { prompt_tokens: 12, completion_tokens: 9 } });
    const stream = await served.client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let contentChunks = 0;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    let role: string | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      role ??= choice.delta.role;
      if (choice.delta.content) {
        text += choice.delta.content;
        contentChunks++;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(text, content);
    assert.equal(role, 'assistant');
    assert.ok(contentChunks >= 8, `expected word-sized chunks, got ${contentChunks}`);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 });
    const recorded = await fake.waitForRequest(
      'chat',
      (r) => r.endedAt !== undefined && (r.body as { stream?: boolean }).stream === true,
    );
    assert.deepEqual((recorded.body as { messages: unknown }).messages, messages);
    assert.equal(recorded.aborted, false);
  });

  for (const interleaveToolCalls of [false, true]) {
    test(`two parallel tool calls stream and reassemble (${interleaveToolCalls ? 'interleaved' : 'sequential'})`, async () => {
      const first = JSON.stringify({ city: 'Zürich', day: 'monday' });
      const second = JSON.stringify({ query: 'opening hours', limit: 3, tags: ['a', 'b'] });
      nextChat = () => ({
        toolCalls: [
          { id: 'call_a', name: 'get_hours', arguments: first },
          { name: 'search', arguments: second },
        ],
        chunkSize: 5,
        interleaveToolCalls,
      });
      const stream = await served.client().chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        tools: [
          {
            type: 'function',
            function: { name: 'get_hours', parameters: { type: 'object', properties: {} } },
          },
          {
            type: 'function',
            function: { name: 'search', parameters: { type: 'object', properties: {} } },
          },
        ],
      });
      const calls: { id?: string; name: string; args: string; fragments: number }[] = [];
      const order: number[] = [];
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        for (const delta of choice.delta.tool_calls ?? []) {
          const call = (calls[delta.index] ??= { name: '', args: '', fragments: 0 });
          if (delta.id) call.id = delta.id;
          if (delta.function?.name) call.name += delta.function.name;
          if (delta.function?.arguments) {
            call.args += delta.function.arguments;
            call.fragments++;
            order.push(delta.index);
          }
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(calls.length, 2);
      assert.equal(calls[0]?.id, 'call_a');
      assert.match(calls[1]?.id ?? '', /^call_/);
      assert.equal(calls[0]?.name, 'get_hours');
      assert.equal(calls[1]?.name, 'search');
      assert.deepEqual(JSON.parse(calls[0]?.args ?? ''), JSON.parse(first));
      assert.deepEqual(JSON.parse(calls[1]?.args ?? ''), JSON.parse(second));
      assert.ok((calls[0]?.fragments ?? 0) > 3 && (calls[1]?.fragments ?? 0) > 3);
      const switches = order.filter((index, i) => i > 0 && index !== order[i - 1]).length;
      if (interleaveToolCalls) assert.ok(switches > 2);
      else assert.equal(switches, 1);
    });
  }

  test('non-streamed completion', async () => {
    nextChat = () => ({
      content: 'Nine to five.',
      toolCalls: [{ id: 'call_x', name: 'log', arguments: '{"ok":true}' }],
    });
    const completion = await served
      .client()
      .chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'gpt-4o-mini');
    const choice = completion.choices[0];
    assert.equal(choice?.message.content, 'Nine to five.');
    assert.equal(choice?.finish_reason, 'tool_calls');
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.deepEqual(
      [call.id, call.function.name, call.function.arguments],
      ['call_x', 'log', '{"ok":true}'],
    );
    assert.ok((completion.usage?.total_tokens ?? 0) > 0);
    assert.match(completion._request_id ?? '', /^req_/);
  });

  test('the default script echoes the user', async () => {
    const plain = createFakeUpstream();
    const res = await plain.app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }],
      }),
    });
    const json = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.match(json.choices[0]?.message.content ?? '', /You said: hello/);
  });
});
