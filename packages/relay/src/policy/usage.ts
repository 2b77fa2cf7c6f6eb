/** One key's usage on one UTC day. */
export interface DayUsage {
  /** `YYYY-MM-DD` (UTC). */
  date: string;
  /** Session tokens issued. */
  sessions: number;
  /** Sockets opened. */
  sockets: number;
  /** Turns that ended (done or error). */
  turns: number;
  /** Visitor audio received, in milliseconds (16 kHz PCM16: 32 bytes per ms). */
  audio_in_ms: number;
  /** Assistant audio sent, in milliseconds. */
  audio_out_ms: number;
  /** Prompt tokens: estimated when a request is sent, corrected by the provider's reported usage. */
  prompt_tokens: number;
  completion_tokens: number;
  /** Characters sent to speech synthesis. */
  tts_chars: number;
  /** Speculative turns (started at a `pause`) that `commit` confirmed. */
  speculative_confirmed: number;
  /** Speculative turns dropped (`resume`, more audio, other input, or no commit in time): their requests stay charged. */
  speculative_discarded: number;
  /** Errors sent on this key's sockets and limit refusals, by code. */
  errors: Record<string, number>;
}

const DAY_MS = 86_400_000;
/** The last day `utcDay` formatted (it is asked for every audio frame, almost always the same day). */
let cachedDay = { start: Number.NaN, text: '' };

/** `YYYY-MM-DD` (UTC) of `now`. */
export function utcDay(now = Date.now()): string {
  const start = now - (((now % DAY_MS) + DAY_MS) % DAY_MS);
  if (start !== cachedDay.start)
    cachedDay = { start, text: new Date(start).toISOString().slice(0, 10) };
  return cachedDay.text;
}

function emptyDay(date: string): DayUsage {
  return {
    date,
    sessions: 0,
    sockets: 0,
    turns: 0,
    audio_in_ms: 0,
    audio_out_ms: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    tts_chars: 0,
    speculative_confirmed: 0,
    speculative_discarded: 0,
    errors: {},
  };
}

/** The counters of {@link DayUsage} that are plain sums (audio in, counted in bytes, and errors, by code, are not). */
export const USAGE_COUNTERS = [
  'sessions',
  'sockets',
  'turns',
  'audio_out_ms',
  'prompt_tokens',
  'completion_tokens',
  'tts_chars',
  'speculative_confirmed',
  'speculative_discarded',
] as const;

/** Amounts to add (negative to correct an estimate). */
export type UsageChange = Partial<Pick<DayUsage, (typeof USAGE_COUNTERS)[number]>>;

/** What a provider request costs, in the units the quotas count. */
export type ProviderCost = Pick<UsageChange, 'prompt_tokens' | 'completion_tokens' | 'tts_chars'>;

/** Usage of every key on one or more days: date → key id → usage. */
export type UsageDays = Record<string, Record<string, DayUsage>>;

/** Today's figures the quotas are checked against, per key. */
export type QuotaTotals = Record<string, { audioBytes: number; tokens: number; ttsChars: number }>;

/**
 * Where usage counters are kept for good (the database: SQLite or PostgreSQL). Counters are added,
 * never overwritten, so several processes or relays can each add what they counted.
 */
export interface UsageLedger {
  /** Adds these counters to the stored ones, all rows in one transaction. */
  add(days: UsageDays): Promise<void>;
  /** Every key's totals on `date` (`YYYY-MM-DD`): where the quotas start after a restart. */
  totals(date: string): Promise<QuotaTotals>;
  /** The last `days` days (today first) for a key; days without usage are included as zeros. */
  history(keyId: string, days: number, now?: number): Promise<DayUsage[]>;
}

/** What quotas, limits and the admin API need from the usage counters. */
export interface UsageStore {
  load(): Promise<void>;
  /** Today's visitor audio for a key, in bytes of 16 kHz PCM16. */
  audioBytesToday(keyId: string): number;
  tokensToday(keyId: string): number;
  ttsCharsToday(keyId: string): number;
  addAudioIn(keyId: string, bytes: number): void;
  add(keyId: string, change: UsageChange): void;
  error(keyId: string, code: string): void;
  /** The last `days` days (today first) for a key; days without usage are included as zeros. */
  history(keyId: string, days?: number): DayUsage[] | Promise<DayUsage[]>;
  close(): Promise<void>;
}

