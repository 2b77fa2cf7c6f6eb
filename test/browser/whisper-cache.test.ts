/**
 * In-browser speech recognition keeps what it downloads: with the real transformers.js worker and the
 * tiny random-weight Whisper (test/fixtures/tiny-whisper), a second visit in the same browser
 * profile fetches no model file and no onnxruntime wasm. The test server sends every file with
 * `Cache-Control: no-store` and logs every request, so anything not requested again came from the
 * page's Cache API bucket, not from the HTTP cache.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchChromium,
  serveStatic,
  type Browser,
  type Page,
  type StaticServer,
} from '../support/browser.js';
import { SDK_DIST } from '../support/page-client.js';
import { loadAndTranscribe, MODELS } from '../support/stt-page.js';

const MODEL_FILES = [
  'config.json',
  'tokenizer.json',
  'onnx/encoder_model.onnx',
  'onnx/decoder_model_merged.onnx',
].map((file) => `/sdk/models/tiny-whisper/${file}`);
const WASM = '/sdk/stt/ort-wasm-simd-threaded.asyncify.wasm';
const isModelOrWasm = (path: string): boolean =>
  path.includes('/models/') || path.endsWith('.wasm');

let server: StaticServer;
let browser: Browser;

before(async () => {
  // The model in the default place: `models/` beside the bundle.
  server = await serveStatic(
    { '/sdk/models/': MODELS, '/sdk/': SDK_DIST },
    { pages: { '/': '<!doctype html><title>site</title>' } },
  );
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

async function visit(): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(server.url);
  return page;
}

const requestsSince = (mark: number): string[] => server.requests.slice(mark).map((r) => r.path);

test('a second visit downloads no model file and no wasm (Cache API); cache: false downloads again', async () => {
  const sdk = `${server.url}/sdk/voice-bot-sdk.js`;
  const first = await loadAndTranscribe(await visit(), sdk);
  const fetched = requestsSince(0).filter(isModelOrWasm);
  for (const file of [...MODEL_FILES, WASM])
    assert.ok(fetched.includes(file), `the first visit fetched ${file}`);
  for (const file of fetched.filter((path) => path.endsWith('.onnx') || path.endsWith('.wasm'))) {
    assert.equal(
      fetched.filter((path) => path === file).length,
      1,
      `${file} is downloaded once (not once more just to learn its size)`,
    );
  }
  const cached = await (
    await visit()
  ).evaluate(async () =>
    (await (await caches.open('voice-bot-stt')).keys()).map(
      (request) => new URL(request.url).pathname,
    ),
  );
  for (const file of [...MODEL_FILES, WASM])
    assert.ok(cached.includes(file), `${file} is in the voice-bot-stt cache: ${cached.join(', ')}`);

  const mark = server.requests.length;
  const second = await loadAndTranscribe(await visit(), sdk);
  const again = requestsSince(mark);
  assert.deepEqual(
    again.filter(isModelOrWasm),
    [],
    'the second visit downloads no model file and no wasm',
  );
  assert.ok(
    again.includes('/sdk/stt-worker.js'),
    'it started the worker again (this server sees the second visit)',
  );
  assert.equal(second.text, first.text, 'the cached model transcribes the same');

  const uncached = server.requests.length;
  await loadAndTranscribe(await visit(), sdk, { cache: false });
  const third = requestsSince(uncached);
  for (const file of [MODEL_FILES[2] ?? '', WASM])
    assert.ok(third.includes(file), `cache: false downloads ${file} again`);

  console.log(
    `  tiny whisper, one profile: first visit ready in ${first.loadMs} ms (${first.wallMs} ms incl. starting the worker), ` +
      `second visit ${second.loadMs} ms (${second.wallMs} ms); 1 s of audio transcribed in ${first.transcribeMs} / ${second.transcribeMs} ms`,
  );
});
