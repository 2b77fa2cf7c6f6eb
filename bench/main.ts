/**
 * `npm run bench [-- options]` (scripts/bench.mjs runs this file with tsx).
 *
 *   --quick            smoke run: small N, a few seconds per piece (writes test-output/benchmarks-quick.md)
 *   --only=a,b         run only some parts: ratio, latency, ttfa, bundles, browser, bargein, whisper, exposure,
 *                      install, mouth, knowledge (capacity and ttfa come with latency). The other parts' results are kept from the results
 *                      file (--json) of earlier runs, so the report still has every section; each
 *                      section says which run measured it
 *   --levels=1,100     concurrency levels (default 1,100,500,1000; quick 4)
 *   --ratio-levels=100,300  levels of the ratio part (relay ÷ the minimal reference relay; quick 4)
 *   --ratio-rounds=3   alternating relay/reference rounds per ratio level (quick 1)
 *   --ratio-duration=ms  streaming window per ratio run (default 12000; quick 5000), and per redis run
 *   --redis-levels=100,300  levels of the redis part (the relay on Redis state ÷ on in-process state; quick 4)
 *   --redis-rounds=2   alternating in-process/Redis rounds per redis level (quick 1)
 *   --duration=ms      streaming window per level (default 25000; quick 5000)
 *   --frame-ms=100     audio per uplink message (20–1000 ms; default: the SDK's `uplinkFrameMs` default, 100)
 *   --relay-workers=N  run the relay as `serve --workers N` does: a cluster primary and N workers (default 1:
 *                      one process, no cluster); the relay figures are then summed over its processes
 *   --pin-relay        run the relay (all its threads) on the last CPU and the fake upstream and load
 *                      generator on the others (`taskset`), so the relay does not take turns with the
 *                      harness for a core (one relay process only)
 *   --no-capacity      do not search beyond the levels for the capacity limit
 *   --nice=-10         niceness of the relay, upstream and load-generator processes (default −10 for full
 *                      runs, so a shared machine's other work disturbs them less; needs the privilege;
 *                      --nice=0 to disable)
 *   --wait-quiet=ms    before each level, wait up to this long for other work on the machine to stop
 *                      (default 30000 for full runs, 0 for quick)
 *   --no-retry         do not re-run a level that other processes disturbed (> 0.4 cores busy)
 *   --no-build         do not run `npm run build` first (default: build, except with --quick)
 *   --out=path         markdown output (default docs/benchmarks.md; quick: test-output/benchmarks-quick.md)
 *   --json=path        raw results as JSON, the source of the report (default docs/benchmarks.json;
 *                      quick: test-output/bench-results-quick.json)
 *   --runs=n           barge-in interruptions per VAD (default 8; quick 1)
 *   --mouth-rounds=n   mouth-to-ear rounds (each: speculation on and off, alternating; default 2; quick 1)
 *   --mouth-vads=silero,energy  VADs of the mouth-to-ear part (default silero, the SDK's default)
 *   --render           measure nothing: render the markdown again from the results file (after a
 *                      change to bench/report.ts)
 *
 * VOICEBOT_WHISPER_MODEL_DIR (a folder holding onnx-community/whisper-tiny.en/, or that model
 * folder itself) adds a real model to the in-browser Whisper part (VOICEBOT_WHISPER_MODEL picks
 * another model id, VOICEBOT_WHISPER_DTYPE its weights); without it only the random-weight test
 * model runs.
 *
 * Every level runs three processes on 127.0.0.1 (fake upstream, relay, load generator) and is
 * bounded in sessions and time; the whole run has a watchdog.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { measureBargeIn, type BargeInReport } from './bargein.js';
import { measureBrowser, type BrowserReport } from './browser.js';
import { measureBundles, type BundleReport } from './bundles.js';
import { exposureOptions, measureExposure, type ExposureReport } from './exposure.js';
import { measureInstall, PEER_PACKAGES, type InstallReport } from './install.js';
import { measureMouthToEar, type MouthReport, type MouthVad } from './mouth-to-ear.js';
import { measureKnowledge, type KnowledgeReport } from './knowledge.js';
import {
  FIXTURES,
  LATENCY,
  REPLY,
  REPO_ROOT,
  median,
  readWavPcm,
  summarize,
  type Summary,
} from './common.js';
import { DEFAULT_UPLINK_FRAME_MS } from '@voice-bot/sdk';
import {
  runLevel,
  scriptedFor,
  setBenchNiceness,
  startUpstream,
  stopChild,
  type LevelOptions,
  type LevelSummary,
} from './levels.js';
import { trimSilence } from './loadgen.js';
import {
  directStreaming,
  sequential,
  upstreamClient,
  type SequentialTiming,
  type StreamingTiming,
} from './pipelines.js';
import { measureRatio, type RatioReport } from './ratio.js';
import { measureRedis, type RedisReport } from './redis.js';
import { renderReport } from './report.js';
import { measureWhisper, type WhisperReport } from './whisper.js';

export interface BenchOptions {
  quick: boolean;
  only: Set<string> | undefined;
  levels: number[];
  durationMs: number;
  frameMs: number;
  relayWorkers: number;
  pinRelay: boolean;
  capacity: boolean;
  build: boolean;
  nice: number | undefined;
  waitQuietMs: number;
  retryDisturbed: boolean;
  out: string;
  json: string;
  ratioLevels: number[];
  ratioRounds: number;
  ratioDurationMs: number;
  redisLevels: number[];
  redisRounds: number;
  /** barge-in interruptions per VAD */
  runs: number;
}

