/**
 * The relay against the minimal reference relay (bench/reference-relay.ts), side by side: the same
 * fake upstream, load generator and load, one level at a time, the two alternating within each
 * round (and which goes first alternating between rounds), so whatever else the machine does
 * falls on both. Reported as the relay's figure ÷ the reference's (medians over the rounds).
 */
import { loadAverage, medianFigures } from './common.js';
import { runLevel, type LevelOptions, type LevelSummary } from './levels.js';

export type RatioVariant = 'relay' | 'reference';

export interface RatioRun {
  variant: RatioVariant;
  round: number;
  sessions: number;
  turns: number;
  /** turns that failed, lost uplink audio or missed downlink audio */
  failed: number;
  cpuMsPerTurn: number;
  cpuMsPerSessionSecond: number;
  gcMsPerTurn: number;
  rssMaxMb: number;
  addedP50: number;
  addedP99: number;
  relayCpuCores: number;
  eldP99: number;
  /** cores used by processes outside the benchmark during the window */
  otherCpuCores: number | undefined;
  /** TCP connections the relay opened to the upstream during the window */
  upstreamConnects: number | undefined;
  loadAverage: string;
}

export interface RatioFigures {
  cpuMsPerTurn: number;
  cpuMsPerSessionSecond: number;
  gcMsPerTurn: number;
  rssMaxMb: number;
  addedP50: number;
  addedP99: number;
}

export interface RatioLevel {
  sessions: number;
  /** medians over the rounds where every turn finished */
  relay: RatioFigures;
  reference: RatioFigures;
  /** relay ÷ reference, of the medians */
  ratio: RatioFigures;
}

export interface RatioReport {
  rounds: number;
  durationMs: number;
  /** the load generator's uplink message size */
  frameMs: number;
  levels: RatioLevel[];
  runs: RatioRun[];
  /** the goals of issue 23, relay ÷ reference */
  goals: { cpuPerTurn: number; rssAt300: number; addedP99At300: number };
  loadStart: string;
  loadEnd: string;
}

export const RATIO_GOALS = { cpuPerTurn: 1.2, rssAt300: 1.1, addedP99At300: 1.5 };

const FIGURES = [
  'cpuMsPerTurn',
  'cpuMsPerSessionSecond',
  'gcMsPerTurn',
  'rssMaxMb',
  'addedP50',
  'addedP99',
] as const;

function run(variant: RatioVariant, round: number, s: LevelSummary): RatioRun {
  const turns = Math.max(1, s.turns);
  return {
    variant,
    round,
    sessions: s.sessions,
    turns: s.turns,
    failed: s.failedTurns + s.uplinkLostTurns + s.downlinkShortTurns + s.setupFailures,
    cpuMsPerTurn: s.relay.cpuMs / turns,
    cpuMsPerSessionSecond: s.cpuMsPerSessionSecond,
    gcMsPerTurn: s.relay.gc.ms / turns,
    rssMaxMb: s.relay.rssMaxMb,
    addedP50: s.added.p50,
    addedP99: s.added.p99,
    relayCpuCores: s.relay.cpuCores,
    eldP99: s.relay.eld.p99,
    otherCpuCores: s.otherCpuCores,
    upstreamConnects: s.upstreamConnects,
    loadAverage: loadAverage(),
  };
}

const figures = (runs: RatioRun[]): RatioFigures => medianFigures(runs, FIGURES);

export async function measureRatio(
  options: {
    levels: number[];
    rounds: number;
    /** the load of one level (sessions and `relayServer` are set here) */
    level: (sessions: number) => LevelOptions;
  },
  log: (line: string) => void = () => undefined,
): Promise<RatioReport> {
  const loadStart = loadAverage();
  const runs: RatioRun[] = [];
  let durationMs = 0;
  let frameMs = 0;
  for (const sessions of options.levels) {
    for (let round = 1; round <= options.rounds; round++) {
      const order: RatioVariant[] =
        round % 2 === 1 ? ['relay', 'reference'] : ['reference', 'relay'];
      for (const variant of order) {
        const level = options.level(sessions);
        durationMs = level.durationMs;
        frameMs = level.frameMs;
        const s = await runLevel(
          {
            ...level,
            relayServer: variant === 'relay' ? 'relay-server.ts' : 'reference-relay.ts',
          },
          log,
        );
        const r = run(variant, round, s);
        runs.push(r);
        log(
          `  ${variant.padEnd(9)} round ${round}: ${r.turns} turns${r.failed ? ` (${r.failed} failed)` : ''}, CPU ${r.cpuMsPerTurn.toFixed(1)} ms/turn, GC ${r.gcMsPerTurn.toFixed(2)} ms/turn, RSS ${r.rssMaxMb.toFixed(0)} MB, added p50/p99 ${r.addedP50.toFixed(1)}/${r.addedP99.toFixed(1)} ms, upstream connects ${r.upstreamConnects ?? '–'}, load ${r.loadAverage}`,
        );
      }
    }
  }
  const levels = options.levels.map((sessions): RatioLevel => {
    const complete = (variant: RatioVariant) => {
      const all = runs.filter((r) => r.sessions === sessions && r.variant === variant);
      const ok = all.filter((r) => r.turns > 0 && r.failed === 0);
      return ok.length > 0 ? ok : all;
    };
    const relay = figures(complete('relay'));
    const reference = figures(complete('reference'));
    const ratio = {} as RatioFigures;
    for (const k of FIGURES) ratio[k] = relay[k] / reference[k];
    return { sessions, relay, reference, ratio };
  });
  return {
    rounds: options.rounds,
    durationMs,
    frameMs,
    levels,
    runs,
    goals: RATIO_GOALS,
    loadStart,
    loadEnd: loadAverage(),
  };
}
