import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, test } from 'node:test';
import { CLOSE_CODES, ERROR_CODES } from '@voice-bot/protocol';
import {
  createFakeUpstream,
  mulberry32,
  type FakeResult,
  type FakeUpstreamOptions,
  type SpeechScript,
} from '@voice-bot/fake-provider';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  lastUser,
  openStartedTalk,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

const KNOWN_CODES = new Set<string>(ERROR_CODES);

function forceGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

async function rawTalk(h: RelayHarness): Promise<TalkClient> {
  const s = await createSession(h.url, { key: h.key, origin: ORIGIN });
  assert.equal(s.status, 201, JSON.stringify(s.body));
  const talk = await connectTalk(s.body.ws_url as string, s.body.token, ORIGIN);
  assert.ok(talk instanceof TalkClient);
  return talk;
}

/**
 * One fuzzing socket. Every frame is chosen so that the relay's answer is predictable: most must
 * be answered by exactly one (non-fatal, typed, turn-less) error; the rest are valid and answered
 * otherwise (pong, a turn) or silently buffered (even-length audio).
 */
async function fuzzSocket(
  h: RelayHarness,
  seed: number,
  frames: number,
): Promise<{ sent: number; errors: number; reconnects: number }> {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const junkChars = 'abc xyz 0123456789 "\\:,[]-+.eE\u00e9\u4e2d\ud83d\ude00\u0000\n\t';
  const junk = (n: number) => Array.from({ length: n }, () => pick([...junkChars])).join('');
  let talk = await rawTalk(h);
  let sent = 0;
  /** Errors the current socket must have sent so far (turn-less: protocol errors). */
  let expectedErrors = 0;
  let errorsBefore = 0;
  let reconnects = 0;
  let audioBuffered = false;
  let marker = seed * 1_000_000;

  const settle = async () => {
    const t = ++marker;
    talk.send({ type: 'ping', t });
    await talk.next('pong', (p) => p.t === t, { timeoutMs: 15_000 });
  };
  const errorsWithoutTurn = () => talk.of('error').filter((e) => e.turn_id === undefined);

  const checkSocket = async () => {
    await settle();
    const errors = errorsWithoutTurn();
    for (const error of talk.of('error')) {
      assert.ok(KNOWN_CODES.has(error.code), `unknown code ${error.code}`);
      assert.equal(error.fatal, false, `${error.code} must not be fatal`);
    }
    assert.equal(
      errors.length,
      expectedErrors,
      `seed ${seed}: every bad frame gets exactly one error (${talk.summary().slice(-300)})`,
    );
  };

  // Before start: binary and any other message are refused.
  const beforeStart = () => {
    talk.sendRaw(new Uint8Array(Math.floor(random() * 64) * 2 + 1));
    talk.send({ type: 'commit' });
    talk.sendRaw('{"type":"interrupt","turn_id":1,"played_ms":0}');
    expectedErrors += 3;
    sent += 3;
  };
  beforeStart();
  talk.start({ input: 'audio', output: 'text' });
  sent++;

  for (let i = 0; i < frames; i++) {
    const roll = random();
    sent++;
    if (roll < 0.12) {
      talk.sendRaw(junk(1 + Math.floor(random() * 40))); // bad JSON (or JSON that is no object)
      expectedErrors++;
    } else if (roll < 0.24) {
      talk.sendRaw(
        pick([
          '{"type":42}',
          '{"type":null}',
          '{"type":"text","text":{}}',
          '{"type":"text","text":["a"]}',
          '{"type":"interrupt","turn_id":"x","played_ms":1}',
          '{"type":"interrupt","turn_id":1.5,"played_ms":-3}',
          '{"type":"start","protocol_version":7}',
          '{"type":"ping","t":"now"}',
          '{"type":"__proto__"}',
          '{"type":"constructor"}',
          '{"__proto__":{"type":"text"}}',
          '[{"type":"text","text":"hi"}]',
          '{"type":"text","text":"   "}',
          'true',
          '{"type":"TEXT","text":"hi"}',
        ]),
      );
      expectedErrors++;
    } else if (roll < 0.3) {
      talk.sendRaw(
        JSON.stringify({ type: 'text', text: 'z'.repeat(17_000 + Math.floor(random() * 20_000)) }),
      ); // > 16 KiB
      expectedErrors++;
    } else if (roll < 0.34) {
      talk.send({ type: 'text', text: 'q'.repeat(2_001 + Math.floor(random() * 5_000)) }); // text_too_long
      expectedErrors++;
    } else if (roll < 0.46) {
      talk.sendRaw(new Uint8Array(Math.floor(random() * 300) * 2 + 1)); // odd-length PCM
      expectedErrors++;
    } else if (roll < 0.62) {
      const bytes = new Uint8Array(Math.floor(random() * 320) * 2 + 2);
      for (let b = 0; b < bytes.length; b++) bytes[b] = Math.floor(random() * 256);
      talk.sendRaw(bytes); // valid audio: buffered, no answer
      audioBuffered = true;
    } else if (roll < 0.7) {
      talk.send({
        type: 'interrupt',
        turn_id: 1_000_000 + Math.floor(random() * 1e6),
        played_ms: random() * 1e6,
      }); // out of order
      expectedErrors++;
    } else if (roll < 0.76) {
      talk.send({ type: 'commit' });
      if (audioBuffered)
        audioBuffered = false; // starts a turn
      else expectedErrors++; // empty_utterance
    } else if (roll < 0.8) {
      talk.send({ type: 'start', protocol_version: '1.0.0', input: 'audio', output: 'text' }); // already_started
      expectedErrors++;
    } else if (roll < 0.83) {
      talk.send({ type: 'text', text: `fuzz ${i}` }); // a valid turn, interrupting the one running
    } else if (roll < 0.97) {
      talk.send({ type: 'ping', t: i });
    } else if (roll < 0.99) {
      talk.sendRaw(JSON.stringify({ type: 'ping', extra: junk(2_000) })); // unknown fields are ignored
    } else {
      // Interleaved stop/start: stop, then a new socket that first misbehaves before its start.
      await checkSocket();
      talk.send({ type: 'stop' });
      const closed = await talk.closed;
      assert.equal(closed.code, CLOSE_CODES.normal);
      talk = await rawTalk(h);
      reconnects++;
      errorsBefore += expectedErrors;
      expectedErrors = 0;
      audioBuffered = false;
      beforeStart();
      talk.start({ input: 'audio', output: 'text' });
      sent++;
    }
    // Bounded in-flight data: let the relay catch up now and then.
    if (i % 100 === 99) await checkSocket();
  }
  await checkSocket();
  assert.equal(talk.ws.readyState, talk.ws.OPEN, 'the fuzzed socket is still open');
  talk.close();
  await talk.closed;
  return { sent, errors: errorsBefore + expectedErrors, reconnects };
}