/** The parts a run can measure (`--only`); capacity and ttfa come with latency. */
export const PARTS = [
  'ratio',
  'redis',
  'latency',
  'ttfa',
  'bundles',
  'browser',
  'bargein',
  'whisper',
  'exposure',
  'install',
  'mouth',
  'knowledge',
] as const;
export type Part = (typeof PARTS)[number];

/** When and how a part's figures were measured, if not by the run the report header describes. */
export interface PartRun {
  date: string;
  command: string;
  elapsedS: number | undefined;
  loadStart: string | undefined;
  loadEnd: string | undefined;
}

export interface TtfaReport {
  turns: number;
  scriptedMs: number;
  /** relay pipeline, one session, from the 1-session level: commit → first audio byte at the client */
  relay: Summary | undefined;
  direct: { firstAudio: Summary; stt: Summary; firstSentence: Summary };
  sequential: {
    firstByte: Summary;
    complete: Summary;
    stt: Summary;
    llm: Summary;
    audioSeconds: number;
  };
}

export interface BenchResults {
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    freeMemoryGb: number;
    node: string;
    os: string;
    date: string;
    command: string;
    elapsedS?: number;
    loadStart?: string;
    loadEnd?: string;
  };
  options: Omit<BenchOptions, 'only' | 'runs'> & { only: string[] | undefined; runs?: number };
  /** the parts this run measured (absent in results written before parts were recorded: all of them) */
  parts?: Part[];
  /** parts measured by later partial runs (`--only`) and merged into these results */
  partRuns?: Partial<Record<Part, PartRun>>;
  /** the relay ÷ the minimal reference relay, measured side by side (bench/ratio.ts) */
  ratio?: RatioReport | undefined;
  /** the relay on Redis state ÷ the relay on in-process state, side by side (bench/redis.ts) */
  redis?: RedisReport | undefined;
  latency:
    | {
        scripted: ReturnType<typeof scriptedFor>;
        levels: LevelSummary[];
        floorMs: number | undefined;
      }
    | undefined;
  capacity:
    | { tried: number[]; maxSessions: number | undefined; level: LevelSummary | undefined }
    | undefined;
  ttfa: TtfaReport | undefined;
  bundles: BundleReport | undefined;
  browser: BrowserReport | undefined;
  bargein?: BargeInReport | undefined;
  whisper?: WhisperReport | undefined;
  /** clients that stop reading, oversized request bodies (bench/exposure.ts) */
  exposure?: ExposureReport | undefined;
  /** `npm i` of our packages and the peers into empty folders (bench/install.ts) */
  install?: InstallReport | undefined;
  /** last speech → first reply sample rendered, in Chromium (bench/mouth-to-ear.ts, issue #22) */
  mouth?: MouthReport | undefined;
  /** knowledge base retrieval over 10,000 chunks (bench/knowledge.ts, issue #19) */
  knowledge?: KnowledgeReport | undefined;
  errors: string[];
}

