// Browser bundles, made from what `tsc -b` emitted into each package's dist/:
// - packages/sdk/dist/browser/voice-bot-sdk.js      the SDK as ESM (+ chunks/ for lazy parts)
// - packages/widget/dist/browser/voice-bot.js       the script-tag loader (IIFE, tiny)
// - packages/widget/dist/browser/voice-bot.esm.js   the <voice-bot> element with the SDK (+ chunks/)
// Beside each: worklets/ (AudioWorklet processors are served as files, never blob: URLs, so strict
// CSPs work). The build fails when the first download exceeds its budget.
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import { precompress } from './scripts/precompress.mjs';

const WORKLETS = 'packages/sdk/src/audio/worklets';
const WIDGET_OUT = 'packages/widget/dist/browser';
const SDK_OUT = 'packages/sdk/dist/browser';
/** First download of the script tag: loader + widget module, gzip. */
export const FIRST_DOWNLOAD_BUDGET = 30 * 1024;

/** Copies the worklet modules (plain JS, and their .d.ts for the tsc build) next to a bundle. */
function copyWorklets(...destinations) {
  return {
    name: 'copy-worklets',
    async writeBundle() {
      for (const destination of destinations) {
        await mkdir(destination, { recursive: true });
        for (const file of await readdir(WORKLETS)) {
          if (file.endsWith('.js') || file.endsWith('.d.ts')) await copyFile(join(WORKLETS, file), join(destination, file));
        }
      }
    },
  };
}

const gzipSize = async (file) => gzipSync(await readFile(file), { level: 9 }).byteLength;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

/**
 * Prints what a site owner's visitors download before the widget can render — the loader plus the
 * widget entry and every chunk it imports statically — and fails the build over budget.
 */
function reportFirstDownload() {
  return {
    name: 'report-first-download',
    async generateBundle(_options, bundle) {
      const entry = Object.values(bundle).find((c) => c.type === 'chunk' && c.isEntry);
      if (!entry) return;
      const files = [];
      const visit = (name) => {
        const chunk = bundle[name];
        if (!chunk || chunk.type !== 'chunk' || files.some((f) => f.name === name)) return;
        files.push({ name, code: chunk.code });
        for (const imported of chunk.imports) visit(imported);
      };
      visit(entry.fileName);
      const loader = await readFile(join(WIDGET_OUT, 'voice-bot.js')).catch(() => undefined);
      if (loader) files.unshift({ name: 'voice-bot.js', code: loader });
      let total = 0;
      for (const file of files) {
        const raw = Buffer.byteLength(file.code);
        const gz = gzipSync(file.code, { level: 9 }).byteLength;
        total += gz;
        console.log(`  ${WIDGET_OUT}/${file.name}: ${kb(raw)} raw, ${kb(gz)} gzip`);
      }
      console.log(`  first download (script tag): ${kb(total)} gzip in ${files.length} files (budget ${kb(FIRST_DOWNLOAD_BUDGET)})`);
      if (total > FIRST_DOWNLOAD_BUDGET) this.error(`first download ${kb(total)} gzip exceeds the ${kb(FIRST_DOWNLOAD_BUDGET)} budget`);
    },
  };
}

/** Deletes a bundle folder before it is rebuilt, so stale chunks are never served. */
function clean(dir) {
  return { name: 'clean', buildStart: () => rm(dir, { recursive: true, force: true }) };
}

const minify = () => terser({ ecma: 2020, module: true, format: { comments: false } });

export default [
  // Entries keep their own code (`allow-extension`): a lazy chunk that shares modules with the
  // entry imports them from it, instead of the entry becoming a facade over a chunk in chunks/ —
  // which would also move `import.meta.url`, from which the SDK finds its worklets.
  {
    input: 'packages/sdk/dist/index.js',
    preserveEntrySignatures: 'allow-extension',
    output: { dir: SDK_OUT, format: 'es', entryFileNames: 'voice-bot-sdk.js', chunkFileNames: 'chunks/[name]-[hash].js', sourcemap: true },
    plugins: [clean(join(SDK_OUT, 'chunks')), nodeResolve({ browser: true }), minify(), copyWorklets(join(SDK_OUT, 'worklets'), 'packages/sdk/dist/audio/worklets')],
  },
  {
    input: 'packages/widget/dist/loader.js',
    output: { file: join(WIDGET_OUT, 'voice-bot.js'), format: 'iife', sourcemap: false },
    plugins: [clean(join(WIDGET_OUT, 'chunks')), minify()],
  },
  {
    input: 'packages/widget/dist/index.js',
    preserveEntrySignatures: 'allow-extension',
    output: { dir: WIDGET_OUT, format: 'es', entryFileNames: 'voice-bot.esm.js', chunkFileNames: 'chunks/[name]-[hash].js', sourcemap: true },
    plugins: [nodeResolve({ browser: true }), minify(), copyWorklets(join(WIDGET_OUT, 'worklets')), reportFirstDownload()],
  },
  sileroVadBuild(),
  whisperWorkerBuild(),
].map((entry, index, all) =>
  // After the last bundle: .br/.gz beside every file, so the relay never serves a stale variant.
  index === all.length - 1 ? { ...entry, plugins: [...entry.plugins, { name: 'precompress', closeBundle: () => precompress() }] } : entry,
);

