/**
 * Compares two V8 CPU profiles (`--cpu-prof`) of the relay and the reference relay, module by module
 * and function by function, over a window of each (seconds from the profile's start).
 *
 *   BENCH_RELAY_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- --only=ratio \
 *     --no-build --ratio-levels=300 --ratio-rounds=1 --out=test-output/prof.md --json=test-output/prof.json
 *   node --import tsx bench/profile-diff.ts relay.cpuprofile 9-18 reference.cpuprofile 8.5-17.5
 *
 * Each sample counts for the time to the next one, capped at 1.5 ms: on a shared machine a process
 * that is descheduled leaves one sample that spans the wait (180 ms were once charged to a single
 * buffer copy), and that wall time is not CPU the function used.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const MAX_SAMPLE_MS = 1.5;

function where(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:.*\/)?([^/]+)$/.exec(url);
  if (pkg) return `${pkg[1]}${pkg[1] === 'undici' ? `/${pkg[2]}` : ''}`;
  const own = /packages\/([^/]+)\/(?:dist|src)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.startsWith('node:') ? url : (url.split('/').pop() ?? url);
}

/** Self time (ms) per module and per function in `[from, to]` seconds, and the busy total. */
function summarise(file: string, from: number, to: number) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const modules = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const seconds = (at - profile.startTime) / 1e6;
    if (seconds < from || seconds > to) continue;
    const node = nodes.get(profile.samples[i] ?? -1);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const ms = Math.min(MAX_SAMPLE_MS, (profile.timeDeltas[i + 1] ?? 0) / 1000);
    const { functionName, url, lineNumber } = node.callFrame;
    const module = url ? where(url) : functionName.startsWith('(') ? functionName : '(native)';
    const name = `${functionName || '(anonymous)'} ${url ? `${where(url)}:${lineNumber + 1}` : ''}`;
    busy += ms;
    modules.set(module, (modules.get(module) ?? 0) + ms);
    functions.set(name, (functions.get(name) ?? 0) + ms);
  }
  return { busy, modules, functions };
}

function range(text: string | undefined): [number, number] {
  const [from, to] = (text ?? '0-1e9').split('-').map(Number);
  return [from ?? 0, to ?? 1e9];
}

function table(
  title: string,
  a: Map<string, number>,
  b: Map<string, number>,
  rows: number,
): string[] {
  const names = [...new Set([...a.keys(), ...b.keys()])];
  const diff = (k: string) => (a.get(k) ?? 0) - (b.get(k) ?? 0);
  names.sort((x, y) => Math.abs(diff(y)) - Math.abs(diff(x)));
  const s = (ms: number | undefined) => ((ms ?? 0) / 1000).toFixed(3).padStart(7);
  return [
    `\n${title} (s): relay, reference, difference`,
    ...names
      .slice(0, rows)
      .map(
        (k) =>
          `${s(a.get(k))} ${s(b.get(k))} ${diff(k) >= 0 ? '+' : '-'}${s(Math.abs(diff(k)))}  ${k}`,
      ),
  ];
}

const [relayFile, relayRange, referenceFile, referenceRange] = process.argv.slice(2);
if (!relayFile || !referenceFile) {
  console.error(
    'usage: profile-diff.ts relay.cpuprofile FROM-TO reference.cpuprofile FROM-TO (seconds)',
  );
  process.exit(2);
}
const relay = summarise(relayFile, ...range(relayRange));
const reference = summarise(referenceFile, ...range(referenceRange));
console.log(
  `busy: relay ${(relay.busy / 1000).toFixed(3)} s, reference ${(reference.busy / 1000).toFixed(3)} s (×${(relay.busy / reference.busy).toFixed(2)})`,
);
console.log(table('by module', relay.modules, reference.modules, 30).join('\n'));
console.log(table('by function', relay.functions, reference.functions, 40).join('\n'));
