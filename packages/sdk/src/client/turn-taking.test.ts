import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rulesEndOfTurnPolicy } from './end-of-turn.js';
import { TurnTaking, type TurnTakingSettings } from './turn-taking.js';

const frame = (id: number): Int16Array => Int16Array.of(id);

/** A controller whose hooks are logged: `send id`, `pause`, `resume`, `end`. */
function recorded(settings: Partial<TurnTakingSettings> = {}, speculative = true) {
  const log: string[] = [];
  const pauseIds: number[] = [];
  const turns = new TurnTaking(
    {
      pauseMs: 220,
      minSilenceMs: 300,
      maxSilenceMs: 1200,
      fallbackMs: 700,
      policy: rulesEndOfTurnPolicy(),
      language: () => 'en',
      ...settings,
    },
    {
      send: (f) => log.push(`send ${f[0]}`),
      pause: (id) => {
        log.push('pause');
        pauseIds.push(id);
      },
      resume: () => log.push('resume'),
      end: () => log.push('end'),
    },
  );
  turns.speculative = speculative;
  /** `ms` of silence after the last speech, in 20 ms frames from `from` on (each frame after the pause is held). */
  const silence = (from: number, to: number): void => {
    for (let ms = from; ms <= to; ms += 20) {
      turns.audio(frame(ms));
      turns.silenceAfterFrame(ms);
    }
  };
  return { turns, log, silence, pauseIds };
}