// ---------------------------------------------------------------------------------------------
// Silero VAD (lazy). The SDK reaches packages/sdk/src/audio/silero-vad.ts only through a dynamic
// import(), so the entries above already emit it (with onnxruntime-web) as chunks/silero-vad-*.js.
// This entry also builds it standalone as dist/browser/silero-vad.js (tests import it directly)
// and copies what it loads at run time into vad/ beside each bundle: the model from vad-web and
// onnxruntime-web's plain WebAssembly backend (no jsep/webgpu/jspi/asyncify variants).
// A function declaration (hoisted), as the array above is evaluated before this point.
function sileroVadBuild() {
  const assets = [
    '@ricky0123/vad-web/dist/silero_vad_v5.onnx',
    'onnxruntime-web/ort-wasm-simd-threaded.mjs',
    'onnxruntime-web/ort-wasm-simd-threaded.wasm',
  ];
  const destinations = ['packages/sdk/dist/browser/vad', 'packages/widget/dist/browser/vad'];
  return {
    input: 'packages/sdk/dist/audio/silero-vad.js',
    output: { file: 'packages/sdk/dist/browser/silero-vad.js', format: 'es', sourcemap: true },
    plugins: [
      nodeResolve({ browser: true }),
      terser({ ecma: 2020, module: true, format: { comments: false } }),
      {
        name: 'copy-vad-assets',
        async writeBundle() {
          // resolved as the SDK package sees them (no new top-level imports in this shared file)
          const { createRequire } = await import('node:module');
          const require = createRequire(new URL('./packages/sdk/package.json', import.meta.url));
          for (const dir of destinations) {
            await mkdir(dir, { recursive: true });
            for (const asset of assets) {
              const from = require.resolve(asset);
              await copyFile(from, join(dir, asset.slice(asset.lastIndexOf('/') + 1)));
            }
          }
          const chunk = 'packages/sdk/dist/browser/silero-vad.js';
          const bytes = await readFile(chunk);
          const gz = gzipSync(bytes, { level: 9 }).byteLength;
          console.log(`  ${chunk}: ${(bytes.byteLength / 1024).toFixed(1)} KB raw, ${(gz / 1024).toFixed(1)} KB gzip (+ vad/ assets)`);
        },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// In-browser Whisper (stt: 'browser'). transformers.js runs only in this module worker, built as
// stt-worker.js beside each bundle (started from that file URL; from another origin through a
// blob: module that imports it), never in the first download. onnxruntime-web's wasm (the
// asyncify build transformers.js picks; worker-assets.ts names it) goes to stt/.
function whisperWorkerBuild() {
  const destinations = [SDK_OUT, WIDGET_OUT];
  const ortFiles = ['ort-wasm-simd-threaded.asyncify.wasm', 'ort-wasm-simd-threaded.asyncify.mjs'];
  return {
    input: 'packages/sdk/dist/stt/worker.js',
    output: { file: join(SDK_OUT, 'stt-worker.js'), format: 'es', inlineDynamicImports: true, sourcemap: false },
    onwarn(warning, warn) {
      if (warning.code === 'EVAL' || warning.code === 'CIRCULAR_DEPENDENCY' || warning.code === 'THIS_IS_UNDEFINED') return;
      warn(warning);
    },
    plugins: [
      nodeResolve({ browser: true }),
      terser({ ecma: 2020, module: true, format: { comments: false } }),
      {
        name: 'copy-whisper-assets',
        async writeBundle() {
          const { createRequire } = await import('node:module');
          const require = createRequire(new URL('./packages/sdk/package.json', import.meta.url));
          const entry = require.resolve('@huggingface/transformers'); // …/transformers/dist/*.cjs
          const ortDir = join(entry, '..', '..');
          const ortRequire = createRequire(join(ortDir, 'package.json'));
          const ortDist = join(ortRequire.resolve('onnxruntime-web'), '..'); // …/onnxruntime-web/dist/ort.*.js
          for (const dir of destinations) {
            await mkdir(join(dir, 'stt'), { recursive: true });
            if (dir !== SDK_OUT) await copyFile(join(SDK_OUT, 'stt-worker.js'), join(dir, 'stt-worker.js'));
            for (const file of ortFiles) await copyFile(join(ortDist, file), join(dir, 'stt', file));
          }
          const bytes = await readFile(join(SDK_OUT, 'stt-worker.js'));
          const gz = gzipSync(bytes, { level: 9 }).byteLength;
          console.log(`  ${SDK_OUT}/stt-worker.js: ${(bytes.byteLength / 1024).toFixed(1)} KB raw, ${(gz / 1024).toFixed(1)} KB gzip (+ stt/ wasm, lazy)`);
        },
      },
    ],
  };
}
