/**
 * Conversation records for the bots that keep them: hands each session its recorder, and in the
 * background ends conversations that were not resumed within their TTL (one analysis each, claimed
 * in the database so one relay of a fleet runs it, then `conversation.ended`), and deletes records
 * past their retention.
 */
import type { BotConfig, LimitsConfig, ProvidersConfig } from '../config/config.js';
import type { KeyStore } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import { effectiveLimits } from '../policy/limits.js';
import type { UsageStore } from '../policy/usage.js';
import type { ProviderClients } from '../providers/providers.js';
import type { Storage } from '../store/storage.js';
import type { EnqueueOptions, WebhookEvent, WebhookSink } from '../webhooks/outbox.js';
import { analysisRequest, runAnalysis } from './analysis.js';
import { SessionRecord, type SessionRecorder } from './recorder.js';
import { RecordStore, type Analysis, type FullRecord } from './store.js';

/** A sink that also takes an idempotency key (the outbox does). */
export interface KeyedWebhookSink extends WebhookSink {
  enqueue(
    event: WebhookEvent,
    bot: string,
    data: Record<string, unknown>,
    options?: EnqueueOptions,
  ): Promise<void>;
}

export interface RecordsOptions {
  storage: Storage;
  bots: readonly BotConfig[];
  limits: LimitsConfig;
  providers: ProvidersConfig;
  clients: ProviderClients;
  usage: UsageStore;
  keys: KeyStore;
  webhooks: KeyedWebhookSink;
  log: Logger;
  /** How often ended conversations and expired records are looked for (ms, default 15 000). */
  sweepMs?: number | undefined;
  /** Analyses running at once in this process at most (default 2). */
  maxConcurrent?: number | undefined;
}

/** How long an analysing relay holds a record before another may take it over. */
const CLAIM_MS = 5 * 60_000;
/** A socket that never says it closed (a crashed relay) ends its conversation after this much beyond the TTL. */
const OPEN_FALLBACK_MS = 24 * 60 * 60_000;

export class ConversationRecords {
  readonly store: RecordStore;
  private readonly bots: Map<string, BotConfig>;
  private readonly maxConcurrent: number;
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** A sweep asked for (its `now`) that the one running may have missed: it runs next. */
  private requested: number | undefined;
  private readonly analyses = new Set<Promise<void>>();
  /** Sessions whose record writes may still be queued. */
  private readonly sessions = new Set<SessionRecord>();
  private closed = false;

  constructor(private readonly options: RecordsOptions) {
    this.store = new RecordStore(options.storage, () => {
      if (this.timer) void this.sweep();
    });
    this.bots = new Map(options.bots.map((bot) => [bot.id, bot]));
    this.maxConcurrent = options.maxConcurrent ?? 2;
  }

  /** Some bot keeps records. */
  get enabled(): boolean {
    return [...this.bots.values()].some((bot) => bot.records !== undefined);
  }

  /** The recorder for a session of `bot`, or undefined when the bot keeps no records. */
  open(input: {
    bot: BotConfig;
    conversationId: string;
    keyId: string;
    sessionId: string;
    log: Logger;
  }): SessionRecorder | undefined {
    const config = input.bot.records;
    if (!config || this.closed) return undefined;
    const { limits } = this.options;
    const session = new SessionRecord({
      store: this.store,
      config,
      feedback: input.bot.feedback === true,
      conversationId: input.conversationId,
      keyId: input.keyId,
      bot: input.bot.id,
      sessionId: input.sessionId,
      ttlMs: limits.conversationTtlMs,
      openMs:
        (limits.maxSessionMs > 0 ? limits.maxSessionMs : OPEN_FALLBACK_MS) +
        limits.conversationTtlMs,
      log: input.log,
      onClosed: (final) => {
        this.sessions.delete(session);
        if (final && this.timer) void this.sweep();
      },
    });
    this.sessions.add(session);
    return session;
  }

  start(): void {
    if (this.timer || this.closed || !this.enabled) return;
    this.timer = setInterval(() => void this.sweep(), this.options.sweepMs ?? 15_000);
    this.timer.unref();
  }

  /**
   * Ends due conversations (analysis started, not awaited) and purges expired records. Asked while
   * a sweep runs (which may have looked before a record became due), it sweeps once more after it.
   */
  sweep(now = Date.now()): Promise<void> {
    this.requested = Math.max(this.requested ?? now, now);
    this.sweeping ??= this.sweepWhileAsked();
    return this.sweeping;
  }

