#!/usr/bin/env node
// Runs every *.test.ts under packages/*/src and test/ with node's test runner (TypeScript via tsx).
// Browser tests are node:test files too: they drive Debian's Chromium through puppeteer-core.
// test/wtr/*.test.ts are in-browser unit tests of SDK modules, run by @web/test-runner
// (web-test-runner.config.mjs) after the Node tests and before the real-time browser group.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = [
  'packages/protocol/src',
  'packages/sdk/src',
  'packages/stt-whisper/src',
  'packages/fake-provider/src',
  'packages/relay/src',
  'packages/widget/src',
  'packages/console/src',
  'test',
];
const filter = process.argv.slice(2);

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const files = roots
  .flatMap((dir) => walk(join(root, dir), []))
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Real-time audio in Chromium needs the CPU when it asks for it: on a 2-core machine two browsers
// playing and capturing at once glitch (dropouts the VAD hears as pauses). So the browser files
// (and the bench smoke run and the Vite packaging test, which drive Chromium) run one at a time,
// after the rest.
const realtime = (file) =>
  file.startsWith('test/browser/') ||
  file.includes('bench-smoke') ||
  file.includes('packaging-vite');
const inWtr = (file) => file.startsWith('test/wtr/');
const nodeFiles = files.filter((f) => !inWtr(f));
const wtrFiles = files.filter(inWtr);
let status = 0;
const runNodeTests = (group, concurrency, timeoutMs = 120_000) => {
  if (group.length === 0) return;
  const result = spawnSync(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      `--test-timeout=${timeoutMs}`,
      ...group,
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
  );
  status ||= result.status ?? 1;
};
runNodeTests(
  nodeFiles.filter((f) => !realtime(f)),
  2,
);
if (wtrFiles.length > 0) {
  // Every file when nothing was filtered (the config's glob), else the ones asked for.
  const args = filter.length === 0 ? [] : wtrFiles;
  const result = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/@web/test-runner/dist/bin.js'),
      '--config',
      'web-test-runner.config.mjs',
      ...args,
    ],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, NODE_ENV: 'test' },
    },
  );
  status ||= result.status ?? 1;
}
// The bench smoke run drives every bench part once (Chromium included): more than 2 minutes.
runNodeTests(nodeFiles.filter(realtime), 1, 300_000);
process.exit(status);
