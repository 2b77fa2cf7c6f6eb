/**
 * The state every process of one relay must agree on. A single process keeps the fast-changing
 * parts in memory and the durable ones in the database ({@link localState}); the workers of a
 * cluster ask their primary process for it (`cluster/worker.ts`), which does the same for all of
 * them.
 *
 * - session tokens already used (each token opens one socket, whichever worker it reaches);
 * - the session rate limits per key and per client IP;
 * - concurrency slots per key (open sockets + upgrades accepted but not open yet);
 * - per-key usage, which the daily quotas are checked against;
 * - conversations, so a visitor can resume on any worker;
 * - revocations, so every worker closes a revoked key's sockets at once;
 * - metrics, served for the whole relay.
 */
import type { Registry } from 'prom-client';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { MemoryConversationStore, type ConversationStore } from '../conversation/conversations.js';
import { UsageTracker, type UsageLedger, type UsageStore } from '../policy/usage.js';
import { rateLimiterMemory } from './rate-limiters.js';

/** Session token ids already used, each kept until its token expires. */
export interface TokenReplays {
  /** Marks `jti` used until `expiresAt` (Unix seconds): false when it was used before. */
  claim(jti: string, expiresAt: number): Promise<boolean>;
  close(): void;
}

export interface RateLimiterSpec {
  /** Distinguishes the budget (e.g. `sessions-ip:30:60`). */
  keyPrefix: string;
  points: number;
  durationSec: number;
}

export interface SlotCount {
  open: number;
  reserved: number;
}

/** Concurrency slots per key: sockets open plus upgrades that were accepted but are not open yet. */
export interface ConcurrencySlots {
  /** Holds a slot for an upgrade when the key holds fewer than `max` (0 = no limit: always). */
  tryReserve(keyId: string, max: number): Promise<boolean>;
  /** The upgrade was refused after all (e.g. its token was used before): give the slot back. */
  cancel(keyId: string): void;
  /** The socket opened: its reservation becomes an open slot. */
  opened(keyId: string): void;
  /** The socket closed. */
  closed(keyId: string): void;
  count(keyId: string): Promise<SlotCount>;
}

/** Whether the shared store answers (`/healthz`, `/readyz`; new sessions are refused while it does not). */
export interface StateStatus {
  ok: boolean;
  /** Why not, for the health report (never a secret: no URLs with passwords). */
  detail?: string;
}

export interface SharedState {
  /** Marks a session token id used until `expiresAt` (Unix seconds): false when it was used before. */
  claimToken(jti: string, expiresAt: number): Promise<boolean>;
  /** A fixed-window rate limiter whose counters every process shares. */
  rateLimiter(spec: RateLimiterSpec): RateLimiterAbstract;
  readonly slots: ConcurrencySlots;
  readonly usage: UsageStore;
  readonly conversations: ConversationStore;
  /** Tells the other processes that a key was revoked (they close its sockets). */
  announceRevoked(keyId: string): void;
  /** Called when another process revoked a key. */
  onRevoked(listener: (keyId: string) => void): void;
  /** This process's metrics, to be included in {@link clusterMetrics}. */
  registerMetrics?(registry: Registry): void;
  /** Prometheus text for the whole relay; absent when this process's own registry is the whole relay. */
  clusterMetrics?(): Promise<string>;
  /** Absent when the state cannot fail (it lives in this process). */
  status?(): StateStatus;
  close(): Promise<void>;
}

/** Token ids used so far, each kept until its token expires, in this process's memory. */
export class ReplaySet implements TokenReplays {
  private readonly used = new Map<string, number>();

  async claim(jti: string, expiresAt: number, now = Date.now() / 1000): Promise<boolean> {
    if (this.used.size > 1024) {
      for (const [id, exp] of this.used) if (exp < now) this.used.delete(id);
    }
    if (this.used.has(jti)) return false;
    this.used.set(jti, expiresAt);
    return true;
  }

  close(): void {
    this.used.clear();
  }
}

/** How long an accepted upgrade holds a concurrency slot when its socket never opens. */
export const RESERVATION_MS = 10_000;

