/**
 * A cluster worker's view of the shared state: every question goes to the primary process
 * (`primary.ts`) over the IPC channel. Usage is the exception: it is counted here and synced
 * every `usageSyncMs`, because quotas are checked on every audio frame.
 */
import type { Registry } from 'prom-client';
import type {
  Conversation,
  ConversationStore,
  OpenedConversation,
} from '../../conversation/conversations.js';
import type { ConcurrencySlots, SharedState, SlotCount } from '../shared-state.js';
import { rateLimiterCluster } from '../rate-limiters.js';
import {
  UsageTracker,
  type DayUsage,
  type QuotaTotals,
  type UsageChange,
  type UsageStore,
} from '../../policy/usage.js';
import {
  CHANNEL,
  isClusterMessage,
  type NoticeMessage,
  type NoticeOp,
  type Notices,
  type RequestMessage,
  type RequestOp,
  type Requests,
} from './messages.js';

export interface ClusterWorkerOptions {
  /** How often usage counted here is added to the primary's (default 500 ms). */
  usageSyncMs?: number;
  /** A request the primary has not answered after this long fails (default 5000 ms). */
  requestTimeoutMs?: number;
}

export interface ClusterWorkerState extends SharedState {
  /** The primary asked this worker to stop (its cluster is shutting down). */
  onShutdown(listener: () => void): void;
}

