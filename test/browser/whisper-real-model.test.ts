/**
 * A real Whisper checkpoint in the real worker, in Chromium: transcribes the hours.wav fixture
 * ("Hi there. What are your opening hours on Saturday?"). Nothing is downloaded from a hub, so
 * this runs only when a self-hosted copy is on disk:
 *
 *   VOICEBOT_WHISPER_MODEL_DIR=/path/to/models node scripts/test.mjs whisper-real-model
 *
 * where the folder holds `onnx-community/whisper-tiny.en/` (config.json, tokenizer files and
 * `onnx/*.onnx`), or is that model folder itself. VOICEBOT_WHISPER_MODEL picks another model id,
 * VOICEBOT_WHISPER_DTYPE the precision (default: transformers.js' choice, `q8` on WebAssembly).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parseWav } from '@voice-bot/fake-provider';
import { launchChromium, serveStatic } from '../support/browser.js';
import { FIXTURES } from '../support/relay.js';
import { SDK_DIST } from '../support/page-client.js';

const dir = process.env['VOICEBOT_WHISPER_MODEL_DIR'];
const model = process.env['VOICEBOT_WHISPER_MODEL'] ?? 'onnx-community/whisper-tiny.en';
const dtype = process.env['VOICEBOT_WHISPER_DTYPE'];

/** Where the model is served from: the folder is either the model base or the model itself. */
function modelMount(): { mount: Record<string, string> } | { skip: string } {
  if (!dir)
    return {
      skip: `set VOICEBOT_WHISPER_MODEL_DIR to a folder holding ${model}/ to run a real Whisper model`,
    };
  const base = resolve(dir);
  if (existsSync(join(base, model, 'config.json'))) return { mount: { '/sdk/models/': base } };
  if (existsSync(join(base, 'config.json'))) return { mount: { [`/sdk/models/${model}/`]: base } };
  return {
    skip: `VOICEBOT_WHISPER_MODEL_DIR=${dir} holds neither ${model}/config.json nor config.json`,
  };
}

const found = modelMount();

test(
  `a real Whisper model (${model}) transcribes hours.wav`,
  { skip: 'skip' in found ? found.skip : false, timeout: 300_000 },
  async () => {
    if ('skip' in found) return;
    const server = await serveStatic(
      { ...found.mount, '/sdk/': SDK_DIST },
      { pages: { '/': '<!doctype html><title>site</title>' } },
    );
    const browser = await launchChromium();
    try {
      const { samples, sampleRate } = parseWav(await readFile(join(FIXTURES, '16k/hours.wav')));
      assert.equal(sampleRate, 16_000);
      const page = await browser.newPage();
      page.on('pageerror', (error) => console.error('page error:', error));
      await page.goto(server.url);
      const result = await page.evaluate(
        async (sdkUrl, options, pcm) => {
          const sdk = await import(sdkUrl);
          const stt = new sdk.BrowserStt({
            assetBaseUrl: new URL('./', sdkUrl).href,
            loadTimeoutMs: 240_000,
            ...options,
          });
          const { loadMs, device } = (await stt.load()) as { loadMs: number; device: string };
          const audio = sdk.pcm16ToFloat32([Int16Array.from(pcm)]) as Float32Array;
          const seconds = audio.length / 16_000; // before transcribe() hands the buffer to the worker
          const t0 = performance.now();
          const text = (await stt.transcribe(audio)) as string;
          const transcribeMs = Math.round(performance.now() - t0);
          stt.dispose();
          return { loadMs, device, text, transcribeMs, seconds };
        },
        `${server.url}/sdk/voice-bot-sdk.js`,
        { model, ...(dtype ? { dtype } : {}) },
        Array.from(samples),
      );
      console.log(
        `  ${model}${dtype ? ` (${dtype})` : ''} on ${result.device}: ready in ${result.loadMs} ms; ${result.seconds.toFixed(1)} s of speech in ${result.transcribeMs} ms: ${JSON.stringify(result.text)}`,
      );
      assert.match(result.text, /hours/i);
    } finally {
      await browser.close();
      await server.close();
    }
  },
);
