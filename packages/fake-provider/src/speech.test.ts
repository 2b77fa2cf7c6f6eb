import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servedFake } from './served.fixture.js';
import OpenAI from 'openai';
import { createFakeUpstream, parseWav, synthesizeTone } from './index.js';

// The default speech script: the tone of the input.
const served = servedFake();

describe('speech', () => {
  const input = 'Hello there, this is the speech test.';

  test('pcm through the SDK: even length, non-silent, length matches the tone', async () => {
    const response = await served.client().audio.speech.create({
      model: 'tts-1',
      voice: 'alloy',
      input,
      response_format: 'pcm',
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(bytes.byteLength % 2, 0);
    assert.equal(bytes.byteLength, synthesizeTone(input).byteLength);
    assert.deepEqual(bytes, synthesizeTone(input));
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    assert.ok(samples.some((s) => Math.abs(s) > 1000));
    // ~60 ms per character at 24 kHz.
    assert.ok(Math.abs(samples.length / 24 - input.length * 60) < 5);
  });

  test('network chunks split samples (odd boundaries)', async () => {
    const res = await fetch(`${served.url()}/audio/speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input, response_format: 'pcm' }),
    });
    assert.equal(res.status, 200);
    assert.ok(res.body);
    const boundaries: number[] = [];
    let total = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      boundaries.push(total);
    }
    assert.equal(total % 2, 0);
    assert.ok(boundaries.length > 2);
    assert.ok(
      boundaries.some((b) => b % 2 === 1),
      `no odd boundary in ${boundaries.join(',')}`,
    );
  });

  test('wav is a header plus the same pcm; other formats are 400', async () => {
    const wav = new Uint8Array(
      await (
        await served.client().audio.speech.create({
          model: 'tts-1',
          voice: 'alloy',
          input: 'Hi',
          response_format: 'wav',
        })
      ).arrayBuffer(),
    );
    const info = parseWav(wav);
    assert.equal(info.sampleRate, 24000);
    assert.deepEqual(wav.subarray(44), synthesizeTone('Hi'));
    const error = await served
      .client()
      .audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hi', response_format: 'mp3' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof OpenAI.BadRequestError);
  });

  test('latency: ttfb and real-time pacing of speech', async () => {
    const paced = createFakeUpstream({ latency: { ttsTtfbMs: 40, ttsRealtime: true } });
    const pacedServer = await paced.listen();
    try {
      const started = performance.now();
      const res = await fetch(`${pacedServer.url}/audio/speech`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'tts-1',
          voice: 'alloy',
          input: 'Hi',
          response_format: 'pcm',
        }),
      });
      let first: number | undefined;
      let bytes = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        first ??= performance.now() - started;
        bytes += chunk.byteLength;
      }
      const elapsed = performance.now() - started;
      // 'Hi' → the 300 ms minimum → 14400 bytes in 3 chunks; the last one leaves ~200 ms after the first.
      assert.equal(bytes, 14400);
      assert.ok((first ?? 0) >= 35, `ttfb ${first}`);
      assert.ok(elapsed >= 40 + 190, `elapsed ${elapsed}`);
    } finally {
      await pacedServer.close();
    }
  });
});
