// Browser bundles, made from what `tsc -b` emitted into each package's dist/: what a browser
// loads directly: the SDK as one ESM file, and the AudioWorklet processors copied beside it
// (worklets must be served as files, never blob: URLs, so strict CSPs work).
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';

const WORKLETS = 'packages/sdk/src/audio/worklets';

/** Copies the worklet modules (plain JS) next to a bundle. */
function copyWorklets(destination) {
  return {
    name: 'copy-worklets',
    async writeBundle() {
      await mkdir(destination, { recursive: true });
      for (const file of await readdir(WORKLETS)) {
        if (file.endsWith('.js')) await copyFile(join(WORKLETS, file), join(destination, file));
      }
    },
  };
}

export default [
  {
    input: 'packages/sdk/dist/index.js',
    output: { dir: 'packages/sdk/dist/browser', format: 'es', entryFileNames: 'voice-bot-sdk.js', sourcemap: true },
    plugins: [nodeResolve({ browser: true }), terser({ ecma: 2020, module: true }), copyWorklets('packages/sdk/dist/browser/worklets')],
  },
];
