/**
 * Before/after measurements of relay changes, run alternately at one load level (the machine is
 * shared: alternating spreads its other work over both variants).
 *
 * Two ways to get the two variants, both copies of a relay build (`dist` + package.json) under
 * test-output/relay-ab/ (inside the repository, so they resolve the same dependencies):
 * - a saved build against the current one: `--save=NAME` copies the current build to
 *   test-output/relay-ab/NAME and stops; change the source, `npm run build`, then
 *   `--before=NAME` runs NAME ("before") against the current build ("after").
 * - proposed patches of the built JavaScript (the PATCHES below, each must apply exactly) against
 *   the current build: `--patches=a,b`. Patches that were adopted in the source are retired.
 *
 *   node --import tsx bench/relay-ab.ts --save=baseline
 *   node --import tsx bench/relay-ab.ts --before=baseline [--sessions=300] [--duration=20000] [--rounds=2] [--nice=-10]
 *   node --import tsx bench/relay-ab.ts --before-frame-ms=20 --frame-ms=100   (the clients' uplink frame size)
 *   node --import tsx bench/relay-ab.ts --before-node-options= --node-options=--max-semi-space-size=64   (relay Node flags)
 *   node --import tsx bench/relay-ab.ts --before-workers=1 --workers=2   (relay processes: one, or a cluster)
 *   node --import tsx bench/relay-ab.ts --before-pin-relay=0 --pin-relay=1   (the relay on a CPU of its own)
 *
 * Compare CPU per turn and GC per turn first: wall-clock latency on a busy machine mostly measures
 * the machine (see `otherCpu`, the cores other processes used during each run).
 * Writes test-output/relay-ab.json.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, median } from './common.js';
import { runLevel, setBenchNiceness, type LevelSummary } from './levels.js';

interface Patch {
  name: string;
  description: string;
  file: string;
  find: string;
  replace: string;
}

/**
 * Proposed changes, as exact replacements in the built relay. Adopted and retired: `binary` (audio
 * frames straight from the `ws` socket, app.ts), `day` (cached UTC day string, usage.ts), `stt`
 * (prebuilt multipart upload, stages/stt.ts).
 */
export const PATCHES: Patch[] = [];

const AB_DIR = join(REPO_ROOT, 'test-output/relay-ab');