export function parseArgs(argv: string[]): BenchOptions {
  const get = (name: string) =>
    argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick');
  const only = get('only');
  const levels = get('levels');
  return {
    quick,
    only: only ? new Set(only.split(',').map((s) => s.trim())) : undefined,
    levels: levels
      ? levels
          .split(',')
          .map(Number)
          .filter((n) => n > 0)
      : quick
        ? [4]
        : [1, 100, 500, 1000],
    durationMs: Number(get('duration') ?? (quick ? 5000 : 25_000)),
    frameMs: Math.min(1000, Math.max(20, Number(get('frame-ms') ?? DEFAULT_UPLINK_FRAME_MS))),
    relayWorkers: Math.max(1, Math.floor(Number(get('relay-workers') ?? 1)) || 1),
    pinRelay: argv.includes('--pin-relay'),
    capacity: !argv.includes('--no-capacity') && !quick,
    build: argv.includes('--build') || (!argv.includes('--no-build') && !quick),
    waitQuietMs: Number(get('wait-quiet') ?? (quick ? 0 : 30_000)),
    retryDisturbed: !quick && !argv.includes('--no-retry'),
    nice: get('nice') !== undefined ? Number(get('nice')) || undefined : quick ? undefined : -10,
    out: resolve(
      REPO_ROOT,
      get('out') ?? (quick ? 'test-output/benchmarks-quick.md' : 'docs/benchmarks.md'),
    ),
    json: resolve(
      REPO_ROOT,
      get('json') ?? (quick ? 'test-output/bench-results-quick.json' : 'docs/benchmarks.json'),
    ),
    runs: Math.max(1, Number(get('runs') ?? (quick ? 1 : 8)) || 1),
    ratioLevels: (get('ratio-levels') ?? (quick ? '4' : '100,300'))
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    ratioRounds: Math.max(1, Number(get('ratio-rounds') ?? (quick ? 1 : 3)) || 1),
    ratioDurationMs: Number(get('ratio-duration') ?? (quick ? 5000 : 12_000)),
    redisLevels: (get('redis-levels') ?? (quick ? '4' : '100,300'))
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    redisRounds: Math.max(1, Number(get('redis-rounds') ?? (quick ? 1 : 2)) || 1),
  };
}

const benchStart = performance.now();
const log = (line: string) =>
  console.log(`[${((performance.now() - benchStart) / 1000).toFixed(1).padStart(5)} s] ${line}`);

function levelOptions(o: BenchOptions, sessions: number): LevelOptions {
  return o.quick
    ? {
        sessions,
        durationMs: o.durationMs,
        drainMs: 8000,
        spreadMs: 500,
        frameMs: o.frameMs,
        thinkMs: 300,
        reply: QUICK_REPLY,
        fixtures: ['weather'],
        warmupTurns: 1,
        relayWorkers: o.relayWorkers,
        pinRelay: o.pinRelay,
      }
    : {
        sessions,
        durationMs: o.durationMs,
        drainMs: 14_000,
        spreadMs: Math.min(8000, 1000 + sessions * 10),
        frameMs: o.frameMs,
        thinkMs: 500,
        waitQuietMs: o.waitQuietMs,
        relayWorkers: o.relayWorkers,
        pinRelay: o.pinRelay,
      };
}

/** The quick run's reply: one short sentence, so a turn (and the smoke test) ends in ~2 s. */
const QUICK_REPLY = "Sure, we're open until six today. Anything else?";

