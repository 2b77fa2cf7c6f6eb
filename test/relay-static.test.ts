import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, startRelay, type RelayHarness } from './support/relay.js';

const WIDGET = join(REPO_ROOT, 'packages/widget/dist/browser');

describe(
  'the relay serves the widget bundle for other origins',
  { skip: !existsSync(join(WIDGET, 'voice-bot.js')) && 'run `npm run build` first' },
  () => {
    let h: RelayHarness;
    before(async () => {
      h = await startRelay({ relay: { staticDirs: [{ urlPath: '/widget/', dir: WIDGET }] } });
    });
    after(() => h.close());

    async function get(path: string, headers: Record<string, string> = {}) {
      const res = await fetch(`${h.url}${path}`, {
        headers: { origin: 'https://customer-site.test', ...headers },
      });
      await res.arrayBuffer();
      return res;
    }

    test('the loader and module are JavaScript, readable cross-origin, briefly cached', async () => {
      for (const path of [
        '/widget/voice-bot.js',
        '/widget/voice-bot.esm.js',
        '/widget/worklets/capture-processor.js',
      ]) {
        const res = await get(path);
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/, path);
        assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
        assert.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin', path);
        assert.equal(res.headers.get('cache-control'), 'public, max-age=300', path);
      }
    });

    test('the VAD runtime is application/wasm, served precompressed', async () => {
      const res = await get('/widget/vad/ort-wasm-simd-threaded.wasm', {
        'accept-encoding': 'br, gzip',
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/wasm');
      assert.equal(res.headers.get('content-encoding'), 'br');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=86400');
      const plain = await fetch(`${h.url}/widget/vad/silero_vad_v5.onnx`, {
        headers: { 'accept-encoding': 'identity' },
      });
      assert.equal(plain.headers.get('content-encoding'), null);
      assert.ok((await plain.arrayBuffer()).byteLength > 1_000_000);
    });

    test('hashed chunks are immutable', async () => {
      const { readdirSync } = await import('node:fs');
      const chunk = readdirSync(join(WIDGET, 'chunks')).find((f) => f.endsWith('.js'));
      assert.ok(chunk, 'the widget has lazy chunks');
      const res = await get(`/widget/chunks/${chunk}`);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    });

    test('paths cannot escape the folder', async () => {
      const res = await fetch(`${h.url}/widget/..%2f..%2fpackage.json`);
      assert.notEqual(res.status, 200);
    });
  },
);
