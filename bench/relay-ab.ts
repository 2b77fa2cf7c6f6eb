/**
 * Before/after measurements of proposed relay changes, without touching packages/relay: copies the
 * built relay (`packages/relay/dist` + package.json) twice into test-output/relay-ab/, applies the
 * patches below to the "after" copy (each must apply exactly, or the run stops), and runs the same
 * load level against both copies, alternating, through `BENCH_RELAY_MODULE`.
 *
 *   node --import tsx bench/relay-ab.ts [--sessions=300] [--duration=20000] [--rounds=2] [--patches=binary,day,stt]
 *
 * Run `npm run build` first. Writes test-output/relay-ab.json.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './common.js';
import { runLevel, setBenchNiceness, type LevelSummary } from './levels.js';

interface Patch {
  name: string;
  description: string;
  file: string;
  find: string;
  replace: string;
}

export const PATCHES: Patch[] = [
  {
    name: 'binary',
    description:
      "audio frames straight from the `ws` socket: no per-frame ArrayBuffer copy and MessageEvent from @hono/node-server's upgradeWebSocket wrapper (text frames too)",
    file: 'dist/app.js',
    find: `                sessions.add(session);
                log.info('socket open');`,
    replace: `                sessions.add(session);
                log.info('socket open');
                // A/B patch: once the adapter has attached its own listener, take the socket's messages directly.
                setImmediate(() => {
                    raw.removeAllListeners('message');
                    raw.on('message', (data, isBinary) => {
                        if (isBinary) guard?.frame('audio', data.byteLength, () => session?.onBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
                        else {
                            const text = data.toString('utf8');
                            guard?.frame('json', data.byteLength, () => session?.onText(text));
                        }
                    });
                });`,
  },
  {
    name: 'day',
    description: 'the UTC day string for usage/quota counters cached until midnight instead of `new Date().toISOString()` twice per audio frame',
    file: 'dist/usage.js',
    find: `export function utcDay(now = Date.now()) {
    return new Date(now).toISOString().slice(0, 10);
}`,
    replace: `let dayStart = -1;
let dayString = '';
export function utcDay(now = Date.now()) {
    const start = now - (now % 86_400_000);
    if (start !== dayStart) {
        dayStart = start;
        dayString = new Date(start).toISOString().slice(0, 10);
    }
    return dayString;
}`,
  },
  {
    name: 'stt',
    description: 'the STT upload sent as one prebuilt multipart/form-data Buffer instead of `toFile()` + FormData (Blob streams, per-chunk copies)',
    file: 'dist/stages/stt.js',
    find: `    const wav = pcm16ToWav(request.pcm, INPUT_SAMPLE_RATE);
    const file = await toFile(wav, 'utterance.wav', { type: 'audio/wav' });
    const result = await client.audio.transcriptions.create({ file, model: request.model, ...(request.language ? { language: request.language } : {}) }, { signal });
    return result.text.trim();`,
    replace: `    const boundary = 'voicebot' + Math.random().toString(16).slice(2);
    const field = (name, value) => \`--\${boundary}\\r\\nContent-Disposition: form-data; name="\${name}"\\r\\n\\r\\n\${value}\\r\\n\`;
    const head = Buffer.from(field('model', request.model) + (request.language ? field('language', request.language) : '') +
        \`--\${boundary}\\r\\nContent-Disposition: form-data; name="file"; filename="utterance.wav"\\r\\nContent-Type: audio/wav\\r\\n\\r\\n\`);
    const body = Buffer.concat([head, pcm16ToWav(request.pcm, INPUT_SAMPLE_RATE), Buffer.from(\`\\r\\n--\${boundary}--\\r\\n\`)]);
    const result = await client.post('/audio/transcriptions', { body, headers: { 'content-type': \`multipart/form-data; boundary=\${boundary}\` }, signal });
    return String(result.text ?? '').trim();`,
  },
];

/** Makes `test-output/relay-ab/<name>` (package.json + dist) from the current build, with `patches` applied. */
export function makeCopy(name: string, patches: Patch[]): string {
  const dir = join(REPO_ROOT, 'test-output/relay-ab', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(REPO_ROOT, 'packages/relay/dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(REPO_ROOT, 'packages/relay/package.json'), join(dir, 'package.json'));
  for (const patch of patches) {
    const file = join(dir, patch.file);
    const text = readFileSync(file, 'utf8');
    const count = text.split(patch.find).length - 1;
    if (count !== 1) throw new Error(`patch ${patch.name}: expected its target once in ${patch.file}, found ${count} (the relay changed; update the patch)`);
    writeFileSync(file, text.replace(patch.find, patch.replace));
  }
  return join(dir, 'dist/index.js');
}

interface Row {
  variant: string;
  round: number;
  cpuMsPerSessionSecond: number;
  relayCpu: number;
  addedP50: number;
  addedP99: number;
  eldP99: number;
  gcMs: number;
  rssMaxMb: number;
  turns: number;
  failed: number;
  otherCpu: number | undefined;
}

async function main(): Promise<void> {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const sessions = Number(arg('sessions') ?? 300);
  const durationMs = Number(arg('duration') ?? 20_000);
  const rounds = Number(arg('rounds') ?? 2);
  const names = (arg('patches') ?? PATCHES.map((p) => p.name).join(',')).split(',');
  const patches = PATCHES.filter((p) => names.includes(p.name));
  if (!existsSync(join(REPO_ROOT, 'packages/relay/dist/index.js'))) throw new Error('run npm run build first');
  setBenchNiceness(arg('nice') !== undefined ? Number(arg('nice')) : -10);
  const variants = { before: makeCopy('before', []), after: makeCopy('after', patches) };
  console.log(`patches: ${patches.map((p) => `${p.name} (${p.description})`).join('; ')}`);
  const rows: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const [variant, module] of Object.entries(variants)) {
      process.env.BENCH_RELAY_MODULE = module;
      const s: LevelSummary = await runLevel({ sessions, durationMs, drainMs: 15_000, spreadMs: Math.min(8000, 1000 + sessions * 10), frameMs: 20, thinkMs: 500 });
      const row: Row = {
        variant,
        round,
        cpuMsPerSessionSecond: s.cpuMsPerSessionSecond,
        relayCpu: s.relay.cpuCores,
        addedP50: s.added.p50,
        addedP99: s.added.p99,
        eldP99: s.relay.eld.p99,
        gcMs: s.relay.gc.ms,
        rssMaxMb: s.relay.rssMaxMb,
        turns: s.turns,
        failed: s.failedTurns + s.uplinkLostTurns + s.downlinkShortTurns,
        otherCpu: s.otherCpuCores,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  const mean = (v: string, k: keyof Row) => {
    const xs = rows.filter((r) => r.variant === v).map((r) => r[k] as number);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  for (const k of ['cpuMsPerSessionSecond', 'relayCpu', 'addedP50', 'addedP99', 'eldP99', 'gcMs', 'rssMaxMb'] as const) {
    const a = mean('before', k);
    const b = mean('after', k);
    console.log(`${k.padEnd(22)} before ${a.toFixed(3).padStart(10)}  after ${b.toFixed(3).padStart(10)}  (${(((b - a) / a) * 100).toFixed(0)} %)`);
  }
  mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'test-output/relay-ab.json'), `${JSON.stringify({ sessions, durationMs, patches: patches.map((p) => p.name), rows }, null, 2)}\n`);
}

if (process.argv[1]?.endsWith('relay-ab.ts')) await main();
