/**
 * Concurrency slots per key across relays. Each key has two sorted sets in Redis, reservations and
 * open sockets; a member is `<relayId>:<n>` and its score the time (Redis's clock, ms) it expires.
 * Reservations expire unless their socket opens; open slots expire unless the relay holding them
 * refreshes them on its heartbeat, so the slots of a relay that dies free themselves.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import type { ConcurrencySlots, SlotCount } from '../shared-state.js';
import { unavailable } from './connection.js';
import { defineScript, LUA_NOW_MS, type Script } from './scripts.js';

/** KEYS: reserved, open. ARGV: max (0 = no limit), member, reservation ms. → 1 when reserved. */
const RESERVE = `${LUA_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local max = tonumber(ARGV[1])
if max > 0 and redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= max then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

/** KEYS: reserved, open. → [open, reserved] still live. */
const COUNT = `${LUA_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[1])}`;

/**
 * KEYS: reserved and open set of each key, in pairs. ARGV: ttl ms, then per key the number of
 * members and the members: open slots of this relay, each given `now + ttl` (a reservation that
 * opened moves to the open set; a slot Redis lost when it restarted is added again).
 */
const REFRESH = `${LUA_NOW_MS}
local ttl = tonumber(ARGV[1])
local a = 2
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a])
  for i = a + 1, a + n do
    redis.call('ZREM', KEYS[k], ARGV[i])
    redis.call('ZADD', KEYS[k + 1], now + ttl, ARGV[i])
  end
  a = a + n + 1
  if redis.call('PTTL', KEYS[k + 1]) < ttl then redis.call('PEXPIRE', KEYS[k + 1], ttl) end
end
return 1`;

export interface RedisSlotsOptions {
  prefix: string;
  relayId: string;
  /** How long a reservation holds a slot when its socket never opens. */
  reservationMs: number;
  /** How long an open slot lives without a heartbeat. */
  ttlMs: number;
  heartbeatMs: number;
  logger?: Logger | undefined;
}

interface Held {
  /** Reservations of this relay, oldest first, with when they lapse (this relay's clock). */
  reserved: { member: string; lapses: number }[];
  open: string[];
}

export class RedisSlots implements ConcurrencySlots {
  private readonly reserveScript: Script;
  private readonly countScript: Script;
  private readonly refreshScript: Script;
  private readonly held = new Map<string, Held>();
  private next = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly client: Redis,
    private readonly options: RedisSlotsOptions,
  ) {
    this.reserveScript = defineScript(client, 'vbSlotReserve', RESERVE);
    this.countScript = defineScript(client, 'vbSlotCount', COUNT);
    this.refreshScript = defineScript(client, 'vbSlotRefresh', REFRESH);
    this.heartbeat = setInterval(() => void this.refresh(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  private keys(keyId: string): [reserved: string, open: string] {
    const base = `${this.options.prefix}slots:{${keyId}}`;
    return [`${base}:reserved`, `${base}:open`];
  }

  private entry(keyId: string): Held {
    let held = this.held.get(keyId);
    if (!held) {
      held = { reserved: [], open: [] };
      this.held.set(keyId, held);
    }
    return held;
  }

  private forget(keyId: string, held: Held): void {
    if (held.reserved.length === 0 && held.open.length === 0) this.held.delete(keyId);
  }

  async tryReserve(keyId: string, max: number): Promise<boolean> {
    const member = `${this.options.relayId}:${++this.next}`;
    let reserved: unknown;
    try {
      reserved = await this.reserveScript(this.keys(keyId), [
        Math.max(0, Math.floor(max)),
        member,
        this.options.reservationMs,
      ]);
    } catch (error) {
      throw unavailable(error);
    }
    if (reserved !== 1) return false;
    this.entry(keyId).reserved.push({
      member,
      lapses: Date.now() + this.options.reservationMs,
    });
    return true;
  }

  /** This relay's oldest reservation for the key that has not lapsed yet (dropping lapsed ones). */
  private takeReservation(keyId: string, held: Held): string | undefined {
    const now = Date.now();
    while (held.reserved.length > 0) {
      const oldest = held.reserved.shift();
      if (oldest && oldest.lapses > now) return oldest.member;
    }
    return undefined;
  }

  cancel(keyId: string): void {
    const held = this.held.get(keyId);
    if (!held) return;
    const member = this.takeReservation(keyId, held);
    this.forget(keyId, held);
    if (member) this.remove(this.keys(keyId)[0], member);
  }

  opened(keyId: string): void {
    const held = this.entry(keyId);
    const member = this.takeReservation(keyId, held) ?? `${this.options.relayId}:${++this.next}`;
    held.open.push(member);
    // When this fails, the next heartbeat moves it (the reservation holds the slot until then).
    this.refreshScript(this.keys(keyId), [this.options.ttlMs, 1, member]).catch((error: unknown) =>
      this.failed('open', error),
    );
  }

  closed(keyId: string): void {
    const held = this.held.get(keyId);
    const member = held?.open.shift();
    if (!held || !member) return;
    this.forget(keyId, held);
    const [reserved, open] = this.keys(keyId);
    this.client
      .multi()
      .zrem(reserved, member)
      .zrem(open, member)
      .exec()
      .catch((error: unknown) => this.failed('release', error));
  }

  async count(keyId: string): Promise<SlotCount> {
    try {
      const [open, reserved] = (await this.countScript(this.keys(keyId), [])) as [number, number];
      return { open, reserved };
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** Extends every open slot of this relay, in one round trip. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const keys: string[] = [];
    const args: (string | number)[] = [this.options.ttlMs];
    for (const [keyId, held] of this.held) {
      if (held.open.length === 0) continue;
      keys.push(...this.keys(keyId));
      args.push(held.open.length, ...held.open);
    }
    if (keys.length === 0) return Promise.resolve();
    this.refreshing = this.refreshScript(keys, args)
      .then(() => undefined)
      .catch((error: unknown) => this.failed('heartbeat', error))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private remove(set: string, member: string): void {
    this.client.zrem(set, member).catch((error: unknown) => this.failed('cancel', error));
  }

  private failed(what: string, error: unknown): void {
    this.options.logger?.warn(
      { err: (error as Error).message },
      `redis slots: ${what} failed (the slot expires by itself)`,
    );
  }

  /** Stops refreshing this relay's slots without releasing them (they expire after the TTL). */
  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Stops the heartbeat and removes this relay's slots from Redis. */
  async release(): Promise<void> {
    this.stopHeartbeat();
    await this.refreshing;
    const batch = this.client.multi();
    let any = false;
    for (const [keyId, held] of this.held) {
      const [reserved, open] = this.keys(keyId);
      const members = [...held.reserved.map((r) => r.member), ...held.open];
      if (members.length === 0) continue;
      batch.zrem(reserved, ...members).zrem(open, ...members);
      any = true;
    }
    this.held.clear();
    if (any) await batch.exec();
  }
}
