/**
 * Speculative turns (protocol 1.1) end to end: real WebSockets, the real relay and the fake
 * provider. `pause` starts a turn over the audio so far whose output is held until `commit`;
 * `resume`, more audio or other input discards it (every request aborted, history untouched).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { synthesizeTone, type FakeUpstreamOptions } from '@voice-bot/fake-provider';
import type { RecordedRequest } from '@voice-bot/fake-provider';
import { defineTool, type KeyLimits } from '@voice-bot/relay';
import type { ServerMessage } from '@voice-bot/protocol';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  lastUser,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `ms` of visitor audio (16 kHz PCM16; the fake STT does not listen to it). */
const speech = (ms: number) => new Uint8Array(ms * 32);

const HOURS = 'What are your opening hours?';
const REPLY =
  'Sure, we are open from nine to five on weekdays, and from ten to two on Saturday. Anything else?';
const BOOKED = 'Booked for noon, see you then.';

/** What the fake STT hears next (steered per test). */
let heard = HOURS;
/** Times the `book_slot` tool ran. */
const toolRuns: number[] = [];

function script(): FakeUpstreamOptions {
  return {
    latency: { sttMs: 30, llmTtftMs: 30, ttsTtfbMs: 20 },
    transcribe: () => heard,
    chat: (request) => {
      const said = lastUser(request);
      if (said === 'hang') return { fail: 'hang' };
      if (said === 'book it') {
        const roles = request.messages.map((m) => (m as { role?: string }).role);
        const answered = roles.lastIndexOf('tool') > roles.lastIndexOf('user');
        return answered
          ? { content: BOOKED }
          : { toolCalls: [{ id: 'call_1', name: 'book_slot', arguments: '{"when":"noon"}' }] };
      }
      return { content: REPLY };
    },
    speech: (request) => ({ pcm: synthesizeTone(request.input) }),
  };
}

async function newKey(h: RelayHarness, limits?: KeyLimits): Promise<{ id: string; key: string }> {
  const { record, secret } = await h.keys.create({
    origins: [ORIGIN],
    ...(limits ? { limits } : {}),
  });
  return { id: record.id, key: secret };
}

async function openTalk(
  h: RelayHarness,
  key: string,
  options: { bot?: string; input?: 'audio' | 'text' } = {},
): Promise<TalkClient> {
  const session = await createSession(h.url, {
    key,
    origin: ORIGIN,
    ...(options.bot ? { bot: options.bot } : {}),
  });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const talk = await connectTalk(
    session.body.ws_url as string,
    session.body.token as string,
    ORIGIN,
  );
  assert.ok(talk instanceof TalkClient);
  talk.start({ input: options.input ?? 'audio', output: 'audio' });
  await talk.next('ready');
  await talk.next('status', (s) => s.state === 'listening');
  return talk;
}

const since = (h: RelayHarness, mark: number, kind: RecordedRequest['kind']) =>
  h.upstream.requests.slice(mark).filter((r) => r.kind === kind);

const typesFrom = (talk: TalkClient, from: number) =>
  talk.messages.slice(from).map((m: ServerMessage) => m.type);

async function usageOf(h: RelayHarness, keyId: string) {
  const [today] = await h.relay.usage.history(keyId, 1);
  assert.ok(today);
  return today;
}

/** `voicebot_speculative_turns_total{outcome}` as `/metrics` shows it. */
async function speculativeCount(h: RelayHarness, outcome: 'confirmed' | 'discarded') {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`voicebot_speculative_turns_total{outcome="${outcome}"}`));
  assert.ok(line, `no ${outcome} series in /metrics`);
  return Number(line.split(' ').at(-1));
}

