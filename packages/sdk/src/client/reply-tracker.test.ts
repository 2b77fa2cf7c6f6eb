import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heardText, type TurnMetrics } from '../protocol/index.js';
import { ReplyTracker, type ClientMetrics } from './reply-tracker.js';

const METRICS = { first_audio_ms: 300 } as unknown as TurnMetrics;
/** 24 kHz PCM16: bytes per ms of reply audio. */
const BYTES_PER_MS = 48;

interface Announced {
  turnId: number;
  text: string;
  interrupted: boolean;
  metrics: ClientMetrics;
}

/** A tracker with a clock the test sets, and the replies it announced. */
function tracker() {
  const announced: Announced[] = [];
  const clock = { now: 0 };
  const replies = new ReplyTracker(
    {
      announce: (turnId, text, interrupted, metrics) =>
        announced.push({ turnId, text, interrupted, metrics }),
    },
    () => clock.now,
  );
  const said = () => announced.map((a) => [a.turnId, a.text, a.interrupted]);
  return { replies, announced, clock, said };
}

/** The relay streams turn `turnId`'s reply: its text, then one audio segment per sentence, `ms` of audio each. */
function stream(replies: ReplyTracker, turnId: number, sentences: string[], ms: number): void {
  replies.transcript(turnId);
  for (const sentence of sentences) {
    replies.delta(turnId, sentence);
    replies.segment(turnId, sentence);
    assert.equal(replies.audio(ms * BYTES_PER_MS), turnId, 'the audio is played as this turn');
  }
}

