/**
 * Sizes of what a website visitor downloads: raw, gzip (level 9) and brotli (quality 11) of every
 * file under `packages/{widget,sdk}/dist/browser` (run `npm run build` first). The first download of
 * the script tag is the loader plus the static-import closure of the widget module; everything
 * reached only through `import()` or fetched at `start()` is listed separately.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { staticClosure } from '../test/support/static-imports.js';
import { REPO_ROOT } from './common.js';

export interface FileSize {
  file: string;
  raw: number;
  gzip: number;
  brotli: number;
  /** sizes of precompressed siblings shipped by the build (`file.br`, `file.gz`), if any */
  shippedBr?: number;
  shippedGz?: number;
}

export interface BundleReport {
  firstDownload: { files: FileSize[]; total: FileSize; budgetGzip: number };
  lazyChunks: FileSize[];
  worklets: FileSize[];
  vadAssets: FileSize[];
  sdkEsm: FileSize[];
}

/** Brotli at quality 11 takes ~half a minute for the 14 MB ORT wasm: results are cached by content hash. */
const CACHE_FILE = join(REPO_ROOT, 'test-output/.bench-brotli-cache.json');
let cache: Record<string, number> | undefined;
function brotliSize(bytes: Uint8Array, compute: boolean): number | undefined {
  cache ??= existsSync(CACHE_FILE)
    ? (JSON.parse(readFileSync(CACHE_FILE, 'utf8')) as Record<string, number>)
    : {};
  const key = createHash('sha1').update(bytes).digest('hex');
  const cached = cache[key];
  if (cached !== undefined) return cached;
  if (!compute) return undefined;
  const n = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength,
    },
  }).byteLength;
  cache[key] = n;
  try {
    mkdirSync(dirname(CACHE_FILE), { recursive: true });
    writeFileSync(CACHE_FILE, JSON.stringify(cache));
  } catch {
    // a cache only
  }
  return n;
}

/** `slowBrotli: false` skips brotli for files over 1 MB unless it is cached (quick mode). */
export function sizeOf(path: string, slowBrotli = true): FileSize {
  const bytes = readFileSync(path);
  const shipped = (ext: string) =>
    existsSync(path + ext)
      ? { [ext === '.br' ? 'shippedBr' : 'shippedGz']: statSync(path + ext).size }
      : {};
  return {
    ...shipped('.br'),
    ...shipped('.gz'),
    file: relative(REPO_ROOT, path),
    raw: bytes.byteLength,
    gzip: gzipSync(bytes, { level: 9 }).byteLength,
    brotli: brotliSize(bytes, slowBrotli || bytes.byteLength < 2 ** 20) ?? Number.NaN,
  };
}

function total(files: FileSize[], name: string): FileSize {
  return files.reduce(
    (t, f) => ({
      file: name,
      raw: t.raw + f.raw,
      gzip: t.gzip + f.gzip,
      brotli: t.brotli + f.brotli,
    }),
    { file: name, raw: 0, gzip: 0, brotli: 0 },
  );
}

function list(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isFile() && !/\.(br|gz)$/.test(name) && keep(name))
    .sort()
    .map((name) => join(dir, name));
}

const isJs = (name: string) => /\.(m?js)$/.test(name);

export function measureBundles(
  options: { budgetGzip?: number; slowBrotli?: boolean } = {},
): BundleReport {
  const budgetGzip = options.budgetGzip ?? 30 * 1024;
  const sizeOf_ = (f: string) => sizeOf(f, options.slowBrotli ?? true);
  const widget = join(REPO_ROOT, 'packages/widget/dist/browser');
  const sdk = join(REPO_ROOT, 'packages/sdk/dist/browser');
  const loader = join(widget, 'voice-bot.js');
  if (!existsSync(loader))
    throw new Error(`${relative(REPO_ROOT, loader)} is missing: run npm run build first`);
  const first = [loader, ...staticClosure(join(widget, 'voice-bot.esm.js'))];
  const firstFiles = first.map(sizeOf_);
  const firstSet = new Set(first);
  return {
    firstDownload: { files: firstFiles, total: total(firstFiles, 'first download'), budgetGzip },
    lazyChunks: list(join(widget, 'chunks'), isJs)
      .filter((f) => !firstSet.has(f))
      .map(sizeOf_),
    worklets: list(join(widget, 'worklets'), isJs).map(sizeOf_),
    vadAssets: list(join(widget, 'vad'), () => true).map(sizeOf_),
    sdkEsm: [join(sdk, 'voice-bot-sdk.js'), ...list(join(sdk, 'chunks'), isJs)]
      .filter(existsSync)
      .map(sizeOf_),
  };
}
