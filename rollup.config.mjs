// The build after `tsc -b`, in order (rollup -c runs the configs one after another):
//
// 1. What the npm packages ship beside their tsc output, each runtime file once:
//    - packages/sdk/dist/audio/worklets/{capture,playback}-processor.js: the AudioWorklet modules,
//      each bundled self-contained (a bundler copies a `new URL()` asset as it is, under a new
//      name: a worklet importing ./resampler-core.js would break);
//    - packages/sdk/dist/audio/vad/: the Silero v5 model and the one onnxruntime-web binary it
//      runs (ort-wasm-simd-threaded.{wasm,mjs}); onnxruntime-web's wasm-only ESM build is vendored
//      beside the VAD module (dist/audio/vendor/), so the SDK does not depend on onnxruntime-web;
//    - packages/stt-whisper/dist/stt-worker.js (transformers.js bundled in) and stt/ (its wasm).
//    The modules reference these files with `new URL('./…', import.meta.url)`.
// 2. The browser bundles the relay and the tests serve, made from what tsc emitted:
//    - packages/sdk/dist/browser/voice-bot-sdk.js   the SDK with in-browser Whisper wired in (+ chunks/)
//    - packages/sdk/dist/browser/testing.js         `@voice-bot/sdk/testing` for the browser tests (imports the SDK bundle)
//    - packages/widget/dist/browser/voice-bot.js      the script-tag loader (IIFE, tiny)
//    - packages/widget/dist/browser/voice-bot.esm.js  the <voice-bot> element with the SDK (+ chunks/)
//    Each bundle's `new URL('./…', import.meta.url)` files are emitted beside it under the same
//    relative names (worklets/, vad/, stt-worker.js, stt/), so the self-hosted layout stays what it
//    was. The build fails when the script tag's first download exceeds its budget.
// 3. .br/.gz beside the browser bundles' files for the relay's static serving (not in npm tarballs).
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import minifyHtmlLiterals from '@lit-labs/rollup-plugin-minify-html-literals';
import { defaultShouldMinifyCSS } from '@lit-labs/rollup-plugin-minify-html-literals/lib/minify-html-literals.js';
import { precompress } from './scripts/precompress.mjs';

const ROOT = dirname(new URL(import.meta.url).pathname);
const WORKLETS_SRC = 'packages/sdk/src/audio/worklets';
const SDK_AUDIO = 'packages/sdk/dist/audio';
const STT_DIST = 'packages/stt-whisper/dist';
const WIDGET_OUT = 'packages/widget/dist/browser';
const SDK_OUT = 'packages/sdk/dist/browser';
const CONSOLE_OUT = 'packages/console/dist/browser';
/** First download of the script tag: loader + widget module, gzip. */
export const FIRST_DOWNLOAD_BUDGET = 30 * 1024;

const gzipSize = (bytes) => gzipSync(bytes, { level: 9 }).byteLength;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const minify = () =>
  terser({ ecma: 2020, module: true, compress: { passes: 3 }, format: { comments: false } });
/** Keeps third-party license headers (`/*! … *\/`) in minified bundles. */
const minifyKeepLicenses = () =>
  terser({ ecma: 2020, module: true, format: { comments: /^!|@license/ } });

/** Every file the browser-bundle configs wrote, so the last step can delete what a former build left. */
const written = new Set();
function track() {
  return {
    name: 'track-output',
    writeBundle(options, bundle) {
      const dir = options.dir ?? dirname(options.file);
      for (const fileName of Object.keys(bundle)) written.add(resolve(dir, fileName));
    },
  };
}

/**
 * `new URL('./file', import.meta.url)` in a module of this repository's dist/ → the file emitted
 * beside the bundle under the same relative name, the URL computed by Rollup from the chunk that
 * uses it (a lazy chunk in chunks/ gets `../vad/…`). What Vite and webpack do for the apps that
 * bundle the npm packages; @web/rollup-plugin-import-meta-assets does it for theirs.
 */
