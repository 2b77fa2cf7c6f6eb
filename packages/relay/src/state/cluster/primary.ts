/**
 * The primary process of a relay cluster: it forks one worker per core (each a full relay sharing
 * the port), keeps the state they must agree on ({@link PrimaryState}), restarts a worker that
 * dies, and stops them gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import {
  MemoryConversationStore,
  type ConversationStore,
} from '../../conversation/conversations.js';
import type { Env } from '../../config/config.js';
import type { Logger } from '../../logger.js';
import { processEnv } from '../../config/settings.js';
import { ReplaySet, SlotTable, heldAcross, type TokenReplays } from '../shared-state.js';
import { rateLimiterCluster } from '../rate-limiters.js';
import { UsageTracker, type UsageLedger } from '../../policy/usage.js';
import {
  CHANNEL,
  isClusterMessage,
  type NoticeMessage,
  type ReplyMessage,
  type RequestMessage,
} from './messages.js';

/**
 * The durable stores come from the relay's storage (`storage.usedTokens`, `storage.usage`,
 * `storage.conversations(ttl)`), so conversations resume and quotas hold after a restart too;
 * absent, they are kept in this process's memory.
 */
export interface PrimaryStateOptions {
  /** Where used session-token ids are kept (default: memory). */
  usedTokens?: TokenReplays | undefined;
  /** Where usage is kept (default: memory). */
  usageLedger?: UsageLedger | undefined;
  /** Where conversations are kept (default: memory, `conversationTtlMs` / `maxConversations`). */
  conversations?: ConversationStore | undefined;
  conversationTtlMs: number;
  maxConversations: number;
}

/** What the workers share, answered from this process's memory. Workers are named by their cluster id. */
export class PrimaryState {
  private readonly replay: TokenReplays;
  /** One slot table per worker, so a worker that dies frees its slots. */
  private readonly slots = new Map<number, SlotTable>();
  readonly usage: UsageTracker<UsageLedger | undefined>;
  private readonly conversations: ConversationStore;
  /** Workers that exited (cluster ids are never reused): what they still had in the pipe is ignored. */
  private readonly gone = new Set<number>();
  /** The last usage batch merged per worker: a batch sent again after a timeout is not counted twice. */
  private readonly usageSeq = new Map<number, number>();

  constructor(options: PrimaryStateOptions) {
    this.replay = options.usedTokens ?? new ReplaySet();
    this.usage = new UsageTracker({ ledger: options.usageLedger });
    this.conversations =
      options.conversations ??
      new MemoryConversationStore(options.conversationTtlMs, options.maxConversations);
  }

  /** Writes usage and conversations, closes the used-token store. */
  async close(): Promise<void> {
    this.replay.close();
    await this.usage.close();
    await this.conversations.flush?.();
  }

  /** False for a worker that has exited. */
  live(workerId: number): boolean {
    return !this.gone.has(workerId);
  }

  private table(workerId: number): SlotTable {
    let table = this.slots.get(workerId);
    if (!table) {
      table = new SlotTable();
      this.slots.set(workerId, table);
    }
    return table;
  }

  /** Answers a request (everything but `metrics`, which needs the workers themselves). */
  request(workerId: number, message: Exclude<RequestMessage, { op: 'metrics' }>): unknown {
    switch (message.op) {
      case 'token.claim':
        return this.replay.claim(message.args.jti, message.args.expiresAt);
      case 'slots.reserve': {
        const { keyId, max } = message.args;
        // Counting also drops expired reservations, with or without a limit.
        const held = heldAcross(this.slots.values(), keyId);
        if (!this.live(workerId) || (max > 0 && held >= max)) return false;
        this.table(workerId).reserve(keyId);
        return true;
      }
      case 'slots.count': {
        let open = 0;
        let reserved = 0;
        for (const table of this.slots.values()) {
          const count = table.count(message.args.keyId);
          open += count.open;
          reserved += count.reserved;
        }
        return { open, reserved };
      }
      case 'usage.sync': {
        const { seq, days } = message.args;
        if (seq > (this.usageSeq.get(workerId) ?? 0)) {
          this.usageSeq.set(workerId, seq);
          this.usage.merge(days);
        }
        return this.usage.quotaTotals();
      }
      case 'usage.history':
        return this.usage.history(message.args.keyId, message.args.days);
      case 'conversation.open':
        return this.conversations.open(
          message.args.requestedId,
          message.args.keyId,
          message.args.bot,
          message.args.userId,
        );
    }
  }

