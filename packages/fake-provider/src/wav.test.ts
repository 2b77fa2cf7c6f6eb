import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWav, pcm16ToWav } from './index.js';

test('pcm16ToWav writes a canonical 44-byte header that parseWav reads back', () => {
  const samples = Int16Array.from({ length: 600 }, (_, i) => ((i * 977) % 65536) - 32768);
  const pcm = new Uint8Array(samples.buffer);
  const wav = pcm16ToWav(pcm, 16_000, 2);
  assert.equal(wav.byteLength, 44 + pcm.byteLength);
  assert.equal(new TextDecoder().decode(wav.subarray(0, 4)), 'RIFF');
  assert.equal(new TextDecoder().decode(wav.subarray(36, 40)), 'data');
  const info = parseWav(wav);
  assert.deepEqual(
    {
      sampleRate: info.sampleRate,
      channels: info.channels,
      bitsPerSample: info.bitsPerSample,
      dataBytes: info.dataBytes,
    },
    { sampleRate: 16_000, channels: 2, bitsPerSample: 16, dataBytes: pcm.byteLength },
  );
  assert.equal(info.durationMs, (300 / 16_000) * 1000);
  assert.deepEqual(info.samples, samples);
});

test('parseWav refuses what is not a PCM WAV', () => {
  assert.throws(() => parseWav(new TextEncoder().encode('RIFF....WAVEnope')), /no fmt chunk/);
  assert.throws(() => parseWav(new Uint8Array(8)), /not a RIFF\/WAVE file/);
});
