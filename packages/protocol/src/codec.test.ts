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
import { FEATURE_SPECULATION, PROTOCOL_VERSION, type ServerMessage } from './messages.js';

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
  test('the version is 1.1.0 and still talks to 1.0 peers (same major)', () => {
    assert.equal(PROTOCOL_VERSION, '1.1.0');
    assert.ok(isCompatibleVersion('1.0.0'));
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