  notice(workerId: number, message: NoticeMessage): void {
    if (!this.live(workerId) && message.op.startsWith('slots.')) return;
    switch (message.op) {
      case 'slots.cancel':
        this.table(workerId).cancel(message.args.keyId);
        return;
      case 'slots.opened':
        this.table(workerId).opened(message.args.keyId);
        return;
      case 'slots.closed':
        this.table(workerId).closed(message.args.keyId);
        return;
      case 'conversation.put':
        if (this.conversations instanceof MemoryConversationStore)
          this.conversations.put(message.args.conversation);
        else this.conversations.touch(message.args.conversation);
        return;
      default:
        return;
    }
  }

  /** A worker exited: its sockets are gone, and so are their slots. */
  workerGone(workerId: number): void {
    this.gone.add(workerId);
    this.slots.delete(workerId);
    this.usageSeq.delete(workerId);
  }
}

export interface ClusterPrimaryOptions extends PrimaryStateOptions {
  /** Worker processes (default: the number of cores). */
  workers?: number;
  logger: Logger;
  /** A worker that dies is restarted after this long (default 1000 ms). */
  restartDelayMs?: number;
  /** At shutdown, workers still running after this long are killed (default: `shutdownGraceMs` + 10 s). */
  killAfterMs?: number;
  /** How long a worker's turns in flight may finish on shutdown (default 10 000 ms); it is killed 10 s after that. */
  shutdownGraceMs?: number;
  /** Added to the workers' environment. */
  env?: NodeJS.ProcessEnv;
}

export interface ClusterPrimary {
  readonly state: PrimaryState;
  /** Resolves when every worker is listening, with the port they share. */
  readonly listening: Promise<{ port: number }>;
  /** Asks every worker to stop gracefully, waits for them, then writes what waits (usage, conversations). */
  shutdown(): Promise<void>;
}

/** The number of worker processes `--workers auto` means. */
export function defaultWorkerCount(): number {
  return availableParallelism();
}

/** Set in the environment of the workers `startClusterPrimary` forks. */
const WORKER_MARK = 'VOICEBOT_CLUSTER_WORKER';

/**
 * True in a worker forked by {@link startClusterPrimary}. A worker of another cluster (PM2's
 * cluster mode, say) has no such primary to ask and runs as a relay of its own.
 */
export function isRelayClusterWorker(env: Env = processEnv()): boolean {
  return cluster.isWorker && env[WORKER_MARK] === '1';
}

/** How long the workers' metrics may take to answer a scrape. */
const METRICS_TIMEOUT_MS = 2_000;