describe('TurnTaking', () => {
  it('a complete question: pause, its transcript, commit as soon as the silence reaches the short wait', () => {
    const { turns, log, silence } = recorded();
    turns.audio(frame(1));
    turns.pause(220);
    silence(240, 260);
    assert.deepEqual(log, ['send 1', 'pause'], 'frames after the pause are held');
    turns.tentative('What is the weather like in Paris today?');
    assert.equal(turns.neededMs(), 350);
    silence(280, 340);
    assert.deepEqual(log.slice(2), [], 'not before 350 ms');
    silence(360, 360);
    assert.deepEqual(log.slice(2), ['end']);
    assert.equal(turns.committed(), 360, 'the silence waited');
    assert.equal(turns.abandon(), false, 'no speculative turn left to drop');
    turns.audio(frame(2));
    assert.deepEqual(log.slice(3), ['send 2'], 'the held silence was dropped, not sent');
  });

  it('a transcript that arrives after the silence was already long enough commits on the next silent frame', () => {
    const { turns, log, silence } = recorded();
    turns.pause(220);
    silence(240, 500);
    assert.ok(!log.includes('end'), 'without a transcript the wait is the fallback (700)');
    turns.tentative('Can you book me a table for two?');
    assert.notEqual(log.at(-1), 'end', 'not in the frame the detector has not judged yet');
    turns.silenceAfterFrame(500);
    assert.notEqual(log.at(-1), 'end', 'a frame that did not add silence (speech maybe starting)');
    silence(520, 520);
    assert.equal(log.at(-1), 'end');

    const late = recorded();
    late.turns.pause(220);
    late.silence(240, 500);
    late.turns.tentative('Stop.');
    late.turns.resume();
    late.silence(20, 20);
    assert.ok(!late.log.includes('end'), 'the visitor went on: no commit');
  });

  it('an unfinished clause waits long; speech before that resumes the utterance with the held frames, in order', () => {
    const { turns, log, silence } = recorded();
    turns.pause(220);
    turns.tentative('I would like to book a table for Friday and');
    assert.equal(turns.neededMs(), 1200);
    silence(240, 1000);
    assert.ok(!log.includes('end'));
    turns.resume();
    assert.deepEqual(
      log,
      ['pause', 'resume', ...Array.from({ length: 39 }, (_, i) => `send ${240 + i * 20}`)],
      'resume first, then every held frame',
    );
    turns.tentative('What a stale transcript of the dropped speculation.');
    turns.pause(220);
    assert.equal(
      turns.neededMs(),
      700,
      'the stale transcript was ignored: no speculative turn ran',
    );
  });

  it('a late transcript of an earlier pause (sent before the relay saw the resume) is not taken for the next pause', () => {
    const { turns, log, silence, pauseIds } = recorded();
    turns.pause(220);
    turns.resume();
    turns.pause(220);
    assert.equal(new Set(pauseIds).size, 2, `each pause has its own id: ${pauseIds.join(',')}`);
    const [first, second] = pauseIds as [number, number];
    turns.tentative('Stop.', first);
    assert.equal(
      turns.neededMs(),
      700,
      'the first pause’s complete sentence does not shorten the wait',
    );
    silence(240, 400);
    assert.ok(!log.includes('end'));
    turns.tentative('Stop. Actually,', second);
    assert.equal(turns.neededMs(), 1200, 'its own transcript counts');
    turns.tentative('What time do you open?');
    assert.equal(
      turns.neededMs(),
      350,
      'a transcript without an id (an older relay) is the current one',
    );
  });

  it('no transcript: the fallback (today’s 700 ms); the clamp keeps any policy within [min, max]', () => {
    const { turns, log, silence } = recorded();
    turns.pause(220);
    silence(240, 680);
    assert.ok(!log.includes('end'));
    silence(700, 700);
    assert.equal(log.at(-1), 'end');

    const eager = recorded({ policy: { silenceNeededMs: () => 0 } });
    eager.turns.pause(220);
    assert.equal(eager.turns.neededMs(), 300, 'not below minSilenceMs');
    const slow = recorded({ policy: { silenceNeededMs: () => 10_000 } });
    slow.turns.pause(220);
    assert.equal(slow.turns.neededMs(), 1200, 'not beyond maxSilenceMs');
    const broken = recorded({ policy: { silenceNeededMs: () => Number.NaN } });
    broken.turns.pause(220);
    assert.equal(broken.turns.neededMs(), 700, 'a policy answering nonsense: the fallback');
  });

  it('the policy gets the transcript, the pause and the language', () => {
    const seen: unknown[] = [];
    const { turns } = recorded({
      language: () => 'de-DE',
      policy: {
        silenceNeededMs: (input) => {
          seen.push(input);
          return 500;
        },
      },
    });
    turns.pause(220);
    turns.tentative('Ich hätte gern einen Tisch und');
    turns.silenceAfterFrame(240);
    assert.deepEqual(seen.at(-1), {
      transcript: 'Ich hätte gern einen Tisch und',
      pauseMs: 220,
      language: 'de-DE',
    });
  });

  it('without speculation (an older relay, browser STT): no pause is sent, nothing is held, the turn ends at the fallback', () => {
    const { turns, log, silence } = recorded({}, false);
    turns.pause(220);
    silence(240, 680);
    assert.ok(
      log.every((entry) => entry.startsWith('send')),
      log.join(','),
    );
    turns.tentative('What time is it?');
    silence(700, 700);
    assert.equal(log.at(-1), 'end');
    assert.equal(turns.abandon(), false, 'no speculative turn ran');
  });

  it('one speculative turn at a time: a second pause before a resume sends nothing', () => {
    const { turns, log } = recorded();
    turns.pause(220);
    turns.pause(240);
    assert.deepEqual(log, ['pause']);
  });

  it('abandoning the utterance says whether a speculative turn must be dropped', () => {
    const { turns } = recorded();
    assert.equal(turns.abandon(), false);
    turns.pause(220);
    assert.equal(turns.abandon(), true);
    assert.equal(turns.abandon(), false, 'dropped once');
  });

  it('holds at most the longest silence of frames', () => {
    const { turns, log } = recorded({ maxSilenceMs: 400 });
    turns.pause(220);
    for (let i = 0; i < 100; i++) turns.audio(frame(i));
    turns.resume();
    const sent = log.filter((entry) => entry.startsWith('send'));
    assert.equal(sent.length, 25, '400 ms / 20 ms + 5');
    assert.equal(sent.at(-1), 'send 99', 'the newest are kept');
  });

  it('refuses settings that are not durations, and a minimum over the maximum', () => {
    assert.throws(() => recorded({ pauseMs: -1 }), RangeError);
    assert.throws(() => recorded({ maxSilenceMs: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => recorded({ minSilenceMs: 900, maxSilenceMs: 800 }), RangeError);
  });
});
