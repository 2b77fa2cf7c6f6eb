import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

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
  /** Errors sent on this key's sockets and limit refusals, by code. */
  errors: Record<string, number>;
}

interface UsageFile {
  version: 1;
  days: Record<string, Record<string, DayUsage>>;
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
    errors: {},
  };
}

const COUNTERS = [
  'sessions',
  'sockets',
  'turns',
  'audio_out_ms',
  'prompt_tokens',
  'completion_tokens',
  'tts_chars',
] as const;

/** Amounts to add (negative to correct an estimate). */
export type UsageChange = Partial<Pick<DayUsage, (typeof COUNTERS)[number]>>;

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
 * In-memory usage counters per key per UTC day — what quotas are checked against and what
 * `GET /admin/keys/:id/usage` reports. Optionally persisted to a JSON file (written at most every
 * `flushMs`, and on `close`), so daily quotas survive a restart. Days older than `retainDays` are dropped.
 */
export class UsageTracker implements UsageStore {
  /** date → key id → usage */
  private readonly days = new Map<string, Map<string, DayUsage>>();
  /** Audio is counted in bytes so quotas trip exactly; exposed in ms. Keyed by the day's record. */
  private readonly audioBytes = new WeakMap<DayUsage, number>();
  private dirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: {
      file?: string;
      flushMs?: number;
      retainDays?: number;
      now?: () => number;
    } = {},
  ) {}

  /** Loads the persisted file, if any. */
  async load(): Promise<void> {
    const file = this.options.file;
    if (!file || !existsSync(file)) return;
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<UsageFile>;
      for (const [date, byKey] of Object.entries(parsed.days ?? {})) {
        const map = new Map<string, DayUsage>();
        for (const [keyId, day] of Object.entries(byKey)) {
          const record: DayUsage = { ...emptyDay(date), ...day, errors: { ...day.errors } };
          map.set(keyId, record);
          this.audioBytes.set(record, Math.round((day.audio_in_ms ?? 0) * 32));
        }
        this.days.set(date, map);
      }
    } catch {
      // A corrupt usage file must not stop the relay; counting restarts from zero.
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

  /** Today's visitor audio for a key, in bytes of 16 kHz PCM16. */
  audioBytesToday(keyId: string): number {
    const day = this.days.get(utcDay(this.now()))?.get(keyId);
    return day ? (this.audioBytes.get(day) ?? 0) : 0;
  }

  tokensToday(keyId: string): number {
    const day = this.days.get(utcDay(this.now()))?.get(keyId);
    return day ? day.prompt_tokens + day.completion_tokens : 0;
  }

  ttsCharsToday(keyId: string): number {
    return this.days.get(utcDay(this.now()))?.get(keyId)?.tts_chars ?? 0;
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

  /** Every counter (a copy): what a cluster worker hands its primary. */
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
        for (const field of COUNTERS) day[field] += change[field] ?? 0;
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
    const out: QuotaTotals = {};
    for (const [keyId, day] of this.days.get(utcDay(this.now())) ?? []) {
      out[keyId] = {
        audioBytes: this.audioBytes.get(day) ?? 0,
        tokens: day.prompt_tokens + day.completion_tokens,
        ttsChars: day.tts_chars,
      };
    }
    return out;
  }

  /** The last `days` days (today first) for a key; days without usage are included as zeros. */
  history(keyId: string, days = 1): DayUsage[] {
    const out: DayUsage[] = [];
    const now = this.now();
    for (let i = 0; i < days; i++) {
      const date = utcDay(now - i * DAY_MS);
      const day = this.days.get(date)?.get(keyId);
      out.push(day ? { ...day, errors: { ...day.errors } } : emptyDay(date));
    }
    return out;
  }

  private prune(): void {
    const cutoff = utcDay(this.now() - (this.options.retainDays ?? 31) * DAY_MS);
    for (const date of this.days.keys()) {
      if (date < cutoff) this.days.delete(date); // its audio byte counts go with its records
    }
  }

  private changed(): void {
    if (!this.options.file) return;
    this.dirty = true;
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, this.options.flushMs ?? 5_000);
    this.flushTimer.unref();
  }

  /** Writes the counters now (atomically: temp file + rename). */
  flush(): Promise<void> {
    const file = this.options.file;
    if (!file || !this.dirty) return this.writing;
    this.dirty = false;
    const body: UsageFile = { version: 1, days: {} };
    for (const [date, byKey] of this.days) body.days[date] = Object.fromEntries(byKey);
    this.writing = this.writing.then(async () => {
      try {
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
        await rename(tmp, file);
      } catch {
        this.dirty = true;
      }
    });
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush();
  }
}