/**
 * Usage counters per key per UTC day — what quotas are checked against and what
 * `GET /admin/keys/:id/usage` reports. With a `ledger` (the database), `load` starts from today's
 * stored totals (so daily quotas survive a restart) and what is counted here is added to the
 * ledger every `flushMs` and on `close`: only the counts since the last flush, so several
 * processes or relays sharing the ledger each add theirs. A flush that fails keeps its counts
 * for the next one (never lost, never added twice). Without a ledger everything stays in memory;
 * days older than `retainDays` are dropped.
 */
export class UsageTracker<L extends UsageLedger | undefined = undefined> implements UsageStore {
  /**
   * date → key id → usage counted here: everything (no ledger), or what the ledger does not have
   * yet (with one).
   */
  private days = new Map<string, Map<string, DayUsage>>();
  /** Audio is counted in bytes so quotas trip exactly; exposed in ms. Keyed by the day's record. */
  private readonly audioBytes = new WeakMap<DayUsage, number>();
  /** Today's totals read from the ledger (every process's, this one's flushed counts included). */
  private base: { date: string; totals: QuotaTotals } = { date: '', totals: {} };
  /** Counts being written: still counted here until the ledger's new totals are read. */
  private inflight: UsageTracker | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly options: {
      /** Where the counts are kept for good; without one, `history` answers from memory (synchronously). */
      ledger?: L;
      flushMs?: number;
      retainDays?: number;
      now?: () => number;
    } = {},
  ) {}

  /** Reads today's totals from the ledger, if any (a failure leaves them as they were). */
  async load(): Promise<void> {
    await this.refresh();
  }

  private async refresh(): Promise<boolean> {
    const ledger = this.options.ledger;
    if (!ledger) return true;
    const date = utcDay(this.now());
    try {
      this.base = { date, totals: await ledger.totals(date) };
      return true;
    } catch {
      return false;
    }
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** Today's record for a key (created on first use). */
  today(keyId: string): DayUsage {
    const date = utcDay(this.now());
    let byKey = this.days.get(date);
    if (!byKey) {
      byKey = new Map();
      this.days.set(date, byKey);
      this.prune();
    }
    let day = byKey.get(keyId);
    if (!day) {
      day = emptyDay(date);
      byKey.set(keyId, day);
    }
    return day;
  }

  private baseToday(keyId: string): QuotaTotals[string] | undefined {
    return this.base.date === utcDay(this.now()) ? this.base.totals[keyId] : undefined;
  }

  /** Today's visitor audio for a key, in bytes of 16 kHz PCM16. */
  audioBytesToday(keyId: string): number {
    const day = this.days.get(utcDay(this.now()))?.get(keyId);
    return (
      (day ? (this.audioBytes.get(day) ?? 0) : 0) +
      (this.baseToday(keyId)?.audioBytes ?? 0) +
      (this.inflight?.audioBytesToday(keyId) ?? 0)
    );
  }

  tokensToday(keyId: string): number {
    const day = this.days.get(utcDay(this.now()))?.get(keyId);
    return (
      (day ? day.prompt_tokens + day.completion_tokens : 0) +
      (this.baseToday(keyId)?.tokens ?? 0) +
      (this.inflight?.tokensToday(keyId) ?? 0)
    );
  }

  ttsCharsToday(keyId: string): number {
    return (
      (this.days.get(utcDay(this.now()))?.get(keyId)?.tts_chars ?? 0) +
      (this.baseToday(keyId)?.ttsChars ?? 0) +
      (this.inflight?.ttsCharsToday(keyId) ?? 0)
    );
  }

  addAudioIn(keyId: string, bytes: number): void {
    const day = this.today(keyId);
    const total = (this.audioBytes.get(day) ?? 0) + bytes;
    this.audioBytes.set(day, total);
    day.audio_in_ms = total / 32;
    this.changed();
  }

  add(keyId: string, change: UsageChange): void {
    const day = this.today(keyId);
    for (const [field, value] of Object.entries(change) as [keyof typeof change, number][])
      day[field] += value;
    this.changed();
  }

  error(keyId: string, code: string): void {
    const day = this.today(keyId);
    day.errors[code] = (day.errors[code] ?? 0) + 1;
    this.changed();
  }

  /** The counters counted here (a copy): what a cluster worker hands its primary. */
  export(): UsageDays {
    const out: UsageDays = {};
    for (const [date, byKey] of this.days) {
      out[date] = {};
      for (const [keyId, day] of byKey) out[date][keyId] = { ...day, errors: { ...day.errors } };
    }
    return out;
  }

  /** Adds counters counted elsewhere (a cluster worker's) to these. */
  merge(days: UsageDays): void {
    for (const [date, byKey] of Object.entries(days)) {
      let map = this.days.get(date);
      if (!map) {
        map = new Map();
        this.days.set(date, map);
      }
      for (const [keyId, change] of Object.entries(byKey)) {
        let day = map.get(keyId);
        if (!day) {
          day = emptyDay(date);
          map.set(keyId, day);
        }
        for (const field of USAGE_COUNTERS) day[field] += change[field] ?? 0;
        for (const [code, count] of Object.entries(change.errors ?? {}))
          day.errors[code] = (day.errors[code] ?? 0) + count;
        // audio_in_ms is bytes / 32 of whole 16-bit samples: × 32 gives the bytes back exactly.
        const bytes = (this.audioBytes.get(day) ?? 0) + Math.round((change.audio_in_ms ?? 0) * 32);
        this.audioBytes.set(day, bytes);
        day.audio_in_ms = bytes / 32;
      }
    }
    this.prune();
    this.changed();
  }

  /** Today's audio bytes and tokens of every key that has used any. */
  quotaTotals(): QuotaTotals {
    const date = utcDay(this.now());
    const keys = new Set<string>([
      ...(this.days.get(date)?.keys() ?? []),
      ...(this.base.date === date ? Object.keys(this.base.totals) : []),
      ...(this.inflight ? Object.keys(this.inflight.quotaTotals()) : []),
    ]);
    const out: QuotaTotals = {};
    for (const keyId of keys)
      out[keyId] = {
        audioBytes: this.audioBytesToday(keyId),
        tokens: this.tokensToday(keyId),
        ttsChars: this.ttsCharsToday(keyId),
      };
    return out;
  }

  /** The last `days` days (today first) for a key; days without usage are included as zeros. */
  history(keyId: string, days = 1): L extends UsageLedger ? Promise<DayUsage[]> : DayUsage[] {
    const ledger = this.options.ledger;
    if (ledger) return this.flush().then(() => ledger.history(keyId, days, this.now())) as never;
    const out: DayUsage[] = [];
    const now = this.now();
    for (let i = 0; i < days; i++) {
      const date = utcDay(now - i * DAY_MS);
      const day = this.days.get(date)?.get(keyId);
      out.push(day ? { ...day, errors: { ...day.errors } } : emptyDay(date));
    }
    return out as never;
  }

  private prune(): void {
    const cutoff = utcDay(this.now() - (this.options.retainDays ?? 31) * DAY_MS);
    for (const date of this.days.keys()) {
      if (date < cutoff) this.days.delete(date); // its audio byte counts go with its records
    }
  }

  private changed(): void {
    if (!this.options.ledger || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, this.options.flushMs ?? 2_000);
    this.flushTimer.unref();
  }

  /**
   * Adds what was counted since the last flush to the ledger, then reads today's totals back.
   * When the write fails the counts stay here for the next flush.
   */
  flush(): Promise<void> {
    const ledger = this.options.ledger;
    if (!ledger) return Promise.resolve();
    this.flushing ??= (async () => {
      try {
        if (this.days.size > 0) {
          const batch = new UsageTracker();
          batch.merge(this.export());
          this.days = new Map();
          this.inflight = batch;
          try {
            await ledger.add(batch.export());
          } catch {
            this.inflight = undefined;
            this.merge(batch.export());
            return;
          }
          // Written: the ledger's totals now hold it. Until they are read, it stays counted here.
          if (!(await this.refresh())) this.foldIntoBase(batch);
          this.inflight = undefined;
        } else await this.refresh();
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Adds a written batch's today to the base totals (when they could not be read again). */
  private foldIntoBase(batch: UsageTracker): void {
    const date = utcDay(this.now());
    if (this.base.date !== date) this.base = { date, totals: {} };
    for (const [keyId, add] of Object.entries(batch.quotaTotals())) {
      const current = this.base.totals[keyId] ?? { audioBytes: 0, tokens: 0, ttsChars: 0 };
      this.base.totals[keyId] = {
        audioBytes: current.audioBytes + add.audioBytes,
        tokens: current.tokens + add.tokens,
        ttsChars: current.ttsChars + add.ttsChars,
      };
    }
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing;
    await this.flush();
  }
}