function importMetaAssets() {
  let emitted;
  const pattern = /new URL\(\s*(['"])(\.\/[\w@./-]+)\1\s*,\s*import\.meta\.url\s*\)/g;
  return {
    name: 'import-meta-assets',
    buildStart() {
      emitted = new Map();
    },
    async transform(code, id) {
      if (!code.includes('import.meta.url') || !id.startsWith(join(ROOT, 'packages'))) return null;
      const matches = [...code.matchAll(pattern)];
      if (matches.length === 0) return null;
      let out = '';
      let last = 0;
      for (const match of matches) {
        const rel = match[2];
        const file = resolve(dirname(id), rel);
        if (!existsSync(file))
          this.error(
            `${relative(ROOT, id)} references ${rel}, which the build did not produce (${relative(ROOT, file)})`,
          );
        const fileName = rel.slice(2);
        let ref = emitted.get(fileName);
        if (!ref) {
          ref = this.emitFile({ type: 'asset', fileName, source: await readFile(file) });
          emitted.set(fileName, ref);
        }
        out += `${code.slice(last, match.index)}new URL(import.meta.ROLLUP_FILE_URL_${ref})`;
        last = match.index + match[0].length;
      }
      return { code: out + code.slice(last), map: null };
    },
  };
}

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
        const gz = gzipSize(file.code);
        total += gz;
        console.log(`  ${WIDGET_OUT}/${file.name}: ${kb(raw)} raw, ${kb(gz)} gzip`);
      }
      console.log(
        `  first download (script tag): ${kb(total)} gzip in ${files.length} files (budget ${kb(FIRST_DOWNLOAD_BUDGET)})`,
      );
      if (total > FIRST_DOWNLOAD_BUDGET)
        this.error(
          `first download ${kb(total)} gzip exceeds the ${kb(FIRST_DOWNLOAD_BUDGET)} budget`,
        );
    },
  };
}

/** Deletes a bundle folder's chunks before it is rebuilt, so stale chunks are never served. */
function clean(dir) {
  return { name: 'clean', buildStart: () => rm(dir, { recursive: true, force: true }) };
}

