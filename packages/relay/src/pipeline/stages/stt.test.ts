import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWav } from '@voice-bot/fake-provider';
import { transcriptionBody } from './stt.js';

test('transcriptionBody is multipart/form-data a standard parser reads: fields, then the WAV file', async () => {
  const pcm = new Uint8Array(6400).map((_, i) => i % 251);
  const { body, contentType } = transcriptionBody([pcm], { model: 'whisper-1', language: 'de' });
  const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  assert.equal(form.get('model'), 'whisper-1');
  assert.equal(form.get('language'), 'de');
  const file = form.get('file');
  assert.ok(file instanceof File);
  assert.equal(file.name, 'utterance.wav');
  assert.equal(file.type, 'audio/wav');
  const wav = parseWav(new Uint8Array(await file.arrayBuffer()));
  assert.equal(wav.sampleRate, 16_000);
  assert.equal(wav.channels, 1);
  assert.equal(wav.dataBytes, pcm.byteLength);
  assert.deepEqual(new Uint8Array(wav.samples.buffer), pcm);
});

test('transcriptionBody: the frames an utterance arrived in, joined in order', async () => {
  const pcm = new Uint8Array(9_602).map((_, i) => (i * 7) % 256);
  const frames = [pcm.subarray(0, 3200), pcm.subarray(3200, 3202), pcm.subarray(3202)];
  const { body, contentType } = transcriptionBody(frames, { model: 'whisper-1' });
  const file = (
    await new Response(body, { headers: { 'content-type': contentType } }).formData()
  ).get('file') as File;
  const wav = parseWav(new Uint8Array(await file.arrayBuffer()));
  assert.equal(wav.dataBytes, pcm.byteLength);
  assert.deepEqual(new Uint8Array(wav.samples.buffer), pcm);
});

test('transcriptionBody: a fresh boundary per body', () => {
  const a = transcriptionBody([new Uint8Array(2)], { model: 'm' });
  const b = transcriptionBody([new Uint8Array(2)], { model: 'm' });
  assert.notEqual(a.contentType, b.contentType);
  assert.match(a.contentType, /^multipart\/form-data; boundary=voicebot-[0-9a-f]{32}$/);
});