  private async sweepWhileAsked(): Promise<void> {
    for (let now = this.requested; now !== undefined; now = this.requested) {
      this.requested = undefined;
      await this.sweepOnce(now).catch((error: unknown) =>
        this.options.log.warn({ err: String(error) }, 'records sweep failed; retrying later'),
      );
    }
    this.sweeping = undefined;
  }

  private async sweepOnce(now: number): Promise<void> {
    await this.store.purge(now);
    // Keys revoked elsewhere (the CLI, another relay): their conversations cannot be resumed.
    await this.store.endRevoked(now);
    const free = this.maxConcurrent - this.running;
    if (free <= 0 || this.closed) return;
    for (const id of await this.store.due(now, free)) {
      if (this.running >= this.maxConcurrent || this.closed) break;
      if (!(await this.store.claim(id, now, CLAIM_MS))) continue;
      this.running++;
      const analysis: Promise<void> = this.end(id)
        .catch((error: unknown) =>
          this.options.log.error(
            { conversation: id, err: String(error) },
            'conversation end failed',
          ),
        )
        .finally(() => {
          this.running--;
          this.analyses.delete(analysis);
        });
      this.analyses.add(analysis);
    }
  }

  /** Settles when the analyses started so far are done (tests, shutdown). */
  async idle(): Promise<void> {
    await this.sweeping;
    await Promise.all([...this.analyses]);
  }

  /** Analyses a claimed record, stores the result, and queues `conversation.ended`. */
  private async end(id: string): Promise<void> {
    const record = await this.store.get(id);
    if (!record) return;
    // Opened and closed without a word from the visitor (a greeting at most): nothing to keep.
    if (!record.turns.some((turn) => turn.user)) {
      await this.store.drop(id);
      return;
    }
    const bot = this.bots.get(record.bot);
    const analysis = await this.analyse(bot, record);
    const generation = await this.store.generation(id);
    const data = {
      conversation_id: record.id,
      bot: record.bot,
      key_id: record.key_id,
      started_at: record.started_at,
      ended_at: new Date().toISOString(),
      turn_count: record.turn_count,
      handoff: record.handoff,
      handoff_detail: record.handoff_detail,
      feedback: record.feedback,
      summary: analysis.summary,
      sentiment: analysis.sentiment,
      urgency: analysis.urgency,
      extracted: analysis.extracted,
      analysis_error: analysis.error ?? null,
    };
    // Queued before the record is marked ended: a relay that dies between the two leaves the record
    // to be taken over, and the second enqueue of the same generation is a no-op.
    await this.options.webhooks.enqueue('conversation.ended', record.bot, data, {
      idempotencyKey: `${record.id}:${generation}`,
    });
    await this.store.finish(id, analysis, Date.now());
  }

  private async analyse(bot: BotConfig | undefined, record: FullRecord): Promise<Analysis> {
    const none = (error: string): Analysis => ({
      summary: null,
      sentiment: null,
      urgency: null,
      extracted: null,
      error,
    });
    if (!bot?.records) return none('the bot keeps no records any more');
    const { usage, keys, limits, providers, clients, log } = this.options;
    const key = await keys.get(record.key_id);
    const quota = effectiveLimits(limits, key?.limits).llmTokensPerKeyPerDay;
    if (quota > 0 && usage.tokensToday(record.key_id) >= quota)
      return none("the key's daily LLM token quota is used up");
    const request = analysisRequest(bot, bot.chatModel ?? providers.llm.model, record);
    usage.add(record.key_id, { prompt_tokens: request.estimate });
    try {
      const outcome = await runAnalysis(
        clients.llm,
        bot,
        request,
        AbortSignal.timeout(Math.max(providers.llm.timeoutMs, 5_000) * 2),
      );
      if (outcome.usage)
        usage.add(record.key_id, {
          prompt_tokens: outcome.usage.prompt_tokens - request.estimate,
          completion_tokens: outcome.usage.completion_tokens,
        });
      return outcome.analysis;
    } catch (error) {
      log.warn({ conversation: record.id, err: String(error) }, 'conversation analysis failed');
      return none(String((error as Error).message ?? error).slice(0, 300));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const writes = Promise.all([...this.sessions].map((session) => session.settled()));
    await Promise.race([writes, new Promise((r) => setTimeout(r, 5_000).unref())]);
    await this.idle();
  }
}
