import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VoiceBotError } from '../errors.js';
import { Connection, restingState } from './status.js';

describe('restingState', () => {
  it('the visitor speaking, else the bot thinking, else listening (idle without a way to take input)', () => {
    assert.equal(restingState('confirmed', 'awaiting', true), 'user-speaking');
    assert.equal(
      restingState('pending', 'awaiting', true),
      'thinking',
      'unconfirmed speech does not count',
    );
    assert.equal(
      restingState('silent', 'playing', true),
      'listening',
      'a reply still playing is not thinking',
    );
    assert.equal(restingState('silent', 'idle', true), 'listening');
    assert.equal(restingState('silent', 'idle', false), 'idle');
  });
});

describe('Connection', () => {
  it('whoever waits for ready is released by ready, or rejected by a fatal error', async () => {
    const connection = new Connection();
    assert.equal(connection.status, 'idle');
    const first = connection.whenReady();
    connection.set('connecting');
    assert.equal(connection.ready, false);
    connection.set('ready');
    await first;
    assert.equal(connection.ready, true);
    const second = connection.whenReady();
    const fatal = new VoiceBotError('invalid_key', 'nope', { fatal: true });
    connection.reject(fatal);
    await assert.rejects(second, fatal);
    connection.reject(fatal); // nobody waiting: nothing unhandled
    connection.whenReady(); // never settled, never unhandled
  });
});