/** Starts the cluster: call in the primary process; the workers run the same script (`cluster.isWorker`). */
export function startClusterPrimary(options: ClusterPrimaryOptions): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error('startClusterPrimary must run in the primary process');
  const { logger } = options;
  const count = Math.max(1, options.workers ?? defaultWorkerCount());
  const state = new PrimaryState(options);
  const loaded = state.usage.load();
  // rate-limiter-flexible answers its own messages on the same channel.
  new (rateLimiterCluster().RateLimiterClusterMaster)();
  const env = { ...options.env, [WORKER_MARK]: '1' };
  const killAfterMs = options.killAfterMs ?? (options.shutdownGraceMs ?? 10_000) + 10_000;
  let stopping = false;
  const restarts: number[] = [];
  /** Workers that are listening: they have a relay (and its metrics) to answer with. */
  const ready = new Set<number>();
  let nextRequest = 1;
  const metricsWaiting = new Map<
    number,
    { replies: MetricObjectWithValues<MetricValue<string>>[][]; pending: Set<number>; done(): void }
  >();

  const reply = (worker: Worker, id: number, outcome: { result: unknown } | { error: string }) => {
    const message: ReplyMessage =
      'result' in outcome
        ? { channel: CHANNEL, id, ok: true, result: outcome.result }
        : { channel: CHANNEL, id, ok: false, error: outcome.error };
    if (worker.isConnected()) worker.send(message);
  };

  /** Prometheus text of every ready worker's registry, summed; a worker that does not answer in time is left out. */
  const clusterMetrics = (): Promise<string> => {
    const id = nextRequest++;
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined && ready.has(w.id) && w.isConnected(),
    );
    return new Promise((resolve) => {
      const entry = {
        replies: [] as MetricObjectWithValues<MetricValue<string>>[][],
        pending: new Set(workers.map((w) => w.id)),
        done: () => undefined as void,
      };
      const finish = () => {
        clearTimeout(timer);
        metricsWaiting.delete(id);
        resolve(AggregatorRegistry.aggregate(entry.replies).metrics());
      };
      const timer = setTimeout(finish, METRICS_TIMEOUT_MS);
      entry.done = finish;
      metricsWaiting.set(id, entry);
      if (workers.length === 0) return finish();
      for (const worker of workers) {
        const ask: NoticeMessage = {
          channel: CHANNEL,
          op: 'metrics.collect',
          args: { requestId: id },
        };
        worker.send(ask);
      }
    });
  };

  cluster.on('fork', (worker) => {
    // A send to a worker that just died fails with EPIPE as an 'error' event: without a listener
    // it would throw in the primary and take every worker down with it.
    worker.on('error', (error: Error) =>
      logger.warn({ worker: worker.id, err: error.message }, 'worker channel error'),
    );
  });

  cluster.on('message', (worker, message: unknown) => {
    if (!isClusterMessage(message) || 'ok' in message || !state.live(worker.id)) return;
    if ('id' in message) {
      const respond = async () => {
        await loaded;
        return message.op === 'metrics' ? clusterMetrics() : state.request(worker.id, message);
      };
      respond().then(
        (result) => reply(worker, message.id, { result }),
        (error: unknown) =>
          reply(worker, message.id, {
            error: error instanceof Error ? error.message : String(error),
          }),
      );
      return;
    }
    if (message.op === 'metrics.json') {
      const waiting = metricsWaiting.get(message.args.requestId);
      if (!waiting || !waiting.pending.delete(worker.id)) return;
      waiting.replies.push(message.args.metrics);
      if (waiting.pending.size === 0) waiting.done();
      return;
    }
    if (message.op === 'key.revoked') {
      for (const other of Object.values(cluster.workers ?? {})) {
        if (other && other !== worker && other.isConnected()) other.send(message);
      }
      return;
    }
    state.notice(worker.id, message);
  });

  let onAllListening: (address: { port: number }) => void = () => undefined;
  const listening = new Promise<{ port: number }>((resolve) => {
    onAllListening = resolve;
  });
  cluster.on('listening', (worker, address) => {
    ready.add(worker.id);
    if (ready.size === count) onAllListening({ port: address.port });
  });

  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id);
    state.workerGone(worker.id);
    for (const waiting of metricsWaiting.values())
      if (waiting.pending.delete(worker.id) && waiting.pending.size === 0) waiting.done();
    if (stopping) return;
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && (restarts[0] as number) < now - 60_000) restarts.shift();
    logger.error(
      { worker: worker.id, code, signal },
      'worker died; its sockets are lost, their clients reconnect and resume',
    );
    if (restarts.length > 5 * count) {
      logger.fatal('workers keep dying (more than 5 restarts per worker in a minute); stopping');
      void shutdown().then(() => process.exit(1));
      return;
    }
    setTimeout(() => {
      if (!stopping) cluster.fork(env);
    }, options.restartDelayMs ?? 1000).unref();
  });

  for (let i = 0; i < count; i++) cluster.fork(env);
  logger.info({ workers: count }, 'relay cluster started');

  async function shutdown(): Promise<void> {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined,
    );
    const killer = setTimeout(() => {
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, killAfterMs);
    killer.unref();
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', () => resolve());
            const notice: NoticeMessage = { channel: CHANNEL, op: 'shutdown', args: {} };
            // A worker still starting has no relay to drain (and no one listening for the notice yet).
            if (ready.has(worker.id) && worker.isConnected()) worker.send(notice);
            else worker.process.kill('SIGTERM');
          }),
      ),
    );
    clearTimeout(killer);
    await state.close();
  }

  return { state, listening, shutdown };
}
