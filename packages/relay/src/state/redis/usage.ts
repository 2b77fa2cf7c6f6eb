/**
 * Usage shared by relays through Redis, with quota reads that stay synchronous (they are checked on
 * every audio frame): usage is counted here, and every `syncMs` what was counted since goes to a
 * hash per day per key (`<prefix>usage:<day>:<keyId>`) in one script call, which answers with
 * the totals of every relay. Quotas = those totals + what was counted here since.
 *
 * The same counts go to the ledger (the database) every `ledgerFlushMs`, as a separate stream:
 * each stream remembers how far it got (`inRedis`, `inLedger`: cumulative counts at a position),
 * so a failed write is simply retried from there, never counted twice, and never lost.
 *
 * A day's hash that does not exist in Redis (first use of the key that day, or Redis lost its data)
 * is seeded from the ledger's totals first, so a Redis restart does not reset the quotas. Redis also
 * holds an epoch id, created again when it lost its data: a relay that finds a new epoch (or seeds
 * a hash) knows that what it wrote to the ledger but not to Redis is in the seed, and does not add
 * it again. What a relay writes to its ledger between another relay's seed and its own next sync
 * (a few hundred ms after Redis came back) is the one thing such a restart can leave out of the
 * quotas; the ledger itself always gets every count once.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import {
  utcDay,
  type DayUsage,
  type QuotaTotals,
  type UsageChange,
  type UsageLedger,
  type UsageStore,
} from '../../policy/usage.js';
import { unavailable } from './connection.js';
import {
  AUDIO_IN_BYTES,
  Counts,
  dayUsage,
  ERROR_PREFIX,
  quotaFields,
  type Fields,
} from './counts.js';
import { defineScript, type Script } from './scripts.js';

const DAY_MS = 86_400_000;
/** A day's hash lives this long after its last update: quotas only read today's. */
const HASH_TTL_SEC = 2 * 86_400;
/** Days whose hashes are still in Redis (today, yesterday): read from there, the rest from the ledger. */
const REDIS_DAYS = 2;
/** Keys counted or whose quotas were read lately get their totals on every sync. */
const WATCH_MS = 10 * 60_000;
const MAX_WATCHED = 10_000;
/** Counts of days this old are forgotten, written or not. */
const RETAIN_DAYS = 3;
const QUOTA_FIELDS = [AUDIO_IN_BYTES, 'prompt_tokens', 'completion_tokens', 'tts_chars'];

/**
 * KEYS: the epoch, this relay's last applied batch number, then the day hashes. ARGV: the epoch
 * this relay knows, batch number, TTL seconds, then per hash: the number of fields and the
 * field/increment pairs. Nothing is applied and the answer is {'epoch', current} when the epoch
 * changed, {'missing', {indexes}} when hashes (or the epoch) do not exist; otherwise {'ok', {quota
 * fields of each hash}}. A batch number applied before (its answer was lost) is not added again.
 */
const SYNC = `local epoch = redis.call('GET', KEYS[1])
local missing = {}
for i = 3, #KEYS do
  if not epoch or redis.call('EXISTS', KEYS[i]) == 0 then missing[#missing + 1] = i - 2 end
end
if epoch and epoch ~= ARGV[1] then return {'epoch', epoch} end
if #missing > 0 then return {'missing', missing} end
local fresh = tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
local a = 4
for i = 3, #KEYS do
  local n = tonumber(ARGV[a])
  if fresh then
    for j = a + 1, a + 2 * n, 2 do redis.call('HINCRBYFLOAT', KEYS[i], ARGV[j], ARGV[j + 1]) end
  end
  redis.call('EXPIRE', KEYS[i], ARGV[3])
  out[i - 2] = redis.call('HMGET', KEYS[i], '${QUOTA_FIELDS.join("', '")}')
  a = a + 1 + 2 * n
end
if fresh then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return {'ok', out}`;

/**
 * KEYS: the epoch, then day hashes. ARGV: a new epoch id, TTL seconds, then per hash its fields as
 * for SYNC. Creates the epoch and the hashes that do not exist; → the epoch.
 */
const SEED = `redis.call('SET', KEYS[1], ARGV[1], 'NX')
local a = 3
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], '_seeded', '1')
    for j = a + 1, a + 2 * n, 2 do redis.call('HSET', KEYS[i], ARGV[j], ARGV[j + 1]) end
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
  a = a + 1 + 2 * n
end
return redis.call('GET', KEYS[1])`;

export interface RedisUsageOptions {
  prefix: string;
  relayId: string;
  /** How often counts go to Redis and totals come back (default 250 ms). */
  syncMs?: number;
  /** How often counts go to the ledger (default 5000 ms). */
  ledgerFlushMs?: number;
  ledger?: UsageLedger | undefined;
  logger?: Logger | undefined;
  now?: () => number;
}