async function measureTtfa(
  o: BenchOptions,
  relayLevel: LevelSummary | undefined,
  reply: string,
): Promise<TtfaReport> {
  const turns = o.quick ? 2 : 6;
  const upstream = await startUpstream(reply);
  try {
    const client = upstreamClient(upstream.url);
    const pcm = trimSilence(readWavPcm(join(FIXTURES, '16k/hours.wav')).pcm);
    // warm-up (connections, JIT in this process and the fresh upstream) — not recorded
    for (let i = 0; i < (o.quick ? 1 : 3); i++) await directStreaming(client, pcm);
    const direct: StreamingTiming[] = [];
    for (let i = 0; i < turns; i++) direct.push(await directStreaming(client, pcm));
    const seq: SequentialTiming[] = [];
    log(`  direct streaming: ${direct.map((d) => d.firstAudioMs.toFixed(0)).join(', ')} ms`);
    for (let i = 0; i < Math.max(1, Math.ceil(turns / 2)); i++)
      seq.push(await sequential(client, pcm));
    log(
      `  sequential: ${seq.map((d) => `${d.firstByteMs.toFixed(0)}/${d.completeMs.toFixed(0)}`).join(', ')} ms (first byte/complete)`,
    );
    return {
      turns,
      scriptedMs: scriptedFor(reply).totalMs,
      relay: relayLevel?.latency,
      direct: {
        firstAudio: summarize(direct.map((d) => d.firstAudioMs)),
        stt: summarize(direct.map((d) => d.sttMs)),
        firstSentence: summarize(direct.map((d) => d.firstSentenceMs)),
      },
      sequential: {
        firstByte: summarize(seq.map((s) => s.firstByteMs)),
        complete: summarize(seq.map((s) => s.completeMs)),
        stt: summarize(seq.map((s) => s.sttMs)),
        llm: summarize(seq.map((s) => s.llmMs)),
        audioSeconds: median(seq.map((s) => s.audioBytes)) / 48_000,
      },
    };
  } finally {
    await stopChild(upstream.child);
  }
}

/**
 * Runs a level; on a shared machine, when other processes used more than 0.4 cores during the
 * window, runs it once more (time permitting) and keeps the less disturbed of the two.
 */
async function runLevelRetrying(
  o: BenchOptions,
  n: number,
  started: number,
): Promise<LevelSummary> {
  const first = await runLevel(levelOptions(o, n), log);
  const disturbed = (s: LevelSummary) => (s.otherCpuCores ?? 0) > 0.4;
  if (!o.retryDisturbed || !disturbed(first) || performance.now() - started > 6 * 60_000)
    return first;
  log(
    `  other processes used ${(first.otherCpuCores ?? 0).toFixed(2)} cores during that window: running it again`,
  );
  const second = await runLevel(levelOptions(o, n), log);
  return (second.otherCpuCores ?? 0) < (first.otherCpuCores ?? 0) ? second : first;
}

function describeLevel(s: LevelSummary): string {
  const f = (x: number) => x.toFixed(1);
  return (
    `  → ${s.turns} turns, added p50/p95/p99 ${f(s.added.p50)}/${f(s.added.p95)}/${f(s.added.p99)} ms, ` +
    `relay CPU ${(s.relay.cpuCores * 100).toFixed(0)} %, RSS ${s.relay.rssMaxMb.toFixed(0)} MB, ` +
    `loop delay p99 ${f(s.relay.eld.p99)} ms, lost ${s.lostFrames ? 'YES' : 'none'}, failed ${s.failedTurns}${s.pass ? '' : ' (fails capacity criteria)'}`
  );
}