describe('fuzz: thousands of random and malformed frames against a live relay', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: { transcribe: () => 'fuzzy words', chat: () => ({ content: 'Still standing.' }) },
      // Rates are tested elsewhere; here every frame must reach the protocol checks.
      relay: {
        limits: {
          messagesPerSecond: 0,
          audioFramesPerSecond: 0,
          sessionsPerMinutePerIp: 0,
          sessionsPerMinutePerKey: 0,
        },
      },
    });
  });
  after(() => h.close());

  test('never crashes, answers every bad frame with one typed error, stays within memory, and a bystander keeps talking', async () => {
    const gc = forceGc();
    const heap = () => {
      gc?.();
      return process.memoryUsage().heapUsed;
    };
    // Warm up (JIT, first allocations) before the baseline.
    await fuzzSocket(h, 999, 100);
    const baseline = heap();

    const bystander = await openStartedTalk(h, { input: 'text', output: 'text' });
    let bystanderTurns = 0;
    let fuzzing = true;
    const bystanding = (async () => {
      const deadline = Date.now() + 45_000;
      while (fuzzing && Date.now() < deadline) {
        bystander.send({ type: 'text', text: `bystander ${bystanderTurns}` });
        const done = await bystander.next('done', (d) => d.turn_id === bystanderTurns + 1, {
          timeoutMs: 10_000,
        });
        assert.equal(done.text, 'Still standing.');
        assert.equal(done.interrupted, false);
        bystanderTurns++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const started = Date.now();
    const results = await Promise.all([1, 2, 3, 4].map((seed) => fuzzSocket(h, seed, 900)));
    fuzzing = false;
    await bystanding;
    const sent = results.reduce((n, r) => n + r.sent, 0);
    assert.ok(sent >= 3_600, `sent ${sent} frames`);
    assert.ok(Date.now() - started < 40_000, 'fuzzing stayed within its time budget');
    assert.ok(bystanderTurns >= 3, `the bystander completed ${bystanderTurns} turns meanwhile`);
    assert.equal(bystander.of('error').length, 0);
    bystander.close();
    await bystander.closed;

    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    const growth = heap() - baseline;
    // Generous: with gc, leaks of even a fraction of the ~60 MB pushed through would show.
    assert.ok(
      growth < (gc ? 40 : 120) * 1024 * 1024,
      `heap grew by ${Math.round(growth / 1024 / 1024)} MB`,
    );
  });

  test('random binary garbage, including before start, never takes the relay down', async () => {
    const random = mulberry32(42);
    for (let round = 0; round < 5; round++) {
      const talk = await rawTalk(h);
      for (let i = 0; i < 200; i++) {
        const bytes = new Uint8Array(Math.floor(random() * 2_048));
        for (let b = 0; b < bytes.length; b++) bytes[b] = Math.floor(random() * 256);
        talk.sendRaw(bytes);
      }
      talk.send({ type: 'ping', t: round });
      await talk.next('pong', (p) => p.t === round);
      assert.equal(talk.of('error').length, 200, 'each frame before start gets not_started');
      assert.ok(talk.of('error').every((e) => e.code === 'not_started'));
      talk.close();
    }
  });
});

// ─────────────────────────── faults ───────────────────────────

const SAID = 'First sentence is spoken just fine. Second sentence breaks the voice.';

/** The scripted provider: what the visitor says picks the failure. */
function faults(): FakeUpstreamOptions {
  return {
    transcribe: (req) =>
      req.wav.dataBytes === 3_200
        ? { fail: 'http', status: 500 }
        : req.wav.dataBytes === 3_202
          ? { fail: 'http', status: 429, retryAfter: 1 }
          : 'spoken words',
    chat: (request) => {
      const said = lastUser(request);
      if (said === 'llm 500') return { fail: 'http', status: 500 };
      if (said === 'llm 429') return { fail: 'http', status: 429, retryAfter: 1 };
      if (said === 'llm hang') return { fail: 'hang' };
      if (said === 'llm reset') return { fail: 'cut', afterChunks: 4 };
      if (said === 'tts fails later') return { content: SAID };
      if (said === 'tts reset')
        return { content: 'This reply will be cut off in the middle of its audio stream.' };
      return { content: `You said ${said}.` };
    },
    speech: (req): FakeResult<SpeechScript> => {
      if (req.input.includes('breaks the voice')) return { fail: 'http', status: 500 };
      if (req.input.includes('cut off')) return { fail: 'cut', afterBytes: 9_000 };
      return {};
    },
  };
}

describe('faults: a failed turn ends with a typed error, the session continues, nothing said is lost', () => {
  let h: RelayHarness;
  let upstream: ReturnType<typeof createFakeUpstream>;
  let closeUpstream: () => Promise<void>;
  before(async () => {
    upstream = createFakeUpstream(faults());
    const served = await upstream.listen(0);
    closeUpstream = served.close;
    // A short provider timeout so `hang` turns into upstream_timeout quickly.
    const stage = {
      baseURL: served.url,
      apiKey: 'sk-upstream-secret',
      timeoutMs: 400,
      maxRetries: 0,
    };
    h = await startRelay({
      relay: {
        providers: {
          stt: { ...stage, model: 'whisper-1' },
          llm: { ...stage, model: 'gpt-4o-mini' },
          tts: { ...stage, model: 'gpt-4o-mini-tts', voice: 'alloy' },
        },
      },
    });
  });
  after(async () => {
    await h.close();
    await closeUpstream();
  });

  /** The next turn's chat request shows what the conversation history holds. */
  async function historyAfter(
    talk: TalkClient,
    probe: string,
  ): Promise<{ role: string; content: string }[]> {
    const mark = upstream.requests.length;
    talk.send({ type: 'text', text: probe });
    const done = await talk.next('done', (d) => d.text === `You said ${probe}.`);
    assert.equal(done.interrupted, false, 'the session continues');
    const chat = upstream.requests.slice(mark).find((r) => r.kind === 'chat');
    return ((chat?.body as { messages: { role: string; content: string }[] }).messages ?? []).slice(
      1,
    );
  }

  for (const [said, code] of [
    ['llm 500', 'upstream_llm'],
    ['llm 429', 'upstream_llm'],
    ['llm hang', 'upstream_timeout'],
  ] as const) {
    test(`${said} → ${code}`, async () => {
      const talk = await openStartedTalk(h, { input: 'text', output: 'audio' });
      talk.send({ type: 'text', text: said });
      const error = await talk.next('error');
      assert.equal(error.code, code);
      assert.equal(error.fatal, false);
      assert.equal(typeof error.turn_id, 'number');
      assert.doesNotMatch(error.message, /sk-|127\.0\.0\.1|http:\/\//, 'no provider details');
      const history = await historyAfter(talk, 'after');
      assert.deepEqual(
        history.slice(0, 1),
        [{ role: 'user', content: said }],
        'the visitor’s words are kept',
      );
      talk.close();
    });
  }

  test('STT 500 and STT 429 → upstream_stt; the session continues', async () => {
    const talk = await openStartedTalk(h, { input: 'audio', output: 'text' });
    for (const bytes of [3_200, 3_202]) {
      talk.sendRaw(new Uint8Array(bytes));
      talk.send({ type: 'commit' });
      const error = await talk.next('error', (e) => e.turn_id !== undefined, {
        from: talk.messages.length,
      });
      assert.equal(error.code, 'upstream_stt');
      assert.equal(error.fatal, false);
    }
    talk.sendRaw(new Uint8Array(6_400));
    talk.send({ type: 'commit' });
    assert.equal((await talk.next('done')).text, 'You said spoken words.');
    talk.close();
  });

  test('LLM connection reset mid-stream → upstream_llm; the partial reply is kept', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    talk.send({ type: 'text', text: 'llm reset' });
    const error = await talk.next('error');
    assert.equal(error.code, 'upstream_llm');
    const streamed = talk
      .of('text_delta')
      .filter((d) => d.turn_id === error.turn_id)
      .map((d) => d.delta)
      .join('')
      .trim();
    const history = await historyAfter(talk, 'next');
    assert.equal(history[0]?.content, 'llm reset');
    if (streamed) assert.equal(history[1]?.content, streamed, 'what was streamed stays in history');
    talk.close();
  });

  test('TTS failing after the text streamed → upstream_tts; the spoken sentence stays in history', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'audio' });
    talk.send({ type: 'text', text: 'tts fails later' });
    const error = await talk.next('error');
    assert.equal(error.code, 'upstream_tts');
    assert.equal(error.fatal, false);
    const segments = talk.of('audio_segment').filter((s) => s.turn_id === error.turn_id);
    assert.equal(segments[0]?.text, 'First sentence is spoken just fine.');
    assert.ok(talk.audioBytes(error.turn_id) > 0, 'the first sentence was spoken');
    const history = await historyAfter(talk, 'again');
    assert.equal(history[0]?.content, 'tts fails later');
    assert.equal(history[1]?.role, 'assistant');
    assert.ok(
      history[1]?.content.includes('First sentence is spoken just fine.'),
      `history: ${history[1]?.content}`,
    );
    talk.close();
  });

  test('TTS connection reset mid-audio → upstream_tts; the session continues', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'audio' });
    talk.send({ type: 'text', text: 'tts reset' });
    const error = await talk.next('error');
    assert.equal(error.code, 'upstream_tts');
    const history = await historyAfter(talk, 'fine');
    assert.equal(history[0]?.content, 'tts reset');
    assert.equal(history[1]?.role, 'assistant');
    talk.close();
  });
});