/** A module that exists only in this config: `virtual(id, code)` as a Rollup input. */
function virtual(id, code) {
  return {
    name: 'virtual-entry',
    resolveId: (source) => (source === id ? `\0${id}` : null),
    load: (loaded) => (loaded === `\0${id}` ? code : null),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Files the packages ship.

/** One worklet, bundled self-contained into dist/audio/worklets/ (readable: not minified). */
function workletBuild(name, extraPlugins = []) {
  return {
    input: join(WORKLETS_SRC, `${name}.js`),
    output: { file: join(SDK_AUDIO, 'worklets', `${name}.js`), format: 'es', sourcemap: false },
    plugins: extraPlugins,
  };
}

/**
 * The VAD module's run-time files, beside it: onnxruntime-web's wasm-only ESM build (whose import
 * the module's tsc output is pointed at), the one binary and glue it runs, the model. Also the
 * resampler core for dist/audio/resampler.js (the worklets have their own copy inlined).
 */
function sdkRuntimeFiles() {
  const require = createRequire(join(ROOT, 'packages/sdk/package.json'));
  const ortDist = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  return {
    name: 'sdk-runtime-files',
    async writeBundle() {
      const vad = join(SDK_AUDIO, 'vad');
      const vendor = join(SDK_AUDIO, 'vendor');
      await Promise.all([mkdir(vad, { recursive: true }), mkdir(vendor, { recursive: true })]);
      await copyFile(
        require.resolve('@ricky0123/vad-web/dist/silero_vad_v5.onnx'),
        join(vad, 'silero_vad_v5.onnx'),
      );
      for (const file of ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'])
        await copyFile(join(ortDist, file), join(vad, file));
      // Two edits: no source map comment (the map and the sources it names are not shipped), and
      // its own URL taken as `import.meta.url` rather than `new URL('ort.wasm.min.mjs', import.meta.url)`
      // (the same URL, but webpack would emit a second copy of the file for it). It finds its
      // wasm files through the URLs the VAD module gives it.
      const ort = await readFile(join(ortDist, 'ort.wasm.min.mjs'), 'utf8');
      const selfUrl = /new (\w+)\("ort\.wasm\.min\.mjs",import\.meta\.url\)/g;
      if ((ort.match(selfUrl) ?? []).length !== 1)
        throw new Error(
          'onnxruntime-web changed ort.wasm.min.mjs: update the vendoring in rollup.config.mjs',
        );
      await writeFile(
        join(vendor, 'ort.wasm.min.mjs'),
        ort
          .replace(selfUrl, 'new $1(import.meta.url)')
          .replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '\n'),
      );
      for (const file of ['resampler-core.js', 'resampler-core.d.ts'])
        await copyFile(join(WORKLETS_SRC, file), join(SDK_AUDIO, 'worklets', file));
      // tsc's output imports 'onnxruntime-web/wasm' (for its types); the published module imports the vendored copy.
      const module = join(SDK_AUDIO, 'silero-vad.js');
      const code = await readFile(module, 'utf8');
      const pointed = code.replace(
        /from\s*(['"])onnxruntime-web\/wasm\1/,
        "from './vendor/ort.wasm.min.mjs'",
      );
      if (!pointed.includes("from './vendor/ort.wasm.min.mjs'"))
        throw new Error(
          `${module} does not import onnxruntime-web/wasm any more: update rollup.config.mjs`,
        );
      if (pointed !== code) await writeFile(module, pointed);
    },
  };
}

/**
 * In-browser Whisper's worker: transformers.js runs only in this module worker, bundled with it
 * into stt-worker.js (so @huggingface/transformers is a build-time dependency of the package),
 * and the onnxruntime-web build transformers.js picks (asyncify) in stt/ beside it.
 */
function whisperWorkerBuild() {
  return {
    input: join(STT_DIST, 'worker.js'),
    output: {
      file: join(STT_DIST, 'stt-worker.js'),
      format: 'es',
      inlineDynamicImports: true,
      sourcemap: false,
    },
    onwarn(warning, warn) {
      if (
        warning.code === 'EVAL' ||
        warning.code === 'CIRCULAR_DEPENDENCY' ||
        warning.code === 'THIS_IS_UNDEFINED'
      )
        return;
      warn(warning);
    },
    plugins: [
      nodeResolve({ browser: true }),
      minifyKeepLicenses(),
      {
        name: 'copy-whisper-wasm',
        async writeBundle() {
          const require = createRequire(join(ROOT, 'packages/stt-whisper/package.json'));
          const transformers = require.resolve('@huggingface/transformers'); // …/transformers/dist/*.cjs
          const ortRequire = createRequire(join(transformers, '..', '..', 'package.json'));
          const ortDist = join(ortRequire.resolve('onnxruntime-web'), '..'); // …/onnxruntime-web/dist/ort.*.js
          await mkdir(join(STT_DIST, 'stt'), { recursive: true });
          for (const file of [
            'ort-wasm-simd-threaded.asyncify.wasm',
            'ort-wasm-simd-threaded.asyncify.mjs',
          ])
            await copyFile(join(ortDist, file), join(STT_DIST, 'stt', file));
          const bytes = await readFile(join(STT_DIST, 'stt-worker.js'));
          console.log(
            `  ${STT_DIST}/stt-worker.js: ${kb(bytes.byteLength)} raw, ${kb(gzipSize(bytes))} gzip (+ stt/ wasm, lazy)`,
          );
        },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Browser bundles.

/**
 * The SDK's self-hosting bundle: the SDK, `BrowserStt` and in-browser Whisper's loader set, so
 * `stt: 'browser'` works without a bundler (tests, the demo's /sdk/, bench).
 */
const SDK_BUNDLE_ENTRY = `
export * from '@voice-bot/sdk';
export { BrowserStt, CACHE_NAME, createRecognizer } from '@voice-bot/stt-whisper';
import { setWhisperLoader } from '@voice-bot/sdk';
setWhisperLoader(() => import('@voice-bot/stt-whisper'));
`;

/** Lazy chunks named after what they hold (`stt-whisper-…` rather than the `dist` of its folder). */
const chunkFileNames = (chunk) =>
  chunk.facadeModuleId?.includes('/packages/stt-whisper/')
    ? 'chunks/stt-whisper-[hash].js'
    : 'chunks/[name]-[hash].js';

// Entries keep their own code (`allow-extension`): a lazy chunk that shares modules with the
// entry imports them from it, instead of the entry becoming a facade over a chunk in chunks/.
const bundles = [
  {
    input: 'voice-bot-sdk-entry',
    preserveEntrySignatures: 'allow-extension',
    output: {
      dir: SDK_OUT,
      format: 'es',
      entryFileNames: 'voice-bot-sdk.js',
      chunkFileNames,
      sourcemap: true,
    },
    plugins: [
      clean(join(SDK_OUT, 'chunks')),
      virtual('voice-bot-sdk-entry', SDK_BUNDLE_ENTRY),
      nodeResolve({ browser: true }),
      importMetaAssets(),
      minify(),
      track(),
    ],
  },
  // `@voice-bot/sdk/testing` for the browser tests: its RelayTransport is the SDK bundle's (one class).
  {
    input: 'packages/sdk/dist/testing.js',
    output: { file: join(SDK_OUT, 'testing.js'), format: 'es', sourcemap: true },
    plugins: [
      {
        name: 'sdk-from-bundle',
        resolveId: (source, importer) =>
          source === './transport.js' && importer?.endsWith(join('packages/sdk/dist/testing.js'))
            ? { id: './voice-bot-sdk.js', external: true }
            : null,
      },
      minify(),
      track(),
    ],
  },
  // The Silero VAD on its own (tests import it directly), with its vad/ files.
  {
    input: join(SDK_AUDIO, 'silero-vad.js'),
    output: { file: join(SDK_OUT, 'silero-vad.js'), format: 'es', sourcemap: true },
    plugins: [
      nodeResolve({ browser: true }),
      importMetaAssets(),
      minifyKeepLicenses(),
      track(),
      {
        name: 'report-vad',
        async writeBundle() {
          const bytes = await readFile(join(SDK_OUT, 'silero-vad.js'));
          console.log(
            `  ${SDK_OUT}/silero-vad.js: ${kb(bytes.byteLength)} raw, ${kb(gzipSize(bytes))} gzip (+ vad/ assets)`,
          );
        },
      },
    ],
  },
  {
    input: 'packages/widget/dist/loader.js',
    output: { file: join(WIDGET_OUT, 'voice-bot.js'), format: 'iife', sourcemap: false },
    plugins: [clean(join(WIDGET_OUT, 'chunks')), minify(), track()],
  },
  {
    input: 'packages/widget/dist/script-tag.js',
    preserveEntrySignatures: 'allow-extension',
    output: {
      dir: WIDGET_OUT,
      format: 'es',
      entryFileNames: 'voice-bot.esm.js',
      chunkFileNames,
      sourcemap: true,
    },
    plugins: [
      nodeResolve({ browser: true }),
      // The widget's css``/html`` text (terser leaves template literals as they are).
      minifyHtmlLiterals({
        filter: (id) => id.includes(`${join(ROOT, 'packages/widget/dist')}/`),
        failOnError: true,
        // A fragment of declarations (no rule of its own) is not a stylesheet LightningCSS parses.
        options: {
          // SVG children are self-closing (`<rect/><path/>`): without the slash the HTML parser
          // nests the path inside the rect, and it is not drawn.
          minifyOptions: { keepClosingSlash: true },
          shouldMinifyCSS: (template) =>
            defaultShouldMinifyCSS(template) && template.parts.some((p) => p.text.includes('{')),
        },
      }),
      importMetaAssets(),
      minify(),
      reportFirstDownload(),
      track(),
    ],
  },
];

// The admin console (served by the relay at /console/; never part of the widget's download):
// Lit and the screens in console.js, uPlot in a lazy chunk, the page's stylesheet beside them.
bundles.push({
  input: 'packages/console/dist/index.js',
  preserveEntrySignatures: 'allow-extension',
  output: {
    dir: CONSOLE_OUT,
    format: 'es',
    entryFileNames: 'console.js',
    chunkFileNames: 'chunks/[name]-[hash].js',
    sourcemap: true,
  },
  plugins: [
    clean(join(CONSOLE_OUT, 'chunks')),
    nodeResolve({ browser: true }),
    minifyHtmlLiterals({
      filter: (id) => id.includes(`${join(ROOT, 'packages/console/dist')}/`),
      failOnError: true,
      options: {
        shouldMinifyCSS: (template) =>
          defaultShouldMinifyCSS(template) && template.parts.some((p) => p.text.includes('{')),
      },
    }),
    minify(),
    track(),
    {
      name: 'console-page-files',
      async writeBundle(_options, bundle) {
        await copyFile('packages/console/src/console.css', join(CONSOLE_OUT, 'console.css'));
        written.add(resolve(CONSOLE_OUT, 'console.css'));
        let total = 0;
        for (const file of Object.values(bundle))
          if (file.type === 'chunk') total += gzipSize(file.code);
        const entry = await readFile(join(CONSOLE_OUT, 'console.js'));
        console.log(
          `  ${CONSOLE_OUT}/console.js: ${kb(entry.byteLength)} raw, ${kb(gzipSize(entry))} gzip (console pages only; ${kb(total)} gzip with its lazy chunks)`,
        );
      },
    },
  ],
});

// The relay's runtime build (what `@voice-bot/relay` and `voicebot-relay` load): its modules and
// its pure-ESM dependencies in one module graph, dist/bundle/{index,cli}.js with shared chunks
// beside them (the same folder depth as dist/cli/, which the CLI's demo paths count on). Hundreds
// of ESM module records (Kysely's query builders and dialects, valibot, jose) make every full GC
// of a busy relay slower, and the audio it moves triggers one about every second: see
// docs/benchmarks.md §8. Everything else (native, optional, CommonJS, Hono, which integrators
// mount the relay's app into) stays an import of the installed package.
const RELAY_OUT = 'packages/relay/dist/bundle';
const RELAY_INLINED = new Set(['kysely', 'valibot', 'jose', '@voice-bot/protocol']);
const packageOf = (id) =>
  id
    .split('/')
    .slice(0, id.startsWith('@') ? 2 : 1)
    .join('/');
bundles.push({
  input: { index: 'packages/relay/dist/index.js', cli: 'packages/relay/dist/cli/cli.js' },
  preserveEntrySignatures: 'strict',
  external: (id, _importer, isResolved) =>
    !isResolved && !id.startsWith('.') && !id.startsWith('/') && !RELAY_INLINED.has(packageOf(id)),
  output: { dir: RELAY_OUT, format: 'es', chunkFileNames: '[name]-[hash].js' },
  plugins: [clean(RELAY_OUT), nodeResolve({ exportConditions: ['node'], preferBuiltins: true })],
});

// ---------------------------------------------------------------------------------------------
// 3. After the last bundle: what a former build left in the bundle folders goes, then .br/.gz
// beside every file (the relay serves them; the packages' `files` leave them out).

async function* filesUnder(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else yield path;
  }
}

/** Deletes what no config wrote this time, except `models/` (where owners put in-browser Whisper models). */
async function pruneStale() {
  for (const dir of [SDK_OUT, WIDGET_OUT, CONSOLE_OUT]) {
    for await (const file of filesUnder(resolve(dir))) {
      if (relative(resolve(dir), file).split(/[\\/]/)[0] === 'models') continue;
      const base = file.replace(/\.(br|gz)$/, '');
      if (!written.has(base)) await rm(file, { force: true });
    }
  }
}

const finish = {
  name: 'prune-and-precompress',
  closeBundle: async () => (
    await pruneStale(),
    await precompress([SDK_OUT, WIDGET_OUT, CONSOLE_OUT])
  ),
};

export default [
  workletBuild('capture-processor'),
  workletBuild('playback-processor', [sdkRuntimeFiles()]),
  whisperWorkerBuild(),
  ...bundles,
].map((entry, index, all) =>
  index === all.length - 1 ? { ...entry, plugins: [...entry.plugins, finish] } : entry,
);
