import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servedFake } from './served.fixture.js';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import OpenAI, { toFile } from 'openai';
import { parseWav } from './index.js';

const HOURS_WAV = fileURLToPath(
  new URL('../../../../shared/fixtures/audio/16k/hours.wav', import.meta.url),
);

// Transcription uses the default (honest) transcript.
const served = servedFake();
const fake = served.fake;

describe('transcriptions', () => {
  test('a real WAV upload reports its duration', async () => {
    const bytes = await readFile(HOURS_WAV);
    const info = parseWav(bytes);
    assert.equal(info.sampleRate, 16000);
    const expected = `I heard ${(info.durationMs / 1000).toFixed(1)} seconds of audio.`;
    assert.ok(info.durationMs > 5000 && info.durationMs < 7000);

    const result = await served.client().audio.transcriptions.create({
      file: await toFile(bytes, 'hours.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
      language: 'en',
    });
    assert.equal(result.text, expected);

    const recorded = await fake.waitForRequest(
      'transcription',
      (r) => (r.body as { fileName?: string }).fileName === 'hours.wav',
    );
    assert.deepEqual(recorded.body, {
      model: 'whisper-1',
      language: 'en',
      fileName: 'hours.wav',
      wav: {
        sampleRate: 16000,
        channels: 1,
        bitsPerSample: 16,
        dataBytes: info.dataBytes,
        durationMs: info.durationMs,
      },
    });
    assert.equal(info.dataBytes, bytes.byteLength - 44);

    const text = await served.client().audio.transcriptions.create({
      file: await toFile(bytes, 'hours.wav'),
      model: 'whisper-1',
      response_format: 'text',
    });
    assert.equal(typeof text, 'string');
    assert.equal(text.trim(), expected);
  });

  test('a malformed WAV is a 400 invalid_request_error', async () => {
    const error = await served
      .client()
      .audio.transcriptions.create({
        file: await toFile(new TextEncoder().encode('RIFF....WAVEnope'), 'bad.wav'),
        model: 'whisper-1',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /Invalid file format/);
  });
});
