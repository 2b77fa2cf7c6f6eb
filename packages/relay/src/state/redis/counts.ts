/**
 * Usage counters as flat fields per day per key, the form they take in Redis hashes: the counters
 * of {@link DayUsage}, `audio_in_bytes` (exact, where DayUsage has ms) and `err:<code>`.
 */
import {
  USAGE_COUNTERS,
  type DayUsage,
  type QuotaTotals,
  type UsageDays,
} from '../../policy/usage.js';

export const AUDIO_IN_BYTES = 'audio_in_bytes';
export const ERROR_PREFIX = 'err:';

export type Fields = Map<string, number>;

/** Cumulative differences of floating-point counters leave dust (1e-13) that is not usage. */
const clean = (value: number) => Math.round(value * 1e6) / 1e6;

export class Counts {
  /** day → key id → field → value */
  readonly days = new Map<string, Map<string, Fields>>();

  fields(day: string, keyId: string): Fields {
    let byKey = this.days.get(day);
    if (!byKey) {
      byKey = new Map();
      this.days.set(day, byKey);
    }
    let fields = byKey.get(keyId);
    if (!fields) {
      fields = new Map();
      byKey.set(keyId, fields);
    }
    return fields;
  }

  add(day: string, keyId: string, field: string, value: number): void {
    if (value === 0) return;
    const fields = this.fields(day, keyId);
    fields.set(field, (fields.get(field) ?? 0) + value);
  }

  get(day: string, keyId: string, field: string): number {
    return this.days.get(day)?.get(keyId)?.get(field) ?? 0;
  }

  clone(): Counts {
    const copy = new Counts();
    for (const [day, byKey] of this.days) {
      const keys = new Map<string, Fields>();
      for (const [keyId, fields] of byKey) keys.set(keyId, new Map(fields));
      copy.days.set(day, keys);
    }
    return copy;
  }

  /** What `this` has more than `base` (both cumulative counts of the same stream); zeros left out. */
  minus(base: Counts): Counts {
    const out = new Counts();
    for (const [day, byKey] of this.days) {
      for (const [keyId, fields] of byKey) {
        for (const [field, value] of fields) {
          out.add(day, keyId, field, clean(value - base.get(day, keyId, field)));
        }
      }
    }
    return out;
  }

  isEmpty(): boolean {
    return this.days.size === 0;
  }

  /** Forgets days before `day` (`YYYY-MM-DD`). */
  dropBefore(day: string): void {
    for (const date of this.days.keys()) if (date < day) this.days.delete(date);
  }

  /** As {@link UsageDays}, what a {@link UsageLedger} adds. */
  toUsageDays(): UsageDays {
    const out: UsageDays = {};
    for (const [day, byKey] of this.days) {
      out[day] = {};
      for (const [keyId, fields] of byKey) out[day][keyId] = dayUsage(day, fields);
    }
    return out;
  }
}

export function dayUsage(date: string, fields: Fields): DayUsage {
  const day: DayUsage = {
    date,
    sessions: 0,
    sockets: 0,
    turns: 0,
    audio_in_ms: (fields.get(AUDIO_IN_BYTES) ?? 0) / 32,
    audio_out_ms: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    tts_chars: 0,
    speculative_confirmed: 0,
    speculative_discarded: 0,
    errors: {},
  };
  for (const counter of USAGE_COUNTERS) day[counter] = fields.get(counter) ?? 0;
  for (const [field, value] of fields) {
    if (field.startsWith(ERROR_PREFIX)) day.errors[field.slice(ERROR_PREFIX.length)] = value;
  }
  return day;
}

/** The fields a day's hash starts from when it is seeded with a ledger's totals. */
export function quotaFields(totals: QuotaTotals[string] | undefined): Fields {
  const fields: Fields = new Map();
  if (!totals) return fields;
  if (totals.audioBytes) fields.set(AUDIO_IN_BYTES, totals.audioBytes);
  // The ledger gives tokens as one sum; quotas only ever read the sum.
  if (totals.tokens) fields.set('prompt_tokens', totals.tokens);
  if (totals.ttsChars) fields.set('tts_chars', totals.ttsChars);
  return fields;
}
