#!/usr/bin/env node
// Runs every *.test.ts under packages/*/src and test/ with node's test runner (TypeScript via tsx).
// Browser tests are node:test files too: they drive Debian's Chromium through puppeteer-core.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['packages/protocol/src', 'packages/sdk/src', 'packages/relay/src', 'packages/widget/src', 'test'];
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
// (and the bench smoke run, which drives Chromium) run one at a time, after the rest.
const realtime = (file) => file.startsWith('test/browser/') || file.includes('bench-smoke');
let status = 0;
for (const [group, concurrency] of [
  [files.filter((f) => !realtime(f)), 2],
  [files.filter(realtime), 1],
]) {
  if (group.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...group],
    { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
  );
  status ||= result.status ?? 1;
}
process.exit(status);