/** Copies the current build to `test-output/relay-ab/<name>` with `patches` applied; returns its entry module. */
export function makeCopy(name: string, patches: Patch[] = []): string {
  const dir = join(AB_DIR, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(REPO_ROOT, 'packages/relay/dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(REPO_ROOT, 'packages/relay/package.json'), join(dir, 'package.json'));
  for (const patch of patches) {
    const file = join(dir, patch.file);
    const text = readFileSync(file, 'utf8');
    const count = text.split(patch.find).length - 1;
    if (count !== 1)
      throw new Error(
        `patch ${patch.name}: expected its target once in ${patch.file}, found ${count} (the relay changed; update the patch)`,
      );
    writeFileSync(file, text.replace(patch.find, patch.replace));
  }
  return entryOf(dir);
}

/** A build's entry module: its bundle (what the package loads), or the tsc output of older builds. */
function entryOf(dir: string): string {
  const bundle = join(dir, 'dist/bundle/index.js');
  return existsSync(bundle) ? bundle : join(dir, 'dist/index.js');
}

interface Row {
  variant: string;
  round: number;
  sessions: number;
  turns: number;
  failed: number;
  /** errors the load generator saw, by code */
  errors: Record<string, number>;
  /** relay CPU ms per completed turn (the work per unit; CPU per session-second also moves with how many turns fit in the window) */
  cpuMsPerTurn: number;
  cpuMsPerSessionSecond: number;
  relayCpu: number;
  gcMs: number;
  gcMsPerTurn: number;
  eldP99: number;
  rssMaxMb: number;
  /** at the RSS peak: V8 heap in use, and memory outside it held by ArrayBuffers/Buffers (audio, socket data) */
  peakHeapUsedMb: number | undefined;
  peakArrayBuffersMb: number | undefined;
  addedP50: number;
  addedP99: number;
  sttP50: number;
  llmTtftP50: number;
  ttsTtfbP50: number;
  /** cores busy machine-wide during the window, and what processes other than the benchmark's used */
  machineCpu: number | undefined;
  otherCpu: number | undefined;
}

function row(variant: string, round: number, s: LevelSummary): Row {
  const turns = Math.max(1, s.turns);
  return {
    variant,
    round,
    sessions: s.sessions,
    turns: s.turns,
    failed: s.failedTurns + s.uplinkLostTurns + s.downlinkShortTurns,
    errors: s.errors,
    cpuMsPerTurn: s.relay.cpuMs / turns,
    cpuMsPerSessionSecond: s.cpuMsPerSessionSecond,
    relayCpu: s.relay.cpuCores,
    gcMs: s.relay.gc.ms,
    gcMsPerTurn: s.relay.gc.ms / turns,
    eldP99: s.relay.eld.p99,
    rssMaxMb: s.relay.rssMaxMb,
    peakHeapUsedMb: s.relay.atPeak?.heapUsedMb,
    peakArrayBuffersMb: s.relay.atPeak?.arrayBuffersMb,
    addedP50: s.added.p50,
    addedP99: s.added.p99,
    sttP50: s.relayMetrics.stt.p50,
    llmTtftP50: s.relayMetrics.llmTtft.p50,
    ttsTtfbP50: s.relayMetrics.ttsTtfb.p50,
    machineCpu: s.machineCpuCores,
    otherCpu: s.otherCpuCores,
  };
}

const COMPARED = [
  'cpuMsPerTurn',
  'cpuMsPerSessionSecond',
  'relayCpu',
  'gcMsPerTurn',
  'eldP99',
  'rssMaxMb',
  'peakHeapUsedMb',
  'peakArrayBuffersMb',
  'addedP50',
  'addedP99',
  'sttP50',
  'llmTtftP50',
  'ttsTtfbP50',
  'otherCpu',
] as const;

async function main(): Promise<void> {
  const arg = (name: string) =>
    process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (!existsSync(join(REPO_ROOT, 'packages/relay/dist/bundle/index.js')))
    throw new Error('run npm run build first');
  const save = arg('save');
  if (save) {
    makeCopy(save);
    console.log(`saved the current relay build as test-output/relay-ab/${save}`);
    return;
  }
  const sessions = Number(arg('sessions') ?? 300);
  const durationMs = Number(arg('duration') ?? 20_000);
  const rounds = Number(arg('rounds') ?? 2);
  const before = arg('before');
  const names = arg('patches')?.split(',') ?? [];
  const unknown = names.filter((n) => !PATCHES.some((p) => p.name === n));
  if (unknown.length > 0)
    throw new Error(
      `unknown or retired patches: ${unknown.join(', ')} (available: ${PATCHES.map((p) => p.name).join(', ') || 'none'})`,
    );
  const patches = PATCHES.filter((p) => names.includes(p.name));
  // The client's uplink frame size per variant (`--frame-ms=` for both, `--before-frame-ms=` to
  // compare the clients' frame size on one relay build).
  const frameMs = {
    after: Number(arg('frame-ms') ?? 20),
    before: Number(arg('before-frame-ms') ?? arg('frame-ms') ?? 20),
  };
  const framesDiffer = frameMs.before !== frameMs.after;
  // Node flags of the relay process per variant (`--node-options=` for both, `--before-node-options=`
  // for the "before" run only), e.g. a larger young generation.
  const nodeOptions = {
    after: arg('node-options') ?? '',
    before: arg('before-node-options') ?? arg('node-options') ?? '',
  };
  const flagsDiffer = nodeOptions.before !== nodeOptions.after;
  // Relay processes per variant (`--workers=` for both, `--before-workers=` for the "before" run).
  const workers = {
    after: arg('workers') ?? '1',
    before: arg('before-workers') ?? arg('workers') ?? '1',
  };
  const workersDiffer = workers.before !== workers.after;
  // The relay on a CPU of its own per variant (`--pin-relay=1` for both, `--before-pin-relay=0|1`).
  const pin = {
    after: arg('pin-relay') ?? '0',
    before: arg('before-pin-relay') ?? arg('pin-relay') ?? '0',
  };
  const pinDiffers = pin.before !== pin.after;
  if (
    !before &&
    patches.length === 0 &&
    !framesDiffer &&
    !flagsDiffer &&
    !workersDiffer &&
    !pinDiffers
  )
    throw new Error(
      'nothing to compare: give --before=NAME (a build saved with --save=NAME), --patches=…, --before-frame-ms=…, --before-node-options=…, --before-workers=… or --before-pin-relay=…',
    );
  if (before && !existsSync(entryOf(join(AB_DIR, before))))
    throw new Error(
      `no saved build test-output/relay-ab/${before} (make one with --save=${before})`,
    );
  setBenchNiceness(arg('nice') !== undefined ? Number(arg('nice')) : -10);
  const variants = {
    before: before ? entryOf(join(AB_DIR, before)) : makeCopy('before'),
    after: makeCopy('after', patches),
  };
  console.log(
    `before: ${before ? `saved build ${before}` : 'current build'}, ${frameMs.before} ms frames${nodeOptions.before ? `, node ${nodeOptions.before}` : ''}, ${workers.before} relay worker(s)${pin.before === '1' ? ', relay pinned' : ''}; ` +
      `after: current build${patches.length ? ` + ${patches.map((p) => `${p.name} (${p.description})`).join('; ')}` : ''}, ${frameMs.after} ms frames${nodeOptions.after ? `, node ${nodeOptions.after}` : ''}, ${workers.after} relay worker(s)${pin.after === '1' ? ', relay pinned' : ''}`,
  );
  const rows: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    // alternate the order too, so neither variant always runs first in a round
    const order = round % 2 === 1 ? (['before', 'after'] as const) : (['after', 'before'] as const);
    for (const variant of order) {
      process.env.BENCH_RELAY_MODULE = variants[variant];
      process.env.BENCH_RELAY_NODE_OPTIONS = nodeOptions[variant];
      process.env.BENCH_RELAY_WORKERS = workers[variant];
      process.env.BENCH_PIN_RELAY = pin[variant];
      const s = await runLevel({
        sessions,
        durationMs,
        drainMs: 15_000,
        spreadMs: Math.min(8000, 1000 + sessions * 10),
        frameMs: frameMs[variant],
        thinkMs: 500,
      });
      const r = row(variant, round, s);
      rows.push(r);
      console.log(
        JSON.stringify(r, (_k, v: unknown) =>
          typeof v === 'number' ? Math.round(v * 100) / 100 : v,
        ),
      );
    }
  }
  // Medians over the runs where every turn finished: a run the machine starved until turns missed
  // the drain says nothing about the relay's cost per turn.
  const complete = rows.filter((r) => r.turns > 0 && r.failed === 0);
  if (complete.length < rows.length)
    console.log(
      `(${rows.length - complete.length} run(s) with failed or unfinished turns left out of the medians)`,
    );
  for (const k of COMPARED) {
    const a = median(complete.filter((r) => r.variant === 'before').map((r) => r[k] ?? Number.NaN));
    const b = median(complete.filter((r) => r.variant === 'after').map((r) => r[k] ?? Number.NaN));
    console.log(
      `${k.padEnd(22)} before ${a.toFixed(2).padStart(10)}  after ${b.toFixed(2).padStart(10)}  (${(((b - a) / a) * 100).toFixed(0)} %)`,
    );
  }
  mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
  writeFileSync(
    join(REPO_ROOT, 'test-output/relay-ab.json'),
    `${JSON.stringify({ sessions, durationMs, frameMs, nodeOptions, workers, pin, before: before ?? 'current build', patches: patches.map((p) => p.name), rows }, null, 2)}\n`,
  );
}

if (process.argv[1]?.endsWith('relay-ab.ts')) await main();