export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const started = performance.now();
  const wants = (part: string) =>
    !o.only ||
    o.only.has(part) ||
    ((part === 'capacity' || part === 'ttfa') && o.only.has('latency'));
  const results: BenchResults = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGb: totalmem() / 2 ** 30,
      freeMemoryGb: freemem() / 2 ** 30,
      node: process.version,
      os: `${process.platform} ${release()}`,
      date: new Date().toISOString(),
      loadStart: loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    },
    options: { ...o, only: o.only ? [...o.only] : undefined },
    parts: PARTS.filter((part) => wants(part)),
    latency: undefined,
    capacity: undefined,
    ttfa: undefined,
    bundles: undefined,
    browser: undefined,
    errors: [],
  };
  const reply = o.quick ? QUICK_REPLY : REPLY;

  if (o.build) {
    log('building (npm run build)…');
    const build = spawnSync('npm', ['run', 'build', '--silent'], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
    });
    if (build.status !== 0)
      results.errors.push('npm run build failed: figures use the dist/ already there');
  }

  setBenchNiceness(o.nice);
  if (wants('ratio')) {
    log(
      `relay ÷ minimal reference relay: ${o.ratioLevels.join(', ')} sessions, ${o.ratioRounds} alternating round(s) of ${o.ratioDurationMs / 1000} s each`,
    );
    try {
      results.ratio = await measureRatio(
        {
          levels: o.ratioLevels,
          rounds: o.ratioRounds,
          // Alternating rounds spread the machine's other work over both: no waiting for quiet.
          level: (n) => ({
            ...levelOptions(o, n),
            durationMs: o.ratioDurationMs,
            waitQuietMs: 0,
          }),
        },
        log,
      );
    } catch (error) {
      results.errors.push(`ratio: ${(error as Error).message}`);
    }
  }

  if (wants('redis')) {
    log(
      `relay on Redis state ÷ relay on in-process state: ${o.redisLevels.join(', ')} sessions, ${o.redisRounds} alternating round(s) of ${o.ratioDurationMs / 1000} s each`,
    );
    try {
      results.redis = await measureRedis(
        {
          levels: o.redisLevels,
          rounds: o.redisRounds,
          level: (n) => ({
            ...levelOptions(o, n),
            durationMs: o.ratioDurationMs,
            waitQuietMs: 0,
          }),
        },
        log,
      );
      if (results.redis.skipped) log(`  skipped: ${results.redis.skipped}`);
    } catch (error) {
      results.errors.push(`redis: ${(error as Error).message}`);
    }
  }

  if (wants('latency')) {
    log(
      `relay-added latency (scripted upstream: STT ${LATENCY.sttMs} ms, LLM TTFT ${LATENCY.llmTtftMs} ms at ${LATENCY.tokensPerSecond} tok/s, TTS TTFB ${LATENCY.ttsTtfbMs} ms, real-time audio)`,
    );
    const levels: LevelSummary[] = [];
    for (const n of o.levels) {
      try {
        const s = await runLevelRetrying(o, n, started);
        log(describeLevel(s));
        levels.push(s);
      } catch (error) {
        results.errors.push(`level ${n}: ${(error as Error).message}`);
        log(`  level ${n} failed: ${(error as Error).message}`);
      }
    }
    results.latency = { scripted: scriptedFor(reply), levels, floorMs: undefined };

    // Capacity: the most sessions that pass (no frame lost, nothing failed, p99 added ≤ 50 ms).
    const tried = levels.map((l) => l.sessions);
    const passing = () => levels.filter((l) => l.pass).sort((a, b) => b.sessions - a.sessions)[0];
    if (o.capacity && levels.length > 0) {
      const candidates: number[] = [];
      const best = passing();
      const highest = Math.max(...tried);
      if (best && best.sessions === highest)
        candidates.push(Math.round(highest * 1.5), highest * 2);
      else {
        const lo = best?.sessions ?? 1;
        const hi = Math.min(
          ...levels.filter((l) => !l.pass && l.sessions > lo).map((l) => l.sessions),
        );
        if (Number.isFinite(hi))
          candidates.push(Math.round((lo + hi) / 2 / 50) * 50 || Math.round((lo + hi) / 2));
      }
      for (const n of candidates) {
        if (tried.includes(n)) continue;
        log(`capacity search: ${n} sessions`);
        try {
          const s = await runLevelRetrying(o, n, started);
          log(describeLevel(s));
          levels.push(s);
          tried.push(n);
          if (!s.pass) break;
        } catch (error) {
          results.errors.push(`capacity level ${n}: ${(error as Error).message}`);
          break;
        }
      }
    }
    const best = passing();
    results.capacity = {
      tried: tried.sort((a, b) => a - b),
      maxSessions: best?.sessions,
      level: best,
    };
  }

  if (wants('ttfa')) {
    log('time to first audio: relay (streamed) vs direct SDK floor vs sequential pipeline…');
    try {
      const one = results.latency?.levels.slice().sort((a, b) => a.sessions - b.sessions)[0];
      results.ttfa = await measureTtfa(o, one, reply);
      if (results.latency) results.latency.floorMs = results.ttfa.direct.firstAudio.p50;
    } catch (error) {
      results.errors.push(`ttfa: ${(error as Error).message}`);
    }
  }

  if (wants('bundles')) {
    try {
      results.bundles = measureBundles({ slowBrotli: !o.quick });
    } catch (error) {
      results.errors.push(`bundles: ${(error as Error).message}`);
    }
  }

  if (wants('browser')) {
    log('browser cost (headless Chromium, fake mic)…');
    try {
      results.browser = await measureBrowser({
        windowMs: o.quick ? 2500 : 15_000,
        configs: o.quick ? ['energy'] : ['idle', 'energy', 'silero'],
      });
    } catch (error) {
      results.errors.push(`browser: ${(error as Error).message}`);
    }
  }

  const f = (x: number | undefined, digits = 1) =>
    x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
  if (wants('bargein')) {
    log(
      `barge-in (headless Chromium, fake mic looping 48k/barge-in.wav, ${o.runs} interruption${o.runs === 1 ? '' : 's'} per VAD)…`,
    );
    try {
      const report = await measureBargeIn({
        runs: o.runs,
        configs: o.quick ? ['energy'] : ['energy', 'silero'],
        relayRuns: o.quick ? 2 : 8,
        niceness: o.nice,
      });
      results.bargein = report;
      for (const c of report.configs) {
        log(
          `  ${c.name}: ${c.interruptions.length} interruptions, onset → silent p50 ${f(c.onsetToSilent.p50)} ms (window ${f(c.window.p50)} ms), ` +
            `decision → silent p50/max ${f(c.decisionToSilent.p50, 2)}/${f(c.decisionToSilent.max, 2)} ms, relay interrupt → all aborted p50/max ${f(c.relay.allAborted.p50)}/${f(c.relay.allAborted.max)} ms`,
        );
        if (c.interruptions.length === 0)
          results.errors.push(`bargein: no interruption measured with the ${c.name} VAD`);
      }
      const alone = report.relayAlone;
      if (alone)
        log(
          `  relay alone (protocol client, no browser): interrupt → all aborted p50/max ${f(alone.allAborted.p50)}/${f(alone.allAborted.max)} ms (n=${alone.allAborted.n})`,
        );
    } catch (error) {
      results.errors.push(`bargein: ${(error as Error).message}`);
    }
  }

  if (wants('whisper')) {
    const realModelDir = process.env['VOICEBOT_WHISPER_MODEL_DIR'] || undefined;
    log(
      `in-browser Whisper (headless Chromium, WebAssembly; ${realModelDir ? `test model and ${realModelDir}` : 'test model only: VOICEBOT_WHISPER_MODEL_DIR is not set'})…`,
    );
    try {
      const report = await measureWhisper({
        utterances: o.quick ? 1 : 3,
        fixtures: o.quick ? [] : ['hours', 'weather', 'book', 'stop'],
        repeats: 2,
        realModelDir,
      });
      results.whisper = report;
      for (const m of report.models) {
        log(
          `  ${m.model}: load + warm-up ${f(m.loadMs, 0)} ms, end of speech → transcript p50 ${f(m.endOfSpeechToTranscript.p50, 0)} ms (n=${m.utterances.length}), ` +
            `inference p50 ${f(m.clientInference.p50, 0)} ms, RTF p50 ${f(m.rtf.n > 0 ? m.rtf.p50 : m.clientRtf.p50, 3)}${m.error ? ` — ${m.error}` : ''}`,
        );
        if (m.error && m.utterances.length === 0)
          results.errors.push(`whisper: ${m.model}: ${m.error}`);
      }
    } catch (error) {
      results.errors.push(`whisper: ${(error as Error).message}`);
    }
  }

  if (wants('exposure')) {
    const eo = exposureOptions(o.quick, o.waitQuietMs);
    log(
      `exposure: ${eo.sessions} WebSocket clients that stop reading vs ${eo.sessions} that read; ${eo.bodies} oversized \`POST /v1/sessions\` bodies vs ${eo.bodies} normal ones…`,
    );
    try {
      results.exposure = await measureExposure(eo, log);
      const e = results.exposure;
      for (const p of e.sockets)
        if (p.opened < p.sessions)
          results.errors.push(
            `exposure: ${p.variant} round ${p.round + 1}: only ${p.opened} of ${p.sessions} sessions opened (${p.setupFailures.slice(0, 3).join('; ')})`,
          );
      for (const b of e.bodies) {
        // 'none': the client's connection failed before it had read an answer (see the report)
        const expected = b.mode === 'normal' ? '201' : '413';
        const wrong = Object.keys(b.statuses).filter(
          (k) => k !== expected && !(k === 'none' && b.mode !== 'normal'),
        );
        if (wrong.length > 0 || !b.statuses[expected])
          results.errors.push(
            `exposure: ${b.mode} bodies, round ${b.round + 1}: ${JSON.stringify(b.statuses)} (expected ${b.n} × ${expected})`,
          );
      }
    } catch (error) {
      results.errors.push(`exposure: ${(error as Error).message}`);
    }
  }

  if (wants('install')) {
    // quick: the SDK and one peer only (the smoke test's time; every code path still runs)
    const peers = o.quick ? PEER_PACKAGES.slice(0, 1) : PEER_PACKAGES;
    log(
      `install size: npm pack our packages, npm install ${o.quick ? '@voice-bot/sdk' : 'each user-facing one'} and ${peers.join(', ')} into empty folders…`,
    );
    try {
      const report = await measureInstall({
        ours: o.quick ? ['@voice-bot/sdk'] : undefined,
        peers,
        log,
      });
      results.install = report;
      for (const m of report.ours)
        if (m.error) results.errors.push(`install: ${m.name}: ${m.error}`);
      // A peer that could not be installed is recorded in the report, not an error of this run,
      // when the registry was unreachable (the issue asks for ours to be reported regardless).
      if (report.registry.reachable)
        for (const m of report.peers)
          if (m.error) results.errors.push(`install: ${m.name}: ${m.error}`);
      log(`  install part took ${report.elapsedS.toFixed(1)} s`);
    } catch (error) {
      results.errors.push(`install: ${(error as Error).message}`);
    }
  }

  if (wants('mouth')) {
    const argv = process.argv.slice(2);
    const arg = (name: string) =>
      argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const rounds = Math.max(1, Number(arg('mouth-rounds') ?? (o.quick ? 1 : 2)) || 1);
    const vads = (arg('mouth-vads') ?? 'silero')
      .split(',')
      .filter((v): v is MouthVad => v === 'silero' || v === 'energy');
    log(
      `mouth to ear (headless Chromium, fake mic, scripted provider): ${rounds} round(s) of speculation on / off, ${vads.join(' and ')} VAD…`,
    );
    try {
      const m = await measureMouthToEar({
        rounds,
        vads,
        ...(o.quick ? { utterances: ['hours'] } : {}),
        log,
      });
      results.mouth = m;
      for (const c of m.cases) {
        log(
          `  ${c.vad}, speculation ${c.speculation ? 'on' : 'off'}: mouth to ear p50 ${c.mouthToEar.p50.toFixed(0)} ms (n=${c.mouthToEar.n}), ` +
            `underruns ${c.underruns}, false cut-ins ${c.cutIns}, speculative confirmed/discarded ${c.confirmed}/${c.discarded}`,
        );
        if (c.mouthToEar.n === 0)
          results.errors.push(
            `mouth: nothing measured with ${c.vad}, speculation ${c.speculation ? 'on' : 'off'}`,
          );
      }
    } catch (error) {
      results.errors.push(`mouth: ${(error as Error).message}`);
    }
  }

  if (wants('knowledge')) {
    const chunks = o.quick ? 1_000 : 10_000;
    log(`knowledge base retrieval: ${chunks} chunks in SQLite, hybrid search…`);
    try {
      results.knowledge = await measureKnowledge({ chunks, queries: o.quick ? 30 : 300 }, log);
    } catch (error) {
      results.errors.push(`knowledge: ${(error as Error).message}`);
    }
  }

  results.machine.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadEnd = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return results;
}

