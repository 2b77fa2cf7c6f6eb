import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ChatRequest, ChatScript } from '@voice-bot/fake-provider';
import { createRelay } from '@voice-bot/relay';
import { lastUser, openStartedTalk, startRelay, type RelayHarness } from './support/relay.js';

type Message = { role: string; content?: string | null; tool_call_id?: string };
/** Tool results since the visitor's last line (earlier turns' stay in the history). */
const toolResults = (request: ChatRequest) => {
  const messages = request.messages as Message[];
  const lastUserAt = messages.findLastIndex((m) => m.role === 'user');
  return messages.slice(lastUserAt + 1).filter((m) => m.role === 'tool');
};
const offered = (request: ChatRequest) =>
  (request.tools ?? []).map((t) => (t as { function: { name: string } }).function.name);

const SHOW_SECTION = {
  name: 'show_section',
  description: 'Scrolls the page to a section',
  parameters: {
    type: 'object',
    properties: { section: { type: 'string', enum: ['prices', 'hours'] } },
    required: ['section'],
  },
};

describe('page-side tools (clientTools) through the relay', () => {
  let h: RelayHarness;
  /** The tools each model request offered, by the visitor line it answered. */
  const offers = new Map<string, string[]>();

  before(async () => {
    h = await startRelay({
      upstream: {
        chat: (request): ChatScript => {
          const said = lastUser(request);
          const results = toolResults(request);
          if (results.length > 0)
            return { content: `Page said: ${results.map((r) => r.content).join(' | ')}` };
          offers.set(said, offered(request));
          const section = said.includes('hours') ? 'hours' : 'prices';
          const name = said.includes('slow') ? 'slow_tool' : 'show_section';
          return { toolCalls: [{ name, arguments: JSON.stringify({ section }) }] };
        },
      },
      relay: {
        bots: [
          {
            id: 'front-desk',
            name: 'Front desk',
            systemPrompt: 'You help visitors.',
            clientTools: [
              { ...SHOW_SECTION, timeoutMs: 2_000 },
              { name: 'slow_tool', description: 'Never answered in time', timeoutMs: 300 },
            ],
          },
        ],
      },
    });
  });
  after(() => h.close());

  test('the page runs the call and the model gets its result; the tool event shows args and result', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      client_tools: ['show_section'],
    });
    assert.ok(talk.of('ready')[0]?.features?.includes('client_tools'));
    talk.send({ type: 'text', text: 'show me the prices' });
    const call = await talk.next('tool_call');
    assert.equal(call.name, 'show_section');
    assert.deepEqual(call.args, { section: 'prices' });
    talk.send({
      type: 'tool_result',
      call_id: call.call_id,
      ok: true,
      result: { shown: 'prices' },
    });
    const done = await talk.next('done');
    assert.equal(done.text, 'Page said: {"shown":"prices"}');
    assert.deepEqual(offers.get('show me the prices'), ['show_section']);
    const finished = await talk.next('tool', (m) => m.state === 'done');
    assert.deepEqual(finished.args, { section: 'prices' });
    assert.deepEqual(finished.result, { shown: 'prices' });
    // An answer to a call that is no longer waited for is refused with a typed error.
    talk.send({ type: 'tool_result', call_id: call.call_id, ok: true, result: {} });
    assert.equal((await talk.next('error')).code, 'unknown_tool_call');
    talk.close();
  });

  test('a page without the tool: not offered, and a call anyway fails at once with a typed error', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      client_tools: ['slow_tool'],
    });
    const started = Date.now();
    talk.send({ type: 'text', text: 'show me the prices please' });
    const done = await talk.next('done');
    assert.deepEqual(offers.get('show me the prices please'), ['slow_tool']);
    assert.equal(done.text, 'Page said: Error: show_section is not available on this page.');
    assert.ok(Date.now() - started < 1_500, 'no wait for a timeout');
    assert.equal(talk.of('tool_call').length, 0);
    // Registered later (`client_tools`): offered from the next turn on.
    talk.send({ type: 'client_tools', names: ['show_section'] });
    talk.send({ type: 'text', text: 'show me the hours' });
    const call = await talk.next('tool_call');
    assert.deepEqual(call.args, { section: 'hours' });
    assert.deepEqual(offers.get('show me the hours'), ['show_section']);
    talk.send({ type: 'tool_result', call_id: call.call_id, ok: false, error: 'no such section' });
    const second = await talk.next('done', (m) => m.turn_id === call.turn_id);
    assert.equal(
      second.text,
      'Page said: Error: the page could not run show_section: no such section.',
    );
    talk.close();
  });

  test('no answer in time: the model hears it timed out, the page gets tool_cancel', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      client_tools: ['slow_tool', 'show_section'],
    });
    talk.send({ type: 'text', text: 'the slow one' });
    const call = await talk.next('tool_call');
    const cancel = await talk.next('tool_cancel');
    assert.equal(cancel.call_id, call.call_id);
    const done = await talk.next('done');
    assert.equal(done.text, 'Page said: Error: timed out after 300 ms.');
    talk.close();
  });

  test('an interrupt cancels the waiting call', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      client_tools: ['show_section'],
    });
    talk.send({ type: 'text', text: 'show me the prices, then stop' });
    const call = await talk.next('tool_call');
    talk.send({ type: 'interrupt', turn_id: call.turn_id, played_ms: 0 });
    assert.equal((await talk.next('tool_cancel')).call_id, call.call_id);
    const done = await talk.next('done');
    assert.equal(done.interrupted, true);
    talk.send({ type: 'tool_result', call_id: call.call_id, ok: true, result: { shown: 'x' } });
    assert.equal((await talk.next('error')).code, 'unknown_tool_call');
    talk.close();
  });

  test('a result over 8 KB is refused: the model is told, not given it', async () => {
    const talk = await openStartedTalk(h, {
      input: 'text',
      output: 'text',
      client_tools: ['show_section'],
    });
    talk.send({ type: 'text', text: 'show me a lot of prices' });
    const call = await talk.next('tool_call');
    const result = { rows: 'x'.repeat(10_000) };
    talk.send({ type: 'tool_result', call_id: call.call_id, ok: true, result });
    const done = await talk.next('done');
    assert.equal(done.text, "Page said: Error: the page's result is larger than 8192 bytes.");
    talk.close();
  });

  test('a page-side tool may not share a server tool’s name', () => {
    assert.throws(
      () =>
        createRelay({
          tokenSecret: 'test-secret-test-secret-test-secret-0123',
          tools: [
            {
              name: 'show_section',
              description: 'server',
              parameters: { type: 'object' },
              execute: () => 'ok',
            },
          ],
          bots: [
            {
              id: 'b',
              name: 'B',
              systemPrompt: 'x',
              tools: ['show_section'],
              clientTools: [SHOW_SECTION],
            },
          ],
        }),
      /page-side tool and a server tool named show_section/,
    );
  });
});
