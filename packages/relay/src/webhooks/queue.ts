/**
 * The persistent outbox (`webhook_outbox`): {@link DbWebhookOutbox.enqueue} writes one row per
 * endpoint that takes the event; the dispatcher claims and delivers them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { writeTransaction } from '../store/database.js';
import type { Storage } from '../store/storage.js';
import type { Schema, WebhookOutboxTable } from '../store/schema.js';
import { DEFAULT_RETRY, type RetrySchedule } from './backoff.js';
import type {
  EnqueueOptions,
  WebhookEndpoint,
  WebhookEndpoints,
  WebhookEvent,
  WebhookSink,
} from './outbox.js';

/** Attempts kept in a row's delivery log. */
export const MAX_LOG_ENTRIES = 20;
/** Largest event body (bytes); a larger `data` is refused (logged) rather than stored. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface DeliveryAttempt {
  at: string;
  status?: number;
  error?: string;
  ms: number;
}

export interface DeliveryView {
  id: string;
  message_id: string;
  event: string;
  bot: string;
  conversation_id: string | null;
  url: string;
  status: WebhookOutboxTable['status'];
  attempts: number;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_status: number | null;
  last_error: string | null;
  log: DeliveryAttempt[];
}

const iso = (ms: unknown): string => new Date(Number(ms)).toISOString();

export function deliveryView(row: Selectable<WebhookOutboxTable>): DeliveryView {
  return {
    id: row.id,
    message_id: row.message_id,
    event: row.event,
    bot: row.bot,
    conversation_id: row.conversation_id,
    url: row.url,
    status: row.status,
    attempts: Number(row.attempts),
    created_at: iso(row.created_at),
    next_attempt_at: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    delivered_at: row.delivered_at === null ? null : iso(row.delivered_at),
    last_status: row.last_status === null ? null : Number(row.last_status),
    last_error: row.last_error,
    log: JSON.parse(row.log) as DeliveryAttempt[],
  };
}

export function endpointsFor(
  endpoints: WebhookEndpoints,
  bot: string,
  event: WebhookEvent,
): WebhookEndpoint[] {
  return [...(endpoints.byBot.get(bot) ?? []), ...endpoints.global].filter((e) =>
    e.events.includes(event),
  );
}

export class DbWebhookOutbox implements WebhookSink {
  /** Called after rows were added (the dispatcher of this process delivers them at once). */
  onEnqueued: (() => void) | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly endpoints: WebhookEndpoints,
    private readonly retry: RetrySchedule = DEFAULT_RETRY,
  ) {}

  /** Whether any endpoint is configured (the admin console says "not configured" otherwise). */
  get configured(): boolean {
    return (
      this.endpoints.global.length > 0 ||
      [...this.endpoints.byBot.values()].some((list) => list.length > 0)
    );
  }

  private async db(): Promise<Kysely<Schema>> {
    await this.storage.ready();
    return this.storage.db;
  }

  async enqueue(
    event: WebhookEvent,
    bot: string,
    data: Record<string, unknown>,
    options: EnqueueOptions = {},
  ): Promise<void> {
    const targets = endpointsFor(this.endpoints, bot, event);
    if (targets.length === 0) return;
    const messageId = options.idempotencyKey
      ? `msg_${createHash('sha256').update(`${event}\n${options.idempotencyKey}`).digest('base64url').slice(0, 32)}`
      : `msg_${randomBytes(18).toString('base64url')}`;
    const now = Date.now();
    const body = JSON.stringify({ type: event, timestamp: new Date(now).toISOString(), data });
    if (Buffer.byteLength(body) > MAX_BODY_BYTES)
      throw new Error(`webhook ${event} body is over ${MAX_BODY_BYTES} bytes`);
    const conversationId =
      typeof data['conversation_id'] === 'string' ? data['conversation_id'] : null;
    await this.storage.ready();
    await writeTransaction(this.storage.db, this.storage.engine, async (trx) => {
      for (const endpoint of targets)
        await trx
          .insertInto('webhook_outbox')
          .values({
            id: `whd_${randomBytes(16).toString('base64url')}`,
            message_id: messageId,
            event,
            bot,
            conversation_id: conversationId,
            url: endpoint.url,
            secret_env: endpoint.secretEnv,
            body,
            status: 'pending',
            attempts: 0,
            created_at: now,
            next_attempt_at: now,
            give_up_at: now + this.retry.giveUpAfterMs,
            locked_until: 0,
            delivered_at: null,
            last_status: null,
            last_error: null,
            log: '[]',
          })
          .onConflict((oc) => oc.columns(['message_id', 'url']).doNothing())
          .execute();
    });
    this.onEnqueued?.();
  }

  /** Deliveries, newest first (`after`: the id of the last row of the previous page). */
  async list(
    filter: {
      status?: string | undefined;
      event?: string | undefined;
      conversation?: string | undefined;
    },
    limit: number,
    after?: string,
  ): Promise<DeliveryView[]> {
    const db = await this.db();
    let query = db
      .selectFrom('webhook_outbox')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (filter.status !== undefined)
      query = query.where('status', '=', filter.status as WebhookOutboxTable['status']);
    if (filter.event !== undefined) query = query.where('event', '=', filter.event);
    if (filter.conversation !== undefined)
      query = query.where('conversation_id', '=', filter.conversation);
    if (after !== undefined) {
      const last = await db
        .selectFrom('webhook_outbox')
        .select(['created_at', 'id'])
        .where('id', '=', after)
        .executeTakeFirst();
      if (last)
        query = query.where((eb) =>
          eb.or([
            eb('created_at', '<', Number(last.created_at)),
            eb.and([eb('created_at', '=', Number(last.created_at)), eb('id', '<', last.id)]),
          ]),
        );
    }
    return (await query.execute()).map(deliveryView);
  }

  async get(id: string): Promise<DeliveryView | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('webhook_outbox')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && deliveryView(row);
  }

  /** Queues a delivery again now, with a fresh day of retries. False when there is no such row. */
  async retryNow(id: string): Promise<boolean> {
    const db = await this.db();
    const now = Date.now();
    const result = await db
      .updateTable('webhook_outbox')
      .set({
        status: 'pending',
        next_attempt_at: now,
        give_up_at: now + this.retry.giveUpAfterMs,
      })
      .where('id', '=', id)
      .where('locked_until', '<=', now)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) this.onEnqueued?.();
    return Number(result.numUpdatedRows) === 1;
  }
}