/** The requests and notices of one worker to its primary. */
class PrimaryLink {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout }
  >();
  private readonly listeners = new Map<NoticeOp, ((message: NoticeMessage) => void)[]>();
  private readonly onMessage = (message: unknown) => {
    if (!isClusterMessage(message)) return;
    if ('ok' in message) {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(`cluster primary: ${message.error}`));
      return;
    }
    if ('id' in message) return;
    for (const listener of this.listeners.get(message.op) ?? []) listener(message);
  };

  constructor(private readonly timeoutMs: number) {
    if (!process.send)
      throw new Error(
        'clusterWorkerState needs an IPC channel to the primary (run it in a cluster worker)',
      );
    process.on('message', this.onMessage);
  }

  request<Op extends RequestOp>(
    op: Op,
    args: Requests[Op]['args'],
  ): Promise<Requests[Op]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`cluster primary did not answer ${op} in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.send({ channel: CHANNEL, id, op, args } as RequestMessage);
    });
  }

  notify<Op extends NoticeOp>(op: Op, args: Notices[Op]): void {
    this.send({ channel: CHANNEL, op, args } as NoticeMessage);
  }

  on<Op extends NoticeOp>(op: Op, listener: (args: Notices[Op]) => void): void {
    const list = this.listeners.get(op) ?? [];
    list.push((message) => listener(message.args as Notices[Op]));
    this.listeners.set(op, list);
  }

  private send(message: RequestMessage | NoticeMessage): void {
    if (process.connected) process.send?.(message);
  }

  close(): void {
    process.off('message', this.onMessage);
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error('the relay is closing'));
      this.pending.delete(id);
    }
  }
}

/**
 * Usage counted in this worker, added to the primary's every `syncMs`; the quotas are checked
 * against the primary's totals at the last sync plus what this worker counted since. Across the
 * cluster, a key can overrun a quota by what the other workers counted within one sync period.
 */
class SyncedUsage implements UsageStore {
  private totals: QuotaTotals = {};
  private unsent = new UsageTracker();
  /** The batch sent last; kept, with its number, until the primary has taken it. */
  private sending: { seq: number; batch: UsageTracker } | undefined;
  private seq = 0;
  private syncing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly link: PrimaryLink,
    syncMs: number,
  ) {
    this.timer = setInterval(() => void this.sync().catch(() => undefined), syncMs);
    this.timer.unref();
  }

  /**
   * Sends what was counted since the last sync and takes the cluster's totals. A batch whose answer
   * timed out is sent again with the same number: the primary counts each number once.
   */
  sync(): Promise<void> {
    this.syncing ??= (async () => {
      try {
        if (!this.sending) {
          this.sending = { seq: ++this.seq, batch: this.unsent };
          this.unsent = new UsageTracker();
        }
        this.totals = await this.link.request('usage.sync', {
          seq: this.sending.seq,
          days: this.sending.batch.export(),
        });
        this.sending = undefined;
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  load(): Promise<void> {
    return this.sync().catch(() => undefined);
  }

  audioBytesToday(keyId: string): number {
    return (
      (this.totals[keyId]?.audioBytes ?? 0) +
      this.unsent.audioBytesToday(keyId) +
      (this.sending?.batch.audioBytesToday(keyId) ?? 0)
    );
  }

  tokensToday(keyId: string): number {
    return (
      (this.totals[keyId]?.tokens ?? 0) +
      this.unsent.tokensToday(keyId) +
      (this.sending?.batch.tokensToday(keyId) ?? 0)
    );
  }

  ttsCharsToday(keyId: string): number {
    return (
      (this.totals[keyId]?.ttsChars ?? 0) +
      this.unsent.ttsCharsToday(keyId) +
      (this.sending?.batch.ttsCharsToday(keyId) ?? 0)
    );
  }

  addAudioIn(keyId: string, bytes: number): void {
    this.unsent.addAudioIn(keyId, bytes);
  }

  add(keyId: string, change: UsageChange): void {
    this.unsent.add(keyId, change);
  }

  error(keyId: string, code: string): void {
    this.unsent.error(keyId, code);
  }

  async history(keyId: string, days = 1): Promise<DayUsage[]> {
    await this.sync().catch(() => undefined);
    return this.link.request('usage.history', { keyId, days });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sync().catch(() => undefined);
  }
}

class PrimarySlots implements ConcurrencySlots {
  constructor(private readonly link: PrimaryLink) {}

  tryReserve(keyId: string, max: number): Promise<boolean> {
    return this.link.request('slots.reserve', { keyId, max });
  }

  cancel(keyId: string): void {
    this.link.notify('slots.cancel', { keyId });
  }

  opened(keyId: string): void {
    this.link.notify('slots.opened', { keyId });
  }

  closed(keyId: string): void {
    this.link.notify('slots.closed', { keyId });
  }

  count(keyId: string): Promise<SlotCount> {
    return this.link.request('slots.count', { keyId });
  }
}

/** Conversations live in the primary: a visitor who reconnects to another worker resumes there. */
class PrimaryConversations implements ConversationStore {
  constructor(private readonly link: PrimaryLink) {}

  open(
    requestedId: string | undefined,
    keyId: string,
    bot: string,
    userId?: string,
  ): Promise<OpenedConversation> {
    return this.link.request('conversation.open', {
      requestedId,
      keyId,
      bot,
      ...(userId === undefined ? {} : { userId }),
    });
  }

  touch(conversation: Conversation): void {
    conversation.updatedAt = Date.now();
    this.link.notify('conversation.put', { conversation });
  }
}

/** The shared state of a relay running in a cluster worker (`createRelay({ state: clusterWorkerState() })`). */
export function clusterWorkerState(options: ClusterWorkerOptions = {}): ClusterWorkerState {
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const link = new PrimaryLink(timeoutMs);
  const usage = new SyncedUsage(link, options.usageSyncMs ?? 500);
  return {
    claimToken: (jti, expiresAt) => link.request('token.claim', { jti, expiresAt }),
    rateLimiter: ({ keyPrefix, points, durationSec }) =>
      new (rateLimiterCluster().RateLimiterCluster)({
        keyPrefix,
        points,
        duration: durationSec,
        timeoutMs,
      }),
    slots: new PrimarySlots(link),
    usage,
    conversations: new PrimaryConversations(link),
    announceRevoked: (keyId) => link.notify('key.revoked', { keyId }),
    onRevoked: (listener) => link.on('key.revoked', ({ keyId }) => listener(keyId)),
    onShutdown: (listener) => link.on('shutdown', () => listener()),
    registerMetrics(registry: Registry) {
      link.on('metrics.collect', ({ requestId }) => {
        void registry
          .getMetricsAsJSON()
          .then((metrics) => link.notify('metrics.json', { requestId, metrics }));
      });
    },
    clusterMetrics: () => link.request('metrics', {}),
    async close() {
      await usage.close();
      link.close();
    },
  };
}