/** The part an error message of {@link runBench} is about (undefined: the whole run). */
function errorPart(message: string): Part | undefined {
  if (/^(capacity )?level \d+/.test(message)) return 'latency';
  const prefix = /^(\w+):/.exec(message)?.[1];
  return PARTS.find((part) => part === prefix);
}

/**
 * A partial run (`--only`) replaces the parts it measured in the results of earlier runs and keeps
 * the others, so the report keeps every section; `partRuns` says which run measured what.
 */
export function mergeResults(previous: BenchResults, current: BenchResults): BenchResults {
  const ran = new Set<Part>(current.parts ?? PARTS);
  const run: PartRun = {
    date: current.machine.date,
    command: current.machine.command,
    elapsedS: current.machine.elapsedS,
    loadStart: current.machine.loadStart,
    loadEnd: current.machine.loadEnd,
  };
  const partRuns: Partial<Record<Part, PartRun>> = { ...previous.partRuns };
  for (const part of ran) partRuns[part] = run;
  const merged: BenchResults = { ...previous, partRuns };
  if (ran.has('latency')) {
    merged.latency = current.latency;
    merged.capacity = current.capacity;
  }
  if (ran.has('ratio')) merged.ratio = current.ratio;
  if (ran.has('redis')) merged.redis = current.redis;
  if (ran.has('ttfa')) merged.ttfa = current.ttfa;
  if (ran.has('bundles')) merged.bundles = current.bundles;
  if (ran.has('browser')) merged.browser = current.browser;
  if (ran.has('bargein')) merged.bargein = current.bargein;
  if (ran.has('whisper')) merged.whisper = current.whisper;
  if (ran.has('exposure')) merged.exposure = current.exposure;
  if (ran.has('install')) merged.install = current.install;
  if (ran.has('mouth')) merged.mouth = current.mouth;
  if (ran.has('knowledge')) merged.knowledge = current.knowledge;
  merged.errors = [
    ...previous.errors.filter((e) => {
      const part = errorPart(e);
      return part === undefined || !ran.has(part);
    }),
    ...current.errors,
  ];
  return merged;
}

