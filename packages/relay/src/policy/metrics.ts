import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorCode, TurnMetrics } from '@voice-bot/protocol';
import type { CircuitReading, ProviderObserver, ProviderOutcome } from '../providers/failover.js';

/** Latency buckets in milliseconds: 25 ms … 30 s. */
const MS_BUCKETS = [
  25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 30_000,
];

/** Which `done.metrics` field feeds which histogram. */
const STAGE_HISTOGRAMS = {
  stt_ms: ['voicebot_stt_ms', 'Speech recognition time per audio turn (ms).'],
  llm_ttft_ms: ['voicebot_llm_ttft_ms', 'Time from the LLM request to its first token (ms).'],
  first_sentence_ms: [
    'voicebot_first_sentence_ms',
    'Turn start to the first complete sentence (ms).',
  ],
  tts_ttfb_ms: [
    'voicebot_tts_ttfb_ms',
    'Time from the first TTS request to its first audio byte (ms).',
  ],
  first_audio_ms: [
    'voicebot_first_audio_ms',
    'Turn start to the first audio frame sent to the client (ms).',
  ],
  total_ms: ['voicebot_turn_total_ms', 'Turn start to done (ms).'],
} as const satisfies Partial<Record<keyof TurnMetrics, readonly [string, string]>>;

type StageField = keyof typeof STAGE_HISTOGRAMS;

/**
 * Prometheus metrics of one relay, in its own registry (so several relays — or tests — in one
 * process never share or clash). Exposed at `GET /metrics` when enabled.
 */
export class RelayMetrics implements ProviderObserver {
  readonly registry = new Registry();
  private readonly sessionsTotal: Counter;
  private readonly sessionRequests: Counter<'result'>;
  private readonly turns: Counter<'outcome'>;
  private readonly speculativeTurns: Counter<'outcome'>;
  private readonly errors: Counter<'code'>;
  private readonly upstreamErrors: Counter<'stage'>;
  /** WebSocket payload bytes, added up here (per frame) and handed to prom-client at scrape time. */
  private readonly byteTotals = { in: { audio: 0, json: 0 }, out: { audio: 0, json: 0 } };
  private readonly histograms: Record<StageField, Histogram>;
  private readonly providerRequests: Counter<'stage' | 'provider' | 'outcome'>;
  private readonly providerFailovers: Counter<'stage' | 'from' | 'to'>;
  private circuitReadings: () => CircuitReading[] = () => [];

