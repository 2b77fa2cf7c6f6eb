import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VoiceBotError } from '../errors.js';
import type { SpeechRecognizer, SpeechRecognizerOptions, WhisperOptions } from '../stt.js';
import { BrowserSttSession, type UtteranceOutcome } from './browser-stt.js';

const FRAMES = [Int16Array.of(16384, -16384), Int16Array.of(0)];

/** A fake engine whose recognizer answers `transcribe` with `text` (or fails to load with `loadError`). */
function engine(options: { text?: string | Error; loadError?: Error } = {}) {
  const seen: { created: SpeechRecognizerOptions[]; audio: Float32Array[]; disposed: number } = {
    created: [],
    audio: [],
    disposed: 0,
  };
  const load = async () => ({
    createRecognizer(settings: SpeechRecognizerOptions): SpeechRecognizer {
      seen.created.push(settings);
      return {
        load: async () => {
          if (options.loadError) throw options.loadError;
          return { device: 'wasm' as const, loadMs: 5 };
        },
        transcribe: async (audio) => {
          seen.audio.push(audio);
          if (options.text instanceof Error) throw options.text;
          return options.text ?? 'hello';
        },
        dispose: () => void seen.disposed++,
      };
    },
  });
  return { load, seen };
}

/** A session with `whisper` options, recording what it tells its owner. */
function session(whisper: WhisperOptions, assetBaseUrl?: string) {
  const told: string[] = [];
  const errors: VoiceBotError[] = [];
  let restarts = 0;
  const stt = new BrowserSttSession(
    { whisper, assetBaseUrl },
    {
      progress: (p) => told.push(`progress ${p.percent}`),
      ready: (info) => told.push(`ready ${info.device}`),
      error: (error) => {
        errors.push(error);
        told.push(`error ${error.code}`);
      },
      restartWithRelay: async () => {
        restarts++;
        told.push('restart');
      },
      fellBack: (notice) => told.push(`fell back: ${notice.message}`),
    },
  );
  return { stt, told, errors, restarts: () => restarts };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('BrowserSttSession', () => {
  it('loads the engine with the settings and the asset base (not the SDK-only options), then transcribes utterances into words', async () => {
    const fake = engine({ text: ' What time do you open? ' });
    const { stt, told } = session(
      { load: fake.load, model: 'tiny', dtype: 'q8', fallbackToRelay: false },
      '/assets/',
    );
    stt.start();
    await settled();
    assert.deepEqual(told, ['ready wasm']);
    const created = fake.seen.created[0];
    assert.equal(created?.model, 'tiny');
    assert.equal(created?.dtype, 'q8');
    assert.equal(created?.assetBaseUrl, '/assets/');
    assert.ok(!('load' in (created ?? {})) && !('fallbackToRelay' in (created ?? {})));
    const sent: string[] = [];
    const outcome = await stt.recognize(FRAMES, async (words) => void sent.push(words));
    assert.deepEqual(outcome, { kind: 'sent' });
    assert.deepEqual(sent, ['What time do you open?']);
    assert.deepEqual(
      [...(fake.seen.audio[0] ?? [])],
      [0.5, -0.5, 0],
      '16-bit frames joined into one float buffer',
    );
  });

  it('frames: pushed during the utterance, taken once, cleared when it is dropped', () => {
    const { stt } = session({});
    stt.push(FRAMES[0] as Int16Array);
    stt.push(FRAMES[1] as Int16Array);
    assert.deepEqual(stt.take(), FRAMES);
    assert.deepEqual(stt.take(), []);
    stt.push(FRAMES[0] as Int16Array);
    stt.clear();
    assert.deepEqual(stt.take(), []);
  });

  it('an utterance of non-speech markers only ("[BLANK_AUDIO]", "(music)") is empty: no turn', async () => {
    const { stt } = session({ load: engine({ text: '[BLANK_AUDIO] (music)' }).load });
    stt.start();
    const outcome = await stt.recognize(FRAMES, () => assert.fail('nothing to send'));
    assert.deepEqual(outcome, { kind: 'empty' });
  });

  it('without a loader: stt_unavailable saying what to install, reported once (the utterance fails silently)', async () => {
    const { stt, errors } = session({});
    stt.start();
    await settled();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'stt_unavailable');
    assert.match(errors[0]?.message ?? '', /npm i @voice-bot\/stt-whisper/);
    assert.equal(stt.active, true, 'no fallback allowed: Whisper stays in charge');
    const outcome = await stt.recognize(FRAMES, async () => undefined);
    assert.deepEqual(outcome, { kind: 'failed' });
  });

  it('with fallbackToRelay, a model that cannot load hands over to the relay: a new session, the notice, and the utterance back as audio', async () => {
    const { stt, told, restarts } = session({
      load: engine({ loadError: new Error('404 encoder_model_quantized.onnx') }).load,
      fallbackToRelay: true,
    });
    stt.start();
    const outcome: UtteranceOutcome = await stt.recognize(FRAMES, () => assert.fail('no words'));
    assert.equal(restarts(), 1);
    assert.equal(told[0], 'restart');
    assert.match(
      told[1] ?? '',
      /^fell back: In-browser speech recognition is unavailable: Error: 404 .* Using the relay’s speech recognition instead\.$/,
    );
    assert.deepEqual(outcome, { kind: 'relay', frames: FRAMES });
    assert.equal(stt.active, false);
    stt.stop();
    assert.equal(
      stt.active,
      true,
      'stop() forgets the fallback: the next start() tries Whisper again',
    );
  });

  it('a failed inference, or words that cannot be sent, fail that utterance with the error to report', async () => {
    const broken = session({ load: engine({ text: new Error('out of memory') }).load });
    broken.stt.start();
    const failed = await broken.stt.recognize(FRAMES, async () => undefined);
    assert.equal(failed.kind, 'failed');
    assert.match((failed.kind === 'failed' && failed.error?.message) || '', /out of memory/);

    const offline = session({ load: engine().load });
    offline.stt.start();
    const unsent = await offline.stt.recognize(FRAMES, async () => {
      throw new VoiceBotError('not_connected', 'Not connected to the voice assistant.');
    });
    assert.equal(unsent.kind === 'failed' && unsent.error?.code, 'not_connected');
  });

  it('stop() disposes the recognizer; an utterance after it is not transcribed ("not running")', async () => {
    const fake = engine();
    const { stt } = session({ load: fake.load });
    stt.start();
    await settled();
    stt.stop();
    await settled();
    assert.equal(fake.seen.disposed, 1);
    assert.deepEqual(await stt.recognize(FRAMES, () => assert.fail('not running')), {
      kind: 'failed',
      error: new VoiceBotError('stt_unavailable', 'Speech recognition is not running.'),
    });
  });
});