/** Paths in the results relative to the repository, so the committed file is the same on every machine. */
function portable(results: BenchResults): BenchResults {
  const rel = (path: string) => relative(REPO_ROOT, path) || '.';
  return {
    ...results,
    options: {
      ...results.options,
      out: rel(resolve(REPO_ROOT, results.options.out)),
      json: rel(resolve(REPO_ROOT, results.options.json)),
    },
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (process.argv.includes('--render')) {
    writeFileSync(o.out, renderReport(JSON.parse(readFileSync(o.json, 'utf8')) as BenchResults));
    console.log(`rendered ${relative(REPO_ROOT, o.out)} from ${relative(REPO_ROOT, o.json)}`);
    return;
  }
  const watchdog = setTimeout(() => {
    console.error('benchmark watchdog: giving up after 30 minutes');
    process.exit(2);
  }, 30 * 60_000);
  watchdog.unref();
  const results = await runBench(o);
  let report = results;
  if (o.only && existsSync(o.json)) {
    try {
      const previous = JSON.parse(readFileSync(o.json, 'utf8')) as BenchResults;
      if (previous.options.quick === o.quick) {
        report = mergeResults(previous, results);
        console.log(`kept the parts not run now from ${relative(REPO_ROOT, o.json)}`);
      } else
        console.log(
          `${relative(REPO_ROOT, o.json)} holds a ${previous.options.quick ? 'quick' : 'full'} run: not merged`,
        );
    } catch (error) {
      console.error(
        `could not read ${o.json} to keep the parts not run now: ${(error as Error).message}`,
      );
    }
  }
  report = portable(report);
  const markdown = renderReport(report);
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, markdown);
  mkdirSync(dirname(o.json), { recursive: true });
  writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${markdown}`);
  console.log(`wrote ${o.out} and ${o.json} in ${results.machine.elapsedS?.toFixed(0)} s`);
  if (results.errors.length > 0) console.error(`errors:\n  ${results.errors.join('\n  ')}`);
  process.exit(results.errors.length > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(REPO_ROOT, 'bench/main.ts'))
  await main();
