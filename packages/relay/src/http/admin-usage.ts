/**
 * Usage across keys, for the console's charts (mounted by admin.ts, behind its authentication):
 *
 *   GET /admin/usage?days=7|30|90[&key=ID]   per UTC day (oldest first): totals and per key
 *   GET /admin/usage/live                    open sessions now, turns in the last minute (fleet-wide,
 *                                            counted as turns end: policy/turn-rate.ts)
 *   GET /admin/usage/latency?days=7|30|90    per-turn latency percentiles per day (p50, p90, p99
 *                                            of STT, time to first token, first audio), from the
 *                                            turns conversation records stored (bots with records)
 */
import { Hono } from 'hono';
import type { Kysely } from 'kysely';
import type { TurnMetrics } from '@voice-bot/protocol';
import { RelayError } from './errors.js';
import type { KeyStore } from '../auth/keys.js';
import type { SharedState } from '../state/shared-state.js';
import type { DayUsage, UsageStore } from '../policy/usage.js';
import type { Schema } from '../store/schema.js';
import { TurnRate } from '../policy/turn-rate.js';

const DAYS = new Set([1, 7, 30, 90]);
const DAY_MS = 86_400_000;
/** Turns read for the latency figures at most (the newest). */
const MAX_LATENCY_TURNS = 50_000;

export interface UsageAdminDeps {
  keys: KeyStore;
  usage: UsageStore;
  state: Pick<SharedState, 'slots' | 'rateLimiter'>;
  /** The relay's database (records' turns), read for the latency figures. */
  db?: () => Promise<Kysely<Schema>>;
  now?: () => number;
}

export interface UsageDayView {
  date: string;
  sessions: number;
  turns: number;
  audio_in_minutes: number;
  audio_out_minutes: number;
  llm_tokens: number;
  errors: Record<string, number>;
}

const minutes = (ms: number) => Math.round((ms / 60_000) * 1000) / 1000;

function dayView(day: DayUsage): UsageDayView {
  return {
    date: day.date,
    sessions: day.sessions,
    turns: day.turns,
    audio_in_minutes: minutes(day.audio_in_ms),
    audio_out_minutes: minutes(day.audio_out_ms),
    llm_tokens: day.prompt_tokens + day.completion_tokens,
    errors: { ...day.errors },
  };
}

function addInto(total: UsageDayView, day: UsageDayView): void {
  total.sessions += day.sessions;
  total.turns += day.turns;
  total.audio_in_minutes =
    Math.round((total.audio_in_minutes + day.audio_in_minutes) * 1000) / 1000;
  total.audio_out_minutes =
    Math.round((total.audio_out_minutes + day.audio_out_minutes) * 1000) / 1000;
  total.llm_tokens += day.llm_tokens;
  for (const [code, n] of Object.entries(day.errors))
    total.errors[code] = (total.errors[code] ?? 0) + n;
}

/** The value at fraction `p` of sorted numbers (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index] ?? null;
}

const FIGURES = ['stt_ms', 'llm_ttft_ms', 'first_audio_ms'] as const;

export function usageAdmin(deps: UsageAdminDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;
  const turnRate = TurnRate.of(deps.state);

  const daysOf = (value: string | undefined, fallback: number): number => {
    const days = Number(value ?? fallback);
    if (!DAYS.has(days)) throw new RelayError('bad_request', 400, 'days must be 1, 7, 30 or 90');
    return days;
  };

  app.get('/usage', async (c) => {
    const days = daysOf(c.req.query('days'), 7);
    const only = c.req.query('key');
    const keys = await deps.keys.list();
    if (only !== undefined && !keys.some((k) => k.id === only))
      throw new RelayError('not_found', 404, 'no key with that id');
    const chosen = only === undefined ? keys : keys.filter((k) => k.id === only);
    const histories = await Promise.all(
      chosen.map(async (key) => ({
        key,
        days: (await deps.usage.history(key.id, days)).map(dayView).reverse(),
      })),
    );
    const dates = Array.from({ length: days }, (_, i) =>
      new Date(now() - (days - 1 - i) * DAY_MS).toISOString().slice(0, 10),
    );
    const totals = dates.map((date) => {
      const total: UsageDayView = {
        date,
        sessions: 0,
        turns: 0,
        audio_in_minutes: 0,
        audio_out_minutes: 0,
        llm_tokens: 0,
        errors: {},
      };
      for (const history of histories) {
        const day = history.days.find((d) => d.date === date);
        if (day) addInto(total, day);
      }
      return total;
    });
    return c.json({
      days,
      totals,
      keys: histories.map(({ key, days: list }) => ({
        key_id: key.id,
        label: key.label,
        revoked: key.revoked_at !== null && key.revoked_at !== undefined,
        days: list,
      })),
    });
  });

  app.get('/usage/live', async (c) => {
    const keys = await deps.keys.list();
    const counts = await Promise.all(keys.map((k) => deps.state.slots.count(k.id)));
    const open = counts.reduce((n, count) => n + count.open, 0);
    const today = await Promise.all(keys.map((k) => deps.usage.history(k.id, 1)));
    const turns = today.reduce((n, list) => n + (list[0]?.turns ?? 0), 0);
    const at = now();
    // Null only when the shared state (Redis) does not answer.
    const perMinute = await turnRate.perMinute().catch(() => null);
    return c.json({
      at: new Date(at).toISOString(),
      open_sessions: open,
      turns_today: turns,
      turns_per_minute: perMinute,
    });
  });

  app.get('/usage/latency', async (c) => {
    const days = daysOf(c.req.query('days'), 7);
    const dates = Array.from({ length: days }, (_, i) =>
      new Date(now() - (days - 1 - i) * DAY_MS).toISOString().slice(0, 10),
    );
    const from = Date.parse(`${dates[0]}T00:00:00Z`);
    const byDay = new Map(dates.map((d) => [d, FIGURES.map(() => [] as number[])]));
    const turnsByDay = new Map<string, number>();
    if (deps.db) {
      const db = await deps.db();
      const rows = await db
        .selectFrom('conversation_record_turns')
        .select(['at', 'metrics'])
        .where('at', '>=', from)
        .where('metrics', 'is not', null)
        .orderBy('at', 'desc')
        .limit(MAX_LATENCY_TURNS)
        .execute();
      for (const row of rows) {
        const date = new Date(Number(row.at)).toISOString().slice(0, 10);
        const lists = byDay.get(date);
        if (!lists || row.metrics === null) continue;
        turnsByDay.set(date, (turnsByDay.get(date) ?? 0) + 1);
        const metrics = JSON.parse(row.metrics) as TurnMetrics;
        FIGURES.forEach((figure, i) => {
          const value = metrics[figure];
          if (typeof value === 'number' && Number.isFinite(value)) lists[i]?.push(value);
        });
      }
    }
    return c.json({
      days,
      source: 'conversation records (bots with records on)',
      series: dates.map((date) => {
        const lists = byDay.get(date) ?? [];
        const entry: Record<string, unknown> = { date, turns: turnsByDay.get(date) ?? 0 };
        FIGURES.forEach((figure, i) => {
          const sorted = [...(lists[i] ?? [])].sort((a, b) => a - b);
          entry[figure] = {
            n: sorted.length,
            p50: percentile(sorted, 0.5),
            p90: percentile(sorted, 0.9),
            p99: percentile(sorted, 0.99),
          };
        });
        return entry;
      }),
    });
  });

  return app;
}
