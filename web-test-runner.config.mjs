// In-browser unit tests of SDK modules (test/wtr/*.test.ts): @web/test-runner 0.20 (the 1.x line
// needs Node 22) in Debian's Chromium through puppeteer-core, TypeScript by esbuild, the relay's
// HTTP API and WebSocket mocked with msw. Run: npx wtr (scripts/test.mjs runs it in `npm test`).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { esbuildPlugin } from '@web/dev-server-esbuild';
import { chromeLauncher } from '@web/test-runner-chrome';

const require = createRequire(import.meta.url);
const mswDir = require.resolve('msw/mockServiceWorker.js').replace(/mockServiceWorker\.js$/, '');

export default {
  files: ['test/wtr/**/*.test.ts'],
  rootDir: '.',
  // The SDK's sources, as the Node tests use them (`source` export condition); relative `.js`
  // imports of `.ts` files are resolved by the esbuild plugin.
  nodeResolve: { exportConditions: ['source'], browser: true },
  plugins: [
    esbuildPlugin({ ts: true, target: 'es2022', tsconfig: 'test/wtr/esbuild.tsconfig.json' }),
  ],
  // One page at a time: 2 cores, and some tests run real audio.
  concurrency: 1,
  concurrentBrowsers: 1,
  testFramework: { config: { timeout: 20_000 } },
  browserStartTimeout: 60_000,
  testsStartTimeout: 60_000,
  testsFinishTimeout: 180_000,
  browsers: [
    chromeLauncher({
      launchOptions: {
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--autoplay-policy=no-user-gesture-required',
          '--mute-audio',
          '--use-fake-device-for-media-stream',
          '--use-fake-ui-for-media-stream',
        ],
      },
    }),
  ],
  // msw: its bundled browser build as a classic script (window.MockServiceWorker; its ESM build
  // needs CommonJS dependencies converted), and its service worker at the root, so it controls the
  // test page.
  testRunnerHtml: (testFramework) => `<!doctype html>
<html>
  <head><meta charset="utf-8" /></head>
  <body>
    <script src="/node_modules/msw/lib/iife/index.js"></script>
    <script type="module" src="${testFramework}"></script>
  </body>
</html>`,
  middleware: [
    async function mockServiceWorker(context, next) {
      if (context.path !== '/mockServiceWorker.js') return next();
      context.type = 'text/javascript';
      context.set('Service-Worker-Allowed', '/');
      context.body = await readFile(`${mswDir}mockServiceWorker.js`, 'utf8');
    },
  ],
};
