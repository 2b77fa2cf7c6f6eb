import { sql, type Kysely, type RawBuilder } from 'kysely';
import {
  USAGE_COUNTERS,
  utcDay,
  type DayUsage,
  type QuotaTotals,
  type UsageDays,
  type UsageLedger,
} from '../policy/usage.js';
import type { DbHandle } from './database.js';
import type { Schema } from './schema.js';

const DAY_MS = 86_400_000;

const COUNTERS = [...USAGE_COUNTERS, 'audio_in_bytes'] as const;
type Counter = (typeof COUNTERS)[number];

/** The stored counters of one `DayUsage` (audio in as exact bytes: ms × 32). */
function counters(day: Partial<DayUsage>): Record<Counter, number> {
  return {
    sessions: day.sessions ?? 0,
    sockets: day.sockets ?? 0,
    turns: day.turns ?? 0,
    // audio_in_ms is bytes / 32 of whole 16-bit samples: × 32 gives the bytes back exactly.
    audio_in_bytes: Math.round((day.audio_in_ms ?? 0) * 32),
    audio_out_ms: Math.round(day.audio_out_ms ?? 0),
    prompt_tokens: Math.round(day.prompt_tokens ?? 0),
    completion_tokens: Math.round(day.completion_tokens ?? 0),
    tts_chars: day.tts_chars ?? 0,
    speculative_confirmed: day.speculative_confirmed ?? 0,
    speculative_discarded: day.speculative_discarded ?? 0,
  };
}

/**
 * Usage per key per UTC day in `usage_days`. `add` only ever adds (`x = x + excluded.x`), so
 * every relay and process sharing the database adds what it counted, and totals are exact.
 */
export class DbUsageLedger implements UsageLedger {
  constructor(private readonly handle: DbHandle) {}

  async add(days: UsageDays): Promise<void> {
    const rows = Object.entries(days).flatMap(([day, byKey]) =>
      Object.entries(byKey).map(([keyId, usage]) => ({ day, keyId, usage })),
    );
    if (rows.length === 0) return;
    await this.handle.write(async (trx) => {
      for (const { day, keyId, usage } of rows) {
        await trx
          .insertInto('usage_days')
          .values({ day, key_id: keyId, ...counters(usage), errors: '{}' })
          .onConflict((oc) =>
            oc
              .columns(['day', 'key_id'])
              .doUpdateSet(
                Object.fromEntries(
                  COUNTERS.map((c) => [
                    c,
                    sql<number>`${sql.ref(`usage_days.${c}`)} + ${sql.ref(`excluded.${c}`)}`,
                  ]),
                ) as Record<Counter, RawBuilder<number>>,
              ),
          )
          .execute();
        const errors = Object.entries(usage.errors ?? {}).filter(([, n]) => n !== 0);
        if (errors.length === 0) continue;
        // The upsert above holds the row (and on SQLite the write lock) until commit: no lost update.
        const row = await trx
          .selectFrom('usage_days')
          .select('errors')
          .where('day', '=', day)
          .where('key_id', '=', keyId)
          .executeTakeFirstOrThrow();
        const merged = JSON.parse(row.errors) as Record<string, number>;
        for (const [code, n] of errors) merged[code] = (merged[code] ?? 0) + n;
        await trx
          .updateTable('usage_days')
          .set({ errors: JSON.stringify(merged) })
          .where('day', '=', day)
          .where('key_id', '=', keyId)
          .execute();
      }
    });
  }

  async totals(date: string): Promise<QuotaTotals> {
    const db = await this.handle.get();
    const rows = await db
      .selectFrom('usage_days')
      .select(['key_id', 'audio_in_bytes', 'prompt_tokens', 'completion_tokens', 'tts_chars'])
      .where('day', '=', date)
      .execute();
    const out: QuotaTotals = {};
    for (const row of rows)
      out[row.key_id] = {
        audioBytes: Number(row.audio_in_bytes),
        tokens: Number(row.prompt_tokens) + Number(row.completion_tokens),
        ttsChars: Number(row.tts_chars),
      };
    return out;
  }

  async history(keyId: string, days: number, now = Date.now()): Promise<DayUsage[]> {
    const dates = Array.from({ length: Math.max(1, days) }, (_, i) => utcDay(now - i * DAY_MS));
    const db: Kysely<Schema> = await this.handle.get();
    const rows = await db
      .selectFrom('usage_days')
      .selectAll()
      .where('key_id', '=', keyId)
      .where('day', 'in', dates)
      .execute();
    const byDay = new Map(rows.map((row) => [row.day, row]));
    return dates.map((date) => {
      const row = byDay.get(date);
      return {
        date,
        sessions: Number(row?.sessions ?? 0),
        sockets: Number(row?.sockets ?? 0),
        turns: Number(row?.turns ?? 0),
        audio_in_ms: Number(row?.audio_in_bytes ?? 0) / 32,
        audio_out_ms: Number(row?.audio_out_ms ?? 0),
        prompt_tokens: Number(row?.prompt_tokens ?? 0),
        completion_tokens: Number(row?.completion_tokens ?? 0),
        tts_chars: Number(row?.tts_chars ?? 0),
        speculative_confirmed: Number(row?.speculative_confirmed ?? 0),
        speculative_discarded: Number(row?.speculative_discarded ?? 0),
        errors: row ? (JSON.parse(row.errors) as Record<string, number>) : {},
      };
    });
  }
}
