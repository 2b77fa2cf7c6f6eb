#!/usr/bin/env node
// `npm run bench [-- --quick | --only=latency,ttfa,bundles,browser | --levels=1,100 | --no-build …]`
// Runs bench/main.ts (TypeScript, via tsx) and passes the options through; see bench/main.ts and
// docs/benchmarks.md. The relay, the fake upstream and the load generator run as separate processes.
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', 'bench/main.ts', ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
    env: process.env,
  },
);
process.exit(result.status ?? 1);
