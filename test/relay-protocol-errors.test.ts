import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLOSE_CODES } from '@voice-bot/protocol';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  openStartedTalk,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

describe('bad input gets a typed error and never kills the session or the relay', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: { chat: () => ({ content: 'Still alive.' }) },
      relay: { limits: { maxTextChars: 50, maxUtteranceMs: 1000 } },
    });
  });
  after(() => h.close());

  async function rawTalk(): Promise<TalkClient> {
    const s = await createSession(h.url, { key: h.key, origin: ORIGIN });
    const talk = await connectTalk(s.body.ws_url as string, s.body.token, ORIGIN);
    assert.ok(talk instanceof TalkClient);
    return talk;
  }

  test('before start: binary, commit and garbage are answered, then start still works', async () => {
    const talk = await rawTalk();
    talk.sendRaw(new Uint8Array([1, 2, 3, 4]));
    assert.equal((await talk.next('error')).code, 'not_started');
    talk.send({ type: 'commit' });
    await talk.next('error', (e) => e.message.includes('commit'));
    talk.sendRaw('{"type":');
    assert.equal((await talk.next('error', (e) => e.code === 'bad_json')).fatal, false);
    talk.start({ input: 'text', output: 'text' });
    await talk.next('ready');
    talk.close();
  });

  test('malformed and unknown messages after start', async () => {
    const talk = await openStartedTalk(h, { input: 'audio', output: 'text' });
    const cases: [string | Uint8Array, string][] = [
      ['not json at all', 'bad_json'],
      ['[1,2,3]', 'invalid_message'],
      ['"start"', 'invalid_message'],
      ['{"type":"dance"}', 'unknown_type'],
      ['{"no":"type"}', 'unknown_type'],
      ['{"type":"text","text":42}', 'invalid_message'],
      ['{"type":"interrupt","turn_id":-1,"played_ms":0}', 'invalid_message'],
      ['{"type":"interrupt","turn_id":99,"played_ms":10}', 'stale_turn'],
      [JSON.stringify({ type: 'text', text: 'x'.repeat(51) }), 'text_too_long'],
      [JSON.stringify({ type: 'text', text: '   ' }), 'invalid_message'],
      [JSON.stringify({ type: 'text', text: 'y'.repeat(20_000) }), 'message_too_large'],
      [JSON.stringify({ type: 'start', protocol_version: '1.0.0' }), 'already_started'],
      [new Uint8Array(3), 'bad_audio_frame'],
      ['{"type":"commit"}', 'empty_utterance'],
    ];
    for (const [frame, code] of cases) {
      const from = talk.messages.length;
      talk.sendRaw(frame);
      const error = await talk.next('error', () => true, { from });
      assert.equal(error.code, code, `${String(frame).slice(0, 40)} → ${code}`);
      assert.equal(error.fatal, false);
    }
    talk.send({ type: 'text', text: 'are you there?' });
    assert.equal((await talk.next('done')).text, 'Still alive.');
    talk.close();
  });

  test('an utterance longer than the limit is refused and dropped; the next one works', async () => {
    const talk = await openStartedTalk(h, { input: 'audio', output: 'text' });
    const second = new Uint8Array(32_000);
    talk.sendRaw(second);
    talk.sendRaw(new Uint8Array(640));
    const error = await talk.next('error');
    assert.equal(error.code, 'utterance_too_long');
    talk.send({ type: 'commit' });
    const mark = h.upstream.requests.length;
    talk.sendRaw(new Uint8Array(16_000));
    talk.send({ type: 'commit' });
    await talk.next('done');
    assert.equal(
      h.upstream.requests.slice(mark).filter((r) => r.kind === 'transcription').length,
      1,
    );
    talk.close();
  });

  test('audio in a text-input session is refused', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    talk.sendRaw(new Uint8Array(640));
    assert.equal((await talk.next('error')).code, 'binary_not_expected');
    talk.close();
  });

  test('a protocol major version mismatch is refused with a typed error and close code', async () => {
    const talk = await rawTalk();
    talk.send({ type: 'start', protocol_version: '2.0.0', input: 'text', output: 'text' });
    const error = await talk.next('error');
    assert.equal(error.code, 'protocol_version');
    assert.equal(error.fatal, true);
    assert.equal((await talk.closed).code, CLOSE_CODES.protocolVersion);
  });

  test('an audio frame over maxPayload closes with 1009; the relay keeps serving', async () => {
    const talk = await openStartedTalk(h, { input: 'audio', output: 'text' });
    talk.sendRaw(new Uint8Array(64 * 1024 + 2));
    assert.equal((await talk.closed).code, 1009);
    const next = await openStartedTalk(h, { input: 'text', output: 'text' });
    next.send({ type: 'text', text: 'hello' });
    assert.equal((await next.next('done')).text, 'Still alive.');
    next.close();
  });

  test('ping is answered with pong; stop closes normally', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    talk.send({ type: 'ping', t: 123 });
    assert.equal((await talk.next('pong')).t, 123);
    talk.send({ type: 'stop' });
    assert.equal((await talk.closed).code, CLOSE_CODES.normal);
  });
});
