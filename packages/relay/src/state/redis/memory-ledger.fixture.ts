/** For the Redis state's tests: a usage ledger (the database's part) in memory. */
import assert from 'node:assert/strict';
import {
  UsageTracker,
  type DayUsage,
  type QuotaTotals,
  type UsageDays,
  type UsageLedger,
} from '../../policy/usage.js';

/** A ledger in memory that records every write (and can be told to fail). */
export class MemoryLedger implements UsageLedger {
  readonly writes: UsageDays[] = [];
  private readonly stored = new UsageTracker();
  failing = false;

  async add(days: UsageDays): Promise<void> {
    if (this.failing) throw new Error('database unreachable');
    this.writes.push(structuredClone(days));
    this.stored.merge(days);
  }

  async totals(date: string): Promise<QuotaTotals> {
    const out: QuotaTotals = {};
    for (const [keyId, day] of Object.entries(this.stored.export()[date] ?? {}))
      out[keyId] = {
        audioBytes: Math.round(day.audio_in_ms * 32),
        tokens: day.prompt_tokens + day.completion_tokens,
        ttsChars: day.tts_chars,
      };
    return out;
  }

  async history(keyId: string, days: number): Promise<DayUsage[]> {
    return this.stored.history(keyId, days);
  }

  /** Every write for a key today, added up. */
  today(keyId: string): DayUsage {
    const [day] = this.stored.history(keyId, 1);
    assert.ok(day);
    return day;
  }
}
