/**
 * Smoke test of `npm run bench -- --quick`: every piece runs (three-process load level, time to
 * first audio pipelines, bundle sizes, headless-Chromium cost) and produces numbers and the
 * markdown tables. No timing assertions: the numbers depend on the machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

test('npm run bench -- --quick produces numbers, tables and the report file', { timeout: 150_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'voicebot-bench-smoke-'));
  try {
    const out = join(dir, 'benchmarks.md');
    const json = join(dir, 'results.json');
    const child = spawn(process.execPath, ['scripts/bench.mjs', '--quick', '--no-build', `--out=${out}`, `--json=${json}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, `bench exited with ${code}:\n${output.slice(-4000)}`);

    const markdown = await readFile(out, 'utf8');
    for (const heading of ['# Benchmarks', '## Headline', '## 1. Relay-added latency', '## 2. Capacity', '## 3. Streaming vs sequential', '## 4. Bundle sizes', '## 5. Browser cost']) {
      assert.ok(markdown.includes(heading), `report has "${heading}"`);
    }
    assert.match(markdown, /\| sessions \| turns \|/);
    assert.ok(output.includes('## Headline'), 'the tables are printed too');

    const r = JSON.parse(await readFile(json, 'utf8'));
    assert.ok(r.machine.cpus > 0 && typeof r.machine.node === 'string');
    const level = r.latency.levels[0];
    assert.ok(level.turns > 0, 'the load level completed turns');
    for (const x of [level.latency.p50, level.added.p99, level.relay.cpuMs, level.relay.rssMaxMb, level.relay.eld.p99, level.upstream.cpuMs, level.loadgen.cpuMs]) assert.ok(finite(x), `finite: ${x}`);
    assert.equal(level.uplinkLostTurns, 0);
    assert.ok(finite(r.ttfa.direct.firstAudio.p50) && finite(r.ttfa.sequential.complete.p50));
    assert.ok(r.bundles.firstDownload.total.gzip > 0 && r.bundles.lazyChunks.length > 0);
    const browser = r.browser.configs[0];
    assert.ok(finite(browser.taskMsPerS) && browser.framesCaptured > 0, 'the browser captured audio');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
