#!/usr/bin/env node
// Writes .br and .gz beside the browser bundles and VAD assets, so the relay serves them
// compressed without compressing on every request (the ONNX runtime wasm is 14 MB raw).
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const ROOTS = ['packages/widget/dist/browser', 'packages/sdk/dist/browser'];
const COMPRESSIBLE = /\.(js|mjs|wasm|onnx|css|html|json)$/;

async function* files(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (COMPRESSIBLE.test(entry.name)) yield path;
  }
}

async function isFresh(target, source) {
  const [t, s] = await Promise.all([stat(target).catch(() => undefined), stat(source)]);
  return t !== undefined && t.mtimeMs >= s.mtimeMs;
}

/** Compresses every bundle and asset that changed since it was last compressed. */
export async function precompress(roots = ROOTS) {
  for (const root of roots) {
    for await (const file of files(root)) {
      const info = await stat(file);
      if (info.size < 1024) {
        // too small to be worth it; make sure no stale variant is served instead
        await Promise.all([rm(`${file}.br`, { force: true }), rm(`${file}.gz`, { force: true })]);
        continue;
      }
      if ((await isFresh(`${file}.br`, file)) && (await isFresh(`${file}.gz`, file))) continue;
      const bytes = await readFile(file);
      const quality = bytes.byteLength > 1_000_000 ? 9 : 11;
      await writeFile(
        `${file}.br`,
        brotliCompressSync(bytes, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: quality,
            [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
          },
        }),
      );
      await writeFile(`${file}.gz`, gzipSync(bytes, { level: 9 }));
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await precompress();
