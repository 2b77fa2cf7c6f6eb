import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeClientMessage,
  encodeServerMessage,
  isCompatibleVersion,
  parseClientMessage,
  parseServerMessage,
} from './codec.js';
import { ProtocolError } from './errors.js';
import {
  FEATURE_HANDOFF,
  FEATURE_SPECULATION,
  PROTOCOL_VERSION,
  type ServerMessage,
} from './messages.js';

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  assert.fail('expected a ProtocolError');
}

describe('protocol 1.1: speculative turns', () => {
  test('the version is 1.2.0 and still talks to 1.0 and 1.1 peers (same major)', () => {
    assert.equal(PROTOCOL_VERSION, '1.2.0');
    assert.ok(isCompatibleVersion('1.0.0'));
    assert.ok(isCompatibleVersion('1.1.0'));
    assert.ok(isCompatibleVersion('1.1.0', '1.0.0'));
    assert.equal(isCompatibleVersion('2.0.0'), false);
  });

  test('pause and resume round-trip through the codec', () => {
    assert.deepEqual(parseClientMessage(encodeClientMessage({ type: 'pause' })), {
      type: 'pause',
    });
    assert.deepEqual(parseClientMessage(encodeClientMessage({ type: 'resume' })), {
      type: 'resume',
    });
    // Unknown fields are ignored, as for every client message.
    assert.deepEqual(parseClientMessage('{"type":"pause","at_ms":12}'), { type: 'pause' });
  });

  test('an unknown client type is still unknown_type (what an old relay answers to pause)', () => {
    assert.equal(protocolError(() => parseClientMessage('{"type":"pauze"}')).code, 'unknown_type');
  });

  test('tentative_transcript is parsed; one without text is not a valid message', () => {
    const message: ServerMessage = { type: 'tentative_transcript', text: 'What time is it' };
    assert.deepEqual(parseServerMessage(encodeServerMessage(message)), message);
    assert.equal(parseServerMessage('{"type":"tentative_transcript"}'), undefined);
    assert.equal(parseServerMessage('{"type":"tentative_transcript","text":3}'), undefined);
  });

  test('ready.features is optional: a 1.0 ready still parses, a 1.1 ready keeps its features', () => {
    const old = {
      type: 'ready',
      session_id: 's',
      conversation_id: 'c',
      protocol_version: '1.0.0',
      input_sample_rate: 16_000,
      output_sample_rate: 24_000,
      resumed: false,
      history: [],
    };
    const parsedOld = parseServerMessage(JSON.stringify(old));
    assert.equal(parsedOld?.type, 'ready');
    assert.equal(parsedOld.type === 'ready' && parsedOld.features, undefined);
    const parsedNew = parseServerMessage(
      JSON.stringify({ ...old, protocol_version: '1.1.0', features: [FEATURE_SPECULATION] }),
    );
    assert.deepEqual(parsedNew?.type === 'ready' && parsedNew.features, ['speculation']);
    assert.equal(
      parseServerMessage(JSON.stringify({ ...old, features: 'speculation' })),
      undefined,
      'features must be an array of strings',
    );
  });

  test('done.metrics carries speculative and held_ms; both are optional', () => {
    const done = {
      type: 'done',
      turn_id: 3,
      text: 'Hi.',
      interrupted: false,
      metrics: { total_ms: 900, speculative: true, held_ms: 410 },
    };
    const parsed = parseServerMessage(JSON.stringify(done));
    assert.deepEqual(parsed?.type === 'done' && parsed.metrics, {
      total_ms: 900,
      speculative: true,
      held_ms: 410,
    });
    const plain = parseServerMessage(JSON.stringify({ ...done, metrics: { total_ms: 5 } }));
    assert.deepEqual(plain?.type === 'done' && plain.metrics, { total_ms: 5 });
    assert.equal(
      parseServerMessage(JSON.stringify({ ...done, metrics: { total_ms: 5, speculative: 'yes' } })),
      undefined,
    );
  });
});

describe('protocol 1.2: handoff to a person', () => {
  const handoff = {
    type: 'handoff',
    turn_id: 2,
    reason: 'asked for a person',
    urgency: 'high',
    summary: 'Wants to move Friday’s appointment.',
    targets: { phone: '+1 555 0100', chat_url: 'https://example.com/chat' },
    message: 'Our receptionist will call you back within the hour.',
  } as const;

  test('a handoff round-trips; message and every target are optional', () => {
    assert.deepEqual(parseServerMessage(encodeServerMessage(handoff)), handoff);
    const { message: _, ...bare } = { ...handoff, targets: {} };
    assert.deepEqual(parseServerMessage(JSON.stringify(bare)), bare);
    assert.equal(FEATURE_HANDOFF, 'handoff');
  });

  test('an unknown urgency or a missing summary is not a valid handoff', () => {
    assert.equal(parseServerMessage(JSON.stringify({ ...handoff, urgency: 'asap' })), undefined);
    const { summary: _, ...noSummary } = handoff;
    assert.equal(parseServerMessage(JSON.stringify(noSummary)), undefined);
    assert.equal(
      parseServerMessage(JSON.stringify({ ...handoff, targets: { phone: 5 } })),
      undefined,
    );
  });

  test('ready.link_hosts is optional and must be strings', () => {
    const ready = {
      type: 'ready',
      session_id: 's',
      conversation_id: 'c',
      protocol_version: '1.2.0',
      input_sample_rate: 16_000,
      output_sample_rate: 24_000,
      resumed: false,
      history: [],
      link_hosts: ['example.com', '*.example.org'],
    };
    const parsed = parseServerMessage(JSON.stringify(ready));
    assert.deepEqual(parsed?.type === 'ready' && parsed.link_hosts, [
      'example.com',
      '*.example.org',
    ]);
    assert.equal(parseServerMessage(JSON.stringify({ ...ready, link_hosts: [1] })), undefined);
  });
});

describe('page-side tools (1.2)', () => {
  test('tool_call and tool_cancel parse; tool_result and client_tools are validated', () => {
    const call = { type: 'tool_call', turn_id: 2, call_id: 'call_1', name: 'show', args: { a: 1 } };
    assert.deepEqual(parseServerMessage(JSON.stringify(call)), call);
    assert.deepEqual(parseServerMessage('{"type":"tool_cancel","call_id":"call_1"}'), {
      type: 'tool_cancel',
      call_id: 'call_1',
    });
    const result = { type: 'tool_result', call_id: 'call_1', ok: true, result: [1] };
    assert.deepEqual(parseClientMessage(JSON.stringify(result)), result);
    assert.throws(
      () => parseClientMessage('{"type":"tool_result","call_id":"","ok":true}'),
      (e: unknown) => e instanceof ProtocolError && e.code === 'invalid_message',
    );
    assert.throws(
      () => parseClientMessage('{"type":"client_tools","names":["has space"]}'),
      (e: unknown) => e instanceof ProtocolError && e.code === 'invalid_message',
    );
    const start = parseClientMessage(
      '{"type":"start","protocol_version":"1.2.0","client_tools":["show_section"]}',
    );
    assert.deepEqual(start.type === 'start' && start.client_tools, ['show_section']);
  });
});