describe('speculative turns: pause, resume, commit', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: script(),
      relay: {
        metrics: 'public',
        tools: [
          defineTool({
            name: 'book_slot',
            description: 'Books an appointment',
            parameters: {
              type: 'object',
              properties: { when: { type: 'string' } },
              required: ['when'],
            },
            execute: (args) => {
              toolRuns.push(performance.now());
              return { booked: args.when };
            },
          }),
        ],
        bots: [
          { id: 'spec', name: 'Spec', systemPrompt: 'Be brief.', tools: ['book_slot'] },
          { id: 'plain', name: 'Plain', systemPrompt: 'Be brief.', speculation: false },
        ],
      },
    });
  });
  after(() => h.close());

  test('ready lists the speculation feature only for audio input, a bot and a key that allow it', async () => {
    const { key } = await newKey(h);
    const features = async (talk: TalkClient) => {
      const ready = talk.of('ready')[0];
      talk.close();
      return ready?.features;
    };
    assert.deepEqual(await features(await openTalk(h, key)), ['speculation']);
    assert.deepEqual(await features(await openTalk(h, key, { input: 'text' })), []);
    assert.deepEqual(await features(await openTalk(h, key, { bot: 'plain' })), []);
    const off = await newKey(h, { speculativeTurnsPerMinute: 0 });
    assert.deepEqual(await features(await openTalk(h, off.key)), []);
  });

  test('pause: the turn runs at once but nothing is sent until commit; then all of it, with the next turn id', async () => {
    heard = HOURS;
    const { id, key } = await newKey(h);
    const talk = await openTalk(h, key);
    const mark = h.upstream.requests.length;
    await talk.sendPcm(speech(800));
    const from = talk.messages.length;
    const audioFrom = talk.audio.length;
    talk.send({ type: 'pause', pause_id: 7 });
    const tentative = await talk.next('tentative_transcript', undefined, { from });
    assert.equal(tentative.text, HOURS);
    assert.equal(tentative.pause_id, 7, 'it names the pause it answers');

    // The whole reply is prepared: every sentence's speech request has completed.
    await h.upstream.waitForRequest(
      'speech',
      (r) =>
        r.startedAt >= (h.upstream.requests[mark]?.startedAt ?? 0) &&
        r.body !== undefined &&
        (r.body as { input: string }).input === 'Anything else?' &&
        r.endedAt !== undefined,
    );
    await sleep(100);
    assert.deepEqual(
      typesFrom(talk, from),
      ['tentative_transcript'],
      'only the tentative transcript',
    );
    assert.equal(talk.audio.length, audioFrom, 'no audio before commit');

    const committedAt = performance.now();
    talk.send({ type: 'commit' });
    const done = await talk.next('done', undefined, { from });
    const firstAudioAfter = performance.now() - committedAt;
    assert.equal(done.turn_id, 1, 'the first turn of the session');
    assert.equal(done.text, REPLY);
    assert.equal(done.metrics.speculative, true);
    assert.ok((done.metrics.held_ms ?? 0) >= 100, `held_ms ${done.metrics.held_ms}`);
    assert.ok(firstAudioAfter < 1_000);
    assert.deepEqual(typesFrom(talk, from).slice(0, 3), [
      'tentative_transcript',
      'status',
      'transcript',
    ]);
    assert.deepEqual(
      talk.of('transcript').map((t) => [t.turn_id, t.text]),
      [[1, HOURS]],
    );

    // The first spoken chunk is a clause; every chunk's audio arrives intact and in order.
    const segments = talk.of('audio_segment').filter((s) => s.turn_id === 1);
    assert.deepEqual(
      segments.map((s) => s.text),
      [
        'Sure, we are open from nine to five on weekdays,',
        'and from ten to two on Saturday.',
        'Anything else?',
      ],
    );
    const audio = talk.segmentAudio(1);
    for (const segment of segments)
      assert.ok(audio.get(segment.index)?.equals(Buffer.from(synthesizeTone(segment.text))));
    assert.equal(since(h, mark, 'transcription').length, 1, 'the utterance was transcribed once');
    assert.equal(since(h, mark, 'chat').length, 1);

    // Confirmed: the turn is in the history the next turn sends, and ids go on from it.
    await talk.next('status', (s) => s.state === 'listening', {
      from: talk.messages.indexOf(done),
    });
    heard = 'And on Sunday?';
    await talk.sendPcm(speech(600));
    talk.send({ type: 'commit' });
    const second = await talk.next('done', (d) => d.turn_id === 2);
    assert.equal(second.metrics.speculative, false);
    assert.equal(second.metrics.held_ms, undefined);
    const chat = since(h, mark, 'chat').at(-1)?.body as {
      messages: { role: string; content: string }[];
    };
    assert.deepEqual(
      chat.messages.slice(1).map((m) => `${m.role}: ${m.content}`),
      [`user: ${HOURS}`, `assistant: ${REPLY}`, 'user: And on Sunday?'],
    );
    const usage = await usageOf(h, id);
    assert.equal(usage.speculative_confirmed, 1);
    assert.equal(usage.speculative_discarded, 0);
    assert.equal(usage.turns, 2);
    talk.close();
  });

  test('pause then resume: the upstream request is aborted at once, nothing is sent, history and turn ids are untouched', async () => {
    heard = 'hang';
    const { id, key } = await newKey(h);
    const talk = await openTalk(h, key);
    const mark = h.upstream.requests.length;
    const from = talk.messages.length;
    await talk.sendPcm(speech(700));
    talk.send({ type: 'pause' });
    const chat = await h.upstream.waitForRequest('chat', (r) => since(h, mark, 'chat').includes(r));
    const resumedAt = performance.now();
    talk.send({ type: 'resume' });
    await h.upstream.waitForRequest('chat', (r) => r === chat && r.aborted, 2_000);
    const abortMs = (chat.endedAt ?? Infinity) - resumedAt;
    assert.ok(abortMs < 200, `the chat request was aborted ${abortMs} ms after resume`);
    await sleep(50);
    assert.deepEqual(typesFrom(talk, from), ['tentative_transcript']);
    const [tentative] = talk.of('tentative_transcript');
    assert.ok(tentative && !('pause_id' in tentative), 'a pause without an id gets none back');
    const charged = await usageOf(h, id);
    assert.ok(charged.prompt_tokens > 0, 'the discarded request stays charged');
    assert.equal(charged.speculative_discarded, 1);
    assert.equal(charged.turns, 0);

    // The visitor talks on; the commit runs an ordinary turn over the whole utterance.
    heard = HOURS;
    await talk.sendPcm(speech(500));
    talk.send({ type: 'commit' });
    const done = await talk.next('done', undefined, { from });
    assert.equal(done.turn_id, 1, 'a discarded speculation takes no turn id');
    assert.equal(done.metrics.speculative, false);
    const stt = since(h, mark, 'transcription');
    assert.equal(stt.length, 2);
    const wav = (stt[1]?.body as { wav: { durationMs: number } }).wav;
    assert.ok(Math.abs(wav.durationMs - 1_200) < 1, `transcribed ${wav.durationMs} ms`);
    const last = since(h, mark, 'chat').at(-1)?.body as { messages: { role: string }[] };
    assert.deepEqual(
      last.messages.filter((m) => m.role !== 'system'),
      [{ role: 'user', content: HOURS }],
      'the speculative turn left no trace in the history',
    );
    assert.deepEqual(
      talk.of('transcript').map((t) => t.turn_id),
      [1],
    );
    talk.close();
  });

  test('a finished speculation discarded by resume: its provider requests stay charged, no turn is counted', async () => {
    heard = HOURS;
    const { id, key } = await newKey(h);
    const talk = await openTalk(h, key);
    const mark = h.upstream.requests.length;
    await talk.sendPcm(speech(600));
    talk.send({ type: 'pause' });
    await h.upstream.waitForRequest(
      'speech',
      (r) =>
        since(h, mark, 'speech').includes(r) &&
        (r.body as { input: string }).input === 'Anything else?' &&
        r.endedAt !== undefined,
    );
    await sleep(50);
    talk.send({ type: 'resume' });
    await sleep(50);
    const usage = await usageOf(h, id);
    const spoken = since(h, mark, 'speech').reduce(
      (n, r) => n + (r.body as { input: string }).input.length,
      0,
    );
    assert.equal(usage.tts_chars, spoken);
    assert.ok(usage.prompt_tokens + usage.completion_tokens > 0);
    assert.equal(usage.speculative_discarded, 1);
    assert.equal(usage.turns, 0);
    assert.equal(talk.audio.length, 0);
    talk.close();
  });

  test('commit after more audio since the pause: a normal turn over all of it', async () => {
    heard = HOURS;
    const { id, key } = await newKey(h);
    const talk = await openTalk(h, key);
    const mark = h.upstream.requests.length;
    const from = talk.messages.length;
    await talk.sendPcm(speech(600));
    talk.send({ type: 'pause' });
    await talk.next('tentative_transcript', undefined, { from });
    await talk.sendPcm(speech(400));
    talk.send({ type: 'commit' });
    const done = await talk.next('done', undefined, { from });
    assert.equal(done.turn_id, 1);
    assert.equal(done.metrics.speculative, false);
    const stt = since(h, mark, 'transcription');
    assert.equal(stt.length, 2);
    assert.ok(
      Math.abs((stt[1]?.body as { wav: { durationMs: number } }).wav.durationMs - 1_000) < 1,
    );
    assert.equal(talk.of('transcript').length, 1, 'one transcript: the normal turn');
    assert.equal((await usageOf(h, id)).speculative_discarded, 1);
    talk.close();
  });

  test('a tool call during speculation waits for commit; after resume it never runs', async () => {
    heard = 'book it';
    const { key } = await newKey(h);
    const talk = await openTalk(h, key);

    // Discarded: the model asked for the tool, the visitor spoke on.
    let mark = h.upstream.requests.length;
    await talk.sendPcm(speech(600));
    talk.send({ type: 'pause' });
    await h.upstream.waitForRequest(
      'chat',
      (r) => since(h, mark, 'chat').includes(r) && r.endedAt !== undefined,
    );
    await sleep(100);
    talk.send({ type: 'resume' });
    await sleep(100);
    assert.equal(toolRuns.length, 0, 'no tool ran for a discarded speculation');
    assert.equal(since(h, mark, 'chat').length, 1);

    // Confirmed: the tool runs only after commit.
    talk.send({ type: 'commit' });
    await talk.next('done');
    assert.equal(toolRuns.length, 1);
    await talk.next('status', (s) => s.state === 'listening', { from: talk.messages.length - 1 });
    const from = talk.messages.length;
    mark = h.upstream.requests.length;
    await talk.sendPcm(speech(600));
    talk.send({ type: 'pause' });
    await h.upstream.waitForRequest(
      'chat',
      (r) => since(h, mark, 'chat').includes(r) && r.endedAt !== undefined,
    );
    await sleep(150);
    assert.equal(toolRuns.length, 1, 'the tool waits for the commit');
    assert.deepEqual(typesFrom(talk, from), ['tentative_transcript']);
    const committedAt = performance.now();
    talk.send({ type: 'commit' });
    const done = await talk.next('done', undefined, { from });
    assert.equal(toolRuns.length, 2);
    assert.ok((toolRuns[1] ?? 0) >= committedAt);
    assert.equal(done.text, BOOKED);
    assert.equal(done.metrics.speculative, true);
    assert.ok((done.metrics.held_ms ?? 0) >= 150, `held_ms ${done.metrics.held_ms}`);
    assert.deepEqual(
      talk.messages
        .slice(from)
        .filter((m) => m.type === 'tool')
        .map((m) => [m.turn_id, m.state]),
      [
        [done.turn_id, 'started'],
        [done.turn_id, 'done'],
      ],
    );
    talk.close();
  });

  test('bounds: too little audio, a second pause, the per-minute budget and a bot without speculation are ignored', async () => {
    heard = HOURS;
    const { id, key } = await newKey(h, { speculativeTurnsPerMinute: 1 });
    const talk = await openTalk(h, key);
    let mark = h.upstream.requests.length;
    await talk.sendPcm(speech(200));
    talk.send({ type: 'pause' });
    await sleep(150);
    assert.equal(
      since(h, mark, 'transcription').length,
      0,
      'under 300 ms of audio: no speculation',
    );

    await talk.sendPcm(speech(400));
    talk.send({ type: 'pause' });
    talk.send({ type: 'pause' });
    await talk.next('tentative_transcript');
    await sleep(100);
    assert.equal(since(h, mark, 'transcription').length, 1, 'the second pause was ignored');
    assert.equal(talk.of('tentative_transcript').length, 1);
    talk.send({ type: 'resume' });
    talk.send({ type: 'resume' }); // harmless
    await talk.sendPcm(speech(300));
    mark = h.upstream.requests.length;
    talk.send({ type: 'pause' });
    await sleep(150);
    assert.equal(since(h, mark, 'transcription').length, 0, 'over speculativeTurnsPerMinute');
    talk.send({ type: 'commit' });
    const done = await talk.next('done');
    assert.equal(done.metrics.speculative, false);
    assert.equal(talk.of('error').length, 0, 'ignored pauses are not errors');
    assert.equal((await usageOf(h, id)).speculative_discarded, 1);
    talk.close();

    const plain = await openTalk(h, (await newKey(h)).key, { bot: 'plain' });
    mark = h.upstream.requests.length;
    await plain.sendPcm(speech(600));
    plain.send({ type: 'pause' });
    await sleep(150);
    assert.equal(since(h, mark, 'transcription').length, 0);
    assert.equal(plain.of('error').length, 0);
    plain.close();
  });

  test('/metrics counts speculative turns by outcome', async () => {
    heard = HOURS;
    const confirmed = await speculativeCount(h, 'confirmed');
    const discarded = await speculativeCount(h, 'discarded');
    const talk = await openTalk(h, (await newKey(h)).key);
    await talk.sendPcm(speech(500));
    talk.send({ type: 'pause' });
    await talk.next('tentative_transcript');
    talk.send({ type: 'resume' });
    await talk.sendPcm(speech(100));
    talk.send({ type: 'pause' });
    await talk.next('tentative_transcript', (t) => t !== talk.of('tentative_transcript')[0]);
    talk.send({ type: 'commit' });
    await talk.next('done');
    assert.equal(await speculativeCount(h, 'confirmed'), confirmed + 1);
    assert.equal(await speculativeCount(h, 'discarded'), discarded + 1);
    talk.close();
  });

  test('an old client that never pauses gets the 1.0 behaviour', async () => {
    heard = HOURS;
    const talk = await openTalk(h, (await newKey(h)).key);
    await talk.sendPcm(speech(700));
    talk.send({ type: 'commit' });
    const done = await talk.next('done');
    assert.equal(done.turn_id, 1);
    assert.equal(done.text, REPLY);
    assert.equal(done.metrics.speculative, false);
    assert.equal(done.metrics.held_ms, undefined);
    assert.equal(talk.of('tentative_transcript').length, 0);
    talk.close();
  });
});

describe('the hold is bounded like a slow client', () => {
  const PCM_BYTES = 16 * 1024 * 1024;
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: {
        transcribe: () => 'Tell me a long story.',
        chat: () => ({ content: 'Once upon a time.' }),
        speech: () => ({ pcm: new Uint8Array(PCM_BYTES), chunkBytes: 64 * 1024 }),
      },
      relay: { limits: { maxBufferedBytes: 64 * 1024 } },
    });
  });
  after(() => h.close());

  test('past maxBufferedBytes the speculative turn stops pulling speech; after commit it all arrives', async () => {
    const talk = await openTalk(h, h.key);
    await talk.sendPcm(speech(600));
    talk.send({ type: 'pause' });
    const tts = await h.upstream.waitForRequest('speech');
    await sleep(500);
    assert.equal(tts.endedAt, undefined, 'the speech response is not read to its end while held');
    assert.equal(talk.audio.length, 0);
    talk.send({ type: 'commit' });
    const done = await talk.next('done', undefined, { timeoutMs: 30_000 });
    assert.equal(done.metrics.speculative, true);
    assert.equal(talk.audioBytes(done.turn_id), PCM_BYTES);
    assert.ok(tts.endedAt !== undefined && !tts.aborted);
    talk.close();
  });
});