  constructor(activeSessions: () => number) {
    const registers = [this.registry];
    new Gauge({
      name: 'voicebot_sessions_active',
      help: 'Open /v1/talk sockets.',
      registers,
      collect() {
        this.set(activeSessions());
      },
    });
    this.sessionsTotal = new Counter({
      name: 'voicebot_sessions_total',
      help: 'Sockets opened on /v1/talk.',
      registers,
    });
    this.sessionRequests = new Counter({
      name: 'voicebot_session_requests_total',
      help: 'POST /v1/sessions by result (issued, or the refusal code).',
      labelNames: ['result'],
      registers,
    });
    this.turns = new Counter({
      name: 'voicebot_turns_total',
      help: 'Turns ended, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.speculativeTurns = new Counter({
      name: 'voicebot_speculative_turns_total',
      help: 'Speculative turns (started at a pause) by outcome: confirmed by commit, or discarded (their requests were still paid for).',
      labelNames: ['outcome'],
      registers,
    });
    // Both series exist from the start, so a discard ratio can be computed before the first one.
    for (const outcome of ['confirmed', 'discarded']) this.speculativeTurns.inc({ outcome }, 0);
    this.errors = new Counter({
      name: 'voicebot_errors_total',
      help: 'Errors sent (WebSocket) or answered (HTTP), by code.',
      labelNames: ['code'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'voicebot_upstream_errors_total',
      help: 'Provider failures that ended a turn, by stage (stt, llm, tts; timeout when the stage is unknown).',
      labelNames: ['stage'],
      registers,
    });
    const byteTotals = this.byteTotals;
    new Counter({
      name: 'voicebot_bytes_total',
      help: 'WebSocket payload bytes, by direction (in, out) and kind (audio, json).',
      labelNames: ['direction', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const direction of ['in', 'out'] as const) {
          for (const kind of ['audio', 'json'] as const)
            this.inc({ direction, kind }, byteTotals[direction][kind]);
        }
      },
    });
    const entries = Object.entries(STAGE_HISTOGRAMS) as [StageField, readonly [string, string]][];
    this.histograms = Object.fromEntries(
      entries.map(([field, [name, help]]) => [
        field,
        new Histogram({ name, help, buckets: MS_BUCKETS, registers }),
      ]),
    ) as Record<StageField, Histogram>;
    this.providerRequests = new Counter({
      name: 'voicebot_provider_requests_total',
      help: 'Requests to each provider by stage and outcome (ok, rate_limited, server_error, auth_error, client_error, connect_error, timeout, aborted).',
      labelNames: ['stage', 'provider', 'outcome'],
      registers,
    });
    this.providerFailovers = new Counter({
      name: 'voicebot_provider_failovers_total',
      help: 'Requests moved from a failing provider to the next one of the stage.',
      labelNames: ['stage', 'from', 'to'],
      registers,
    });
    const readings = () => this.circuitReadings();
    new Gauge({
      name: 'voicebot_provider_circuit_state',
      help: "Each provider's circuit breaker: 0 closed, 1 half-open (probing), 2 open (skipped).",
      labelNames: ['stage', 'provider'],
      registers,
      // `serve --workers`: each worker has its own circuits; the worst state is reported.
      aggregator: 'max',
      collect() {
        for (const { stage, provider, state } of readings())
          this.set({ stage, provider }, CIRCUIT_VALUES[state]);
      },
    });
  }

  providerRequest(stage: string, provider: string, outcome: ProviderOutcome): void {
    this.providerRequests.inc({ stage, provider, outcome });
  }

  providerFailover(stage: string, from: string, to: string): void {
    this.providerFailovers.inc({ stage, from, to });
  }

  watchCircuits(read: () => CircuitReading[]): void {
    this.circuitReadings = read;
  }

  sessionOpened(): void {
    this.sessionsTotal.inc();
  }

  sessionRequest(result: 'issued' | ErrorCode): void {
    this.sessionRequests.inc({ result });
  }

  error(code: string, message?: string): void {
    this.errors.inc({ code });
    if (code.startsWith('upstream_'))
      this.upstreamErrors.inc({ stage: upstreamStage(code, message) });
  }

  turnEnded(outcome: 'done' | 'interrupted' | 'error', metrics?: TurnMetrics): void {
    this.turns.inc({ outcome });
    if (!metrics) return;
    for (const field of Object.keys(STAGE_HISTOGRAMS) as StageField[]) {
      const value = metrics[field];
      if (typeof value === 'number' && Number.isFinite(value))
        this.histograms[field].observe(value);
    }
  }

  speculativeTurnEnded(outcome: 'confirmed' | 'discarded'): void {
    this.speculativeTurns.inc({ outcome });
  }

  bytesIn(kind: 'audio' | 'json', bytes: number): void {
    this.byteTotals.in[kind] += bytes;
  }

  bytesOut(kind: 'audio' | 'json', bytes: number): void {
    this.byteTotals.out[kind] += bytes;
  }
}

const CIRCUIT_VALUES = { closed: 0, half_open: 1, open: 2 } as const;

/** `upstream_stt|llm|tts` name their stage; `upstream_timeout` names it in its message. */
function upstreamStage(code: string, message = ''): string {
  const named = /^upstream_(stt|llm|tts)$/.exec(code)?.[1];
  if (named) return named;
  if (message.includes('speech recognition')) return 'stt';
  if (message.includes('language model')) return 'llm';
  if (message.includes('speech synthesis')) return 'tts';
  return 'timeout';
}