describe('ReplyTracker', () => {
  it('a text reply: awaited, streamed, announced at done', () => {
    const { replies, said } = tracker();
    assert.equal(replies.status, 'idle');
    replies.awaitReply(0);
    assert.equal(replies.status, 'awaiting');
    assert.equal(replies.delta(1, 'Hello'), 'Hello');
    assert.equal(replies.delta(1, ' there.'), 'Hello there.', 'the text so far');
    assert.equal(replies.done(1, 'Hello there.', false, METRICS), true, 'announced now');
    assert.deepEqual(said(), [[1, 'Hello there.', false]]);
    assert.equal(replies.status, 'idle');
    assert.equal(replies.delta(2, 'Next'), 'Next', 'a new turn starts its own text');
  });

  it('a spoken reply counts as said once the speaker has played it, with the page-side latency', () => {
    const { replies, announced, clock, said } = tracker();
    clock.now = 1000;
    replies.awaitReply(1000);
    stream(replies, 1, ['Hi.'], 500);
    assert.equal(replies.status, 'awaiting');
    clock.now = 1800;
    replies.played(1, 100); // first audio heard at 1700
    assert.equal(replies.drained(1), false, 'drained before done: more audio may come');
    assert.equal(replies.done(1, 'Hi.', false, METRICS), false, 'still playing');
    assert.equal(replies.status, 'playing');
    assert.deepEqual(said(), []);
    assert.equal(replies.drained(2), false, 'another turn’s report');
    assert.equal(replies.drained(1), true);
    assert.deepEqual(said(), [[1, 'Hi.', false]]);
    assert.equal(announced[0]?.metrics.end_of_speech_to_first_audio_ms, 700);
    assert.equal(announced[0]?.metrics.turnId, 1);
    assert.equal(replies.status, 'idle');
  });

  it('interrupting a reply that is still playing: the rest is dropped, and what was heard is announced as interrupted', () => {
    const { replies, said } = tracker();
    replies.awaitReply(0);
    const sentences = [
      'Our opening hours are nine to five.',
      'On Saturday we open at ten and close at two.',
    ];
    stream(replies, 1, sentences, 2000);
    replies.done(1, sentences.join(' '), false, METRICS);
    const ticket = replies.startInterrupt();
    assert.deepEqual(ticket && { turnId: ticket.turnId }, { turnId: 1 });
    assert.equal(replies.startInterrupt(), undefined, 'once');
    assert.equal(replies.audio(4800), undefined, 'late audio of the turn is dropped');
    assert.equal(replies.delta(1, ' more'), undefined, 'and its text');
    assert.ok(ticket && replies.isCurrent(ticket));
    replies.finishInterrupt(ticket, 3000);
    const heard = heardText(
      sentences.map((text) => ({ text, bytes: 2000 * BYTES_PER_MS, complete: true })),
      3000,
      24_000,
    );
    assert.match(heard, /^Our opening hours are nine to five\. On Saturday .*…$/);
    assert.deepEqual(said(), [[1, heard, true]]);
    assert.equal(replies.status, 'idle');
  });

  it('interrupting while the reply is awaited: nothing is owed any more; a done for it is announced as interrupted', () => {
    const { replies, said } = tracker();
    replies.awaitReply(0);
    replies.transcript(1);
    const ticket = replies.startInterrupt();
    assert.ok(ticket);
    replies.finishInterrupt(ticket, Number.MAX_SAFE_INTEGER);
    assert.equal(replies.status, 'idle');
    assert.equal(replies.done(1, 'Partial', false, METRICS), true);
    assert.deepEqual(said(), [[1, 'Partial', true]]);
  });

  it('turn ids belong to one socket: after reset() the new turn 1 is not the interrupted one, and an old interruption cannot touch it', () => {
    const { replies, said } = tracker();
    replies.awaitReply(0);
    stream(replies, 1, ['Hello and welcome.'], 1000);
    const ticket = replies.startInterrupt();
    assert.ok(ticket);
    replies.reset();
    assert.equal(replies.isCurrent(ticket), false, 'the interruption started on the old socket');
    replies.awaitReply(0);
    assert.equal(
      replies.delta(1, 'You said hi.'),
      'You said hi.',
      'turn 1 of the new socket streams',
    );
    replies.segment(1, 'You said hi.');
    assert.equal(replies.audio(4800), 1, 'and plays');
    replies.done(1, 'You said hi.', false, METRICS);
    assert.equal(replies.drained(1), true);
    assert.deepEqual(said(), [[1, 'You said hi.', false]]);
  });

  it('reset() and stop() announce a finished reply that was still playing as said, whole', () => {
    for (const end of ['reset', 'stop'] as const) {
      const { replies, said } = tracker();
      replies.awaitReply(0);
      stream(replies, 1, ['One.', 'Two.'], 1000);
      replies.done(1, 'One. Two.', false, METRICS);
      assert.equal(replies.status, 'playing');
      replies[end]();
      assert.deepEqual(said(), [[1, 'One. Two.', false]], end);
      assert.equal(replies.status, 'idle');
      assert.equal(replies.playing, undefined);
    }
  });

  it('a dropped socket loses the awaited reply (with its turn id once known); nothing owed, nothing lost', () => {
    const { replies } = tracker();
    assert.equal(replies.abandon(), undefined);
    replies.awaitReply(0);
    assert.deepEqual(replies.abandon(), { turnId: undefined });
    replies.awaitReply(0);
    replies.transcript(3);
    assert.deepEqual(replies.abandon(), { turnId: 3 });
    assert.equal(replies.status, 'idle');
  });

  it('a relay error ends the awaited turn (its own, or any before the relay named one)', () => {
    const { replies } = tracker();
    replies.awaitReply(0);
    replies.failed(1);
    assert.equal(replies.status, 'idle', 'no turn named yet');
    replies.awaitReply(0);
    replies.transcript(2);
    replies.failed(1);
    assert.equal(replies.status, 'awaiting', 'an error of an older turn');
    replies.failed(2);
    assert.equal(replies.status, 'idle');
    replies.awaitReply(0);
    replies.cancel();
    assert.equal(replies.status, 'idle', 'cancel(): the turn could not be sent');
  });

  it('a spoken turn’s metrics: the silence waited before the commit, and the speaker’s underruns and buffer target', () => {
    const { replies, announced, clock } = tracker();
    clock.now = 1000;
    replies.awaitReply(1000, 350);
    stream(replies, 1, ['Hi.'], 500);
    clock.now = 1600;
    replies.played(1, 100); // first sample heard at 1500
    assert.equal(replies.done(1, 'Hi.', false, METRICS), false, 'still playing');
    assert.equal(replies.drained(1, { underruns: 2, targetMs: 150 }), true);
    const metrics = announced[0]?.metrics;
    assert.equal(metrics?.end_of_speech_to_first_audio_ms, 500);
    assert.equal(metrics?.end_of_turn_silence_ms, 350);
    assert.equal(metrics?.underruns, 2);
    assert.equal(metrics?.jitter_buffer_ms, 150);

    // a typed turn has no silence; an interrupted reply takes the figures of the stop
    replies.awaitReply(2000);
    stream(replies, 2, ['A long answer.'], 2000);
    clock.now = 2400;
    replies.played(2, 100);
    replies.done(2, 'A long answer.', false, METRICS);
    const ticket = replies.startInterrupt();
    assert.ok(ticket);
    replies.finishInterrupt(ticket, 300, { underruns: 0, targetMs: 150 });
    const cut = announced[1]?.metrics;
    assert.equal(cut?.end_of_turn_silence_ms, undefined);
    assert.equal(cut?.underruns, 0);
  });
});