/** Cumulative counts of this relay up to position `seq` (the number of additions so far). */
interface Position {
  seq: number;
  counts: Counts;
}

interface Entry {
  day: string;
  keyId: string;
  fields: Fields;
}

type SyncReply = ['epoch', string] | ['missing', number[]] | ['ok', (string | null)[][]];

const newEpoch = () => randomBytes(8).toString('hex');

export class RedisUsage implements UsageStore {
  private readonly counted = new Counts();
  private seq = 0;
  private inRedis: Position = { seq: 0, counts: new Counts() };
  private inLedger: Position = { seq: 0, counts: new Counts() };
  /** The position being sent to Redis, sent again until Redis has it. */
  private sending: Position | undefined;
  private totals: { day: string; byKey: QuotaTotals } = { day: '', byKey: {} };
  /** key id → last count or quota read (this relay's clock) */
  private readonly watched = new Map<string, number>();
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  private seeding: Promise<void> | undefined;
  /** The epoch of Redis's data this relay synced with last. */
  private epoch = '';
  private readonly syncScript: Script;
  private readonly seedScript: Script;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly ledger: UsageLedger | undefined;

  constructor(
    private readonly client: Redis,
    private readonly options: RedisUsageOptions,
  ) {
    this.ledger = options.ledger;
    this.syncScript = defineScript(client, 'vbUsageSync', SYNC);
    this.seedScript = defineScript(client, 'vbUsageSeed', SEED);
    const every = (ms: number, run: () => Promise<void>) => {
      const timer = setInterval(() => void run().catch(() => undefined), ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(options.syncMs ?? 250, () => this.sync());
    if (this.ledger) every(options.ledgerFlushMs ?? 5000, () => this.flushLedger());
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private hash(day: string, keyId: string): string {
    return `${this.options.prefix}usage:${day}:${keyId}`;
  }

  // ---- counting and quota reads (synchronous) ----

  private count(keyId: string, field: string, value: number): void {
    if (!Number.isFinite(value) || value === 0) return;
    const now = this.now();
    this.counted.add(utcDay(now), keyId, field, value);
    this.seq++;
    this.watch(keyId, now);
  }

  addAudioIn(keyId: string, bytes: number): void {
    this.count(keyId, AUDIO_IN_BYTES, bytes);
  }

  add(keyId: string, change: UsageChange): void {
    for (const [field, value] of Object.entries(change)) this.count(keyId, field, value);
  }

  error(keyId: string, code: string): void {
    this.count(keyId, `${ERROR_PREFIX}${code}`, 1);
  }

  /** Today's value of a field: every relay's at the last sync + what this relay counted since. */
  private today(keyId: string, field: string): number {
    const now = this.now();
    const day = utcDay(now);
    this.watch(keyId, now);
    const local = this.counted.get(day, keyId, field) - this.inRedis.counts.get(day, keyId, field);
    return (this.totals.day === day ? this.totalField(keyId, field) : 0) + local;
  }

  private totalField(keyId: string, field: string): number {
    const totals = this.totals.byKey[keyId];
    if (!totals) return 0;
    if (field === AUDIO_IN_BYTES) return totals.audioBytes;
    if (field === 'tts_chars') return totals.ttsChars;
    return totals.tokens;
  }

  private watch(keyId: string, now: number): void {
    const last = this.watched.get(keyId);
    if (last !== undefined && now - last < 1000) return;
    this.watched.delete(keyId);
    this.watched.set(keyId, now);
    if (this.watched.size > MAX_WATCHED) {
      const oldest = this.watched.keys().next().value;
      if (oldest !== undefined) this.watched.delete(oldest);
    }
    // A new key: fetch every relay's totals now rather than at the next tick.
    if (last === undefined) void this.sync().catch(() => undefined);
  }

  audioBytesToday(keyId: string): number {
    return this.today(keyId, AUDIO_IN_BYTES);
  }

  tokensToday(keyId: string): number {
    // prompt_tokens and completion_tokens come back from Redis as one sum.
    const day = utcDay(this.now());
    const local =
      this.counted.get(day, keyId, 'completion_tokens') -
      this.inRedis.counts.get(day, keyId, 'completion_tokens');
    return this.today(keyId, 'prompt_tokens') + local;
  }

  ttsCharsToday(keyId: string): number {
    return this.today(keyId, 'tts_chars');
  }

  // ---- Redis ----

  load(): Promise<void> {
    return this.sync().catch(() => undefined);
  }

  /**
   * Sends what was counted so far and takes every relay's totals. While a sync is in flight, one
   * more is queued after it (shared by every caller meanwhile), so the totals are at least as
   * recent as the call.
   */
  sync(): Promise<void> {
    if (this.syncing) {
      this.nextSync ??= this.syncing
        .catch(() => undefined)
        .then(() => {
          this.nextSync = undefined;
          return this.sync();
        });
      return this.nextSync;
    }
    this.syncing = this.syncOnce().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const now = this.now();
    const today = utcDay(now);
    this.counted.dropBefore(utcDay(now - RETAIN_DAYS * DAY_MS));
    if (!this.sending && this.seq > this.inRedis.seq)
      this.sending = { seq: this.seq, counts: this.counted.clone() };
    const target = this.sending ?? this.inRedis;
    const entries = this.entries(target.counts.minus(this.inRedis.counts), today, now);
    if (entries.length === 0) {
      this.inRedis = target;
      this.sending = undefined;
      return;
    }
    const adjusted = new Set<Entry>();
    for (let attempt = 0; ; attempt++) {
      let reply: SyncReply;
      try {
        reply = (await this.syncScript(
          [
            this.epochKey,
            `${this.options.prefix}usage:seq:${this.options.relayId}`,
            ...this.keysOf(entries),
          ],
          [this.epoch, target.seq, HASH_TTL_SEC, ...this.argsOf(entries)],
        )) as SyncReply;
      } catch (error) {
        throw unavailable(error);
      }
      if (reply[0] === 'ok') {
        this.takeTotals(entries, reply[1], today);
        this.inRedis = target;
        this.sending = undefined;
        return;
      }
      if (attempt >= 3) throw new Error('redis usage: its data keeps disappearing');
      if (reply[0] === 'epoch') {
        const epoch = reply[1];
        // Redis lost its data since this relay's last sync, and the hashes were seeded again.
        await this.exclusive(async () => {
          this.dropLedgered(entries, target, adjusted);
          this.epoch = epoch;
        });
      } else {
        const missing = reply[1]
          .map((index) => entries[index - 1])
          .filter((entry) => entry !== undefined);
        await this.exclusive(async () => {
          this.epoch = await this.seed(missing);
          this.dropLedgered(missing, target, adjusted);
        });
      }
    }
  }

  private get epochKey(): string {
    return `${this.options.prefix}usage:epoch`;
  }

  /** Learns the epoch of Redis's data (creating it when there is none): call once at start. */
  async start(): Promise<void> {
    try {
      this.epoch = String(await this.seedScript([this.epochKey], [newEpoch(), HASH_TTL_SEC]));
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The hashes to send: every day and key with counts, and today's hash of every watched key. */
  private entries(delta: Counts, today: string, now: number): Entry[] {
    const entries: Entry[] = [];
    for (const [day, byKey] of delta.days)
      for (const [keyId, fields] of byKey) entries.push({ day, keyId, fields });
    const sent = delta.days.get(today);
    for (const [keyId, lastRead] of this.watched) {
      if (now - lastRead > WATCH_MS) this.watched.delete(keyId);
      else if (!sent?.has(keyId)) entries.push({ day: today, keyId, fields: new Map() });
    }
    return entries;
  }

  private keysOf(entries: readonly Entry[]): string[] {
    return entries.map((entry) => this.hash(entry.day, entry.keyId));
  }

  private argsOf(entries: readonly Entry[]): (string | number)[] {
    const args: (string | number)[] = [];
    for (const { fields } of entries) {
      args.push(fields.size);
      for (const [field, value] of fields) args.push(field, value);
    }
    return args;
  }

  private takeTotals(entries: readonly Entry[], replies: (string | null)[][], today: string): void {
    const byKey: QuotaTotals = this.totals.day === today ? { ...this.totals.byKey } : {};
    entries.forEach((entry, i) => {
      const values = replies[i];
      if (entry.day !== today || !values) return;
      const [audio, prompt, completion, tts] = values.map((value) => Number(value ?? 0));
      byKey[entry.keyId] = {
        audioBytes: audio ?? 0,
        tokens: (prompt ?? 0) + (completion ?? 0),
        ttsChars: tts ?? 0,
      };
    });
    for (const keyId of Object.keys(byKey))
      if (!this.watched.has(keyId) && !entries.some((entry) => entry.keyId === keyId))
        delete byKey[keyId];
    this.totals = { day: today, byKey };
  }

  /** Runs `work` with no ledger write in flight (they wait meanwhile). */
  private async exclusive(work: () => Promise<void>): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    const running = work().finally(() => {
      this.seeding = undefined;
    });
    this.seeding = running.catch(() => undefined);
    await running;
  }

  /** Creates the day hashes that do not exist from the ledger's totals; → Redis's epoch. */
  private async seed(missing: readonly Entry[]): Promise<string> {
    const seeds = new Map<string, QuotaTotals>();
    if (this.ledger) {
      for (const day of new Set(missing.map((entry) => entry.day))) {
        try {
          seeds.set(day, await this.ledger.totals(day));
        } catch (error) {
          // Without the ledger's totals the quotas would restart from zero: try again later.
          throw new Error('redis usage: the ledger did not give the totals to seed Redis from', {
            cause: error,
          });
        }
      }
    }
    const args: (string | number)[] = [newEpoch(), HASH_TTL_SEC];
    for (const entry of missing) {
      const fields = quotaFields(seeds.get(entry.day)?.[entry.keyId]);
      args.push(fields.size);
      for (const [field, value] of fields) args.push(field, value);
    }
    try {
      return String(await this.seedScript([this.epochKey, ...this.keysOf(missing)], args));
    } catch (error) {
      throw unavailable(error);
    }
  }

  /**
   * Takes out of `entries` what this relay has written to the ledger but not to Redis: it is in
   * the hashes seeded from the ledger. Each entry once (`adjusted`).
   */
  private dropLedgered(entries: readonly Entry[], target: Position, adjusted: Set<Entry>): void {
    const written = this.inLedger;
    if (written.seq <= this.inRedis.seq) return;
    const upTo = written.seq >= target.seq ? target.counts : written.counts;
    for (const entry of entries) {
      if (adjusted.has(entry)) continue;
      adjusted.add(entry);
      for (const [field, value] of entry.fields) {
        const inSeed =
          upTo.get(entry.day, entry.keyId, field) -
          this.inRedis.counts.get(entry.day, entry.keyId, field);
        const rest = Math.round((value - inSeed) * 1e6) / 1e6;
        if (rest === 0) entry.fields.delete(field);
        else entry.fields.set(field, rest);
      }
    }
  }

  // ---- ledger ----

  /** Adds what was counted since the last ledger write to the ledger (coalesced). */
  flushLedger(): Promise<void> {
    const ledger = this.ledger;
    if (!ledger) return Promise.resolve();
    this.flushing ??= this.writeLedger(ledger).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async writeLedger(ledger: UsageLedger): Promise<void> {
    while (this.seeding) await this.seeding;
    if (this.seq === this.inLedger.seq) return;
    const target: Position = { seq: this.seq, counts: this.counted.clone() };
    const delta = target.counts.minus(this.inLedger.counts);
    try {
      if (!delta.isEmpty()) await ledger.add(delta.toUsageDays());
    } catch (error) {
      this.options.logger?.warn(
        { err: (error as Error).message },
        'usage: the ledger write failed; it is retried',
      );
      throw error;
    }
    this.inLedger = target;
  }

  /**
   * Days still in Redis (today and yesterday) come from its hashes, which hold every relay's counts
   * (the ledger lags each relay by up to `ledgerFlushMs`); older days, and days Redis no longer
   * has, come from the ledger.
   */
  async history(keyId: string, days = 1): Promise<DayUsage[]> {
    const count = Math.max(1, Math.min(Math.floor(days), 366));
    await this.sync().catch(() => undefined);
    const now = this.now();
    const dates = Array.from({ length: count }, (_, i) => utcDay(now - i * DAY_MS));
    const recent = this.ledger ? dates.slice(0, REDIS_DAYS) : dates;
    const batch = this.client.pipeline();
    for (const date of recent) batch.hgetall(this.hash(date, keyId));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await batch.exec();
    } catch (error) {
      throw unavailable(error);
    }
    const fromRedis = recent.map((date, i): DayUsage | undefined => {
      const [error, stored] = replies?.[i] ?? [null, {}];
      if (error) throw unavailable(error);
      const entries = Object.entries((stored ?? {}) as Record<string, string>);
      if (this.ledger && entries.length === 0) return undefined;
      const fields: Fields = new Map();
      for (const [field, value] of entries)
        if (field !== '_seeded') fields.set(field, Number(value));
      return dayUsage(date, fields);
    });
    if (!this.ledger)
      return fromRedis.map((day, i) => day ?? dayUsage(dates[i] as string, new Map()));
    const stored =
      fromRedis.every(Boolean) && count <= REDIS_DAYS
        ? []
        : await this.ledger.history(keyId, count, now);
    return dates.map((date, i) => fromRedis[i] ?? stored[i] ?? dayUsage(date, new Map()));
  }

  /** Stops the timers and writes what is left: to Redis (best effort) and to the ledger. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await this.sync().catch(() => undefined);
    await this.flushing?.catch(() => undefined);
    await this.flushLedger().catch(() => undefined);
  }
}