/** Open sockets and live reservations per key, in one process's memory. */
export class SlotTable {
  private readonly open = new Map<string, number>();
  /** key id → expiry times of reservations, oldest first */
  private readonly reservations = new Map<string, number[]>();

  constructor(private readonly now: () => number = Date.now) {}

  count(keyId: string): SlotCount {
    const now = this.now();
    const live = (this.reservations.get(keyId) ?? []).filter((expiry) => expiry > now);
    if (live.length > 0) this.reservations.set(keyId, live);
    else this.reservations.delete(keyId);
    return { open: this.open.get(keyId) ?? 0, reserved: live.length };
  }

  reserve(keyId: string): void {
    const list = this.reservations.get(keyId) ?? [];
    list.push(this.now() + RESERVATION_MS);
    this.reservations.set(keyId, list);
  }

  cancel(keyId: string): void {
    const list = this.reservations.get(keyId);
    if (!list) return;
    list.shift();
    if (list.length === 0) this.reservations.delete(keyId);
  }

  opened(keyId: string): void {
    this.cancel(keyId);
    this.open.set(keyId, (this.open.get(keyId) ?? 0) + 1);
  }

  closed(keyId: string): void {
    const left = (this.open.get(keyId) ?? 1) - 1;
    if (left > 0) this.open.set(keyId, left);
    else this.open.delete(keyId);
  }
}

/** Slots held by every table of `tables` (one per process in a cluster). */
export function heldAcross(tables: Iterable<SlotTable>, keyId: string): number {
  let held = 0;
  for (const table of tables) {
    const { open, reserved } = table.count(keyId);
    held += open + reserved;
  }
  return held;
}

class LocalSlots implements ConcurrencySlots {
  private readonly table = new SlotTable();

  async tryReserve(keyId: string, max: number): Promise<boolean> {
    // Counting also drops expired reservations, with or without a limit.
    const held = heldAcross([this.table], keyId);
    if (max > 0 && held >= max) return false;
    this.table.reserve(keyId);
    return true;
  }

  cancel(keyId: string): void {
    this.table.cancel(keyId);
  }

  opened(keyId: string): void {
    this.table.opened(keyId);
  }

  closed(keyId: string): void {
    this.table.closed(keyId);
  }

  async count(keyId: string): Promise<SlotCount> {
    return this.table.count(keyId);
  }
}

export interface LocalStateOptions {
  /** Where used session-token ids are kept until they expire (`storage.usedTokens`; default: memory, lost on restart). */
  usedTokens?: TokenReplays | undefined;
  /** Where usage is kept (`storage.usage`; default: memory only, quotas restart from zero). */
  usageLedger?: UsageLedger | undefined;
  /** Where conversations are kept (`storage.conversations(ttl)`; default: memory). */
  conversations?: ConversationStore | undefined;
  /** How the durable stores are doing (`() => storage.status()`). */
  status?: (() => StateStatus) | undefined;
  /** For the in-memory conversation store, when `conversations` is not given. */
  conversationTtlMs: number;
  maxConversations: number;
}

/** One relay process: limits and slots in this process's memory, the rest where the options say. */
export function localState(options: LocalStateOptions): SharedState {
  const replay = options.usedTokens ?? new ReplaySet();
  const usage = new UsageTracker({ ledger: options.usageLedger });
  const conversations: ConversationStore =
    options.conversations ??
    new MemoryConversationStore(options.conversationTtlMs, options.maxConversations);
  return {
    async claimToken(jti, expiresAt) {
      return replay.claim(jti, expiresAt);
    },
    rateLimiter: ({ keyPrefix, points, durationSec }) =>
      new (rateLimiterMemory())({ keyPrefix, points, duration: durationSec }),
    slots: new LocalSlots(),
    usage,
    conversations,
    announceRevoked: () => undefined,
    onRevoked: () => undefined,
    ...(options.status ? { status: options.status } : {}),
    close: async () => {
      replay.close();
      await usage.close();
      await conversations.flush?.();
    },
  };
}
