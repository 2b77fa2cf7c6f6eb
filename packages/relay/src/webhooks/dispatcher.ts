/**
 * Delivers the outbox: claims due rows (a conditional UPDATE, so two relays of a fleet never send
 * one row at the same moment), POSTs each signed body through the SSRF guard, and records the
 * attempt: delivered on 2xx, otherwise retried with exponential backoff until its day is over.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.js';
import type { Storage } from '../store/storage.js';
import type { Schema } from '../store/schema.js';
import { assertLiteralAllowed, guardedLookup, type AddressPolicy } from '../tools/ssrf.js';
import { DEFAULT_RETRY, retryDelayMs, type RetrySchedule } from './backoff.js';
import type { WebhookEndpoints } from './outbox.js';
import { MAX_LOG_ENTRIES, type DeliveryAttempt } from './queue.js';
import { signWebhook } from './sign.js';

/** Response bytes read at most (kept for the log): a receiver's answer is not the relay's business. */
const MAX_RESPONSE_BYTES = 1024;
/** Error text kept per attempt at most. */
const MAX_ERROR_CHARS = 300;
/** Delivered and failed rows (the delivery log) are deleted this long after they were queued. */
export const KEEP_FINISHED_MS = 30 * 24 * 60 * 60_000;
const PURGE_EVERY_MS = 60 * 60_000;

export interface DispatcherOptions {
  storage: Storage;
  endpoints: WebhookEndpoints;
  policy: AddressPolicy;
  log: Logger;
  retry?: RetrySchedule | undefined;
  /** How often the outbox is polled for due rows (ms, default 2000). */
  pollMs?: number | undefined;
  /** Per-request time limit (ms, default 10 000). */
  timeoutMs?: number | undefined;
  /** Deliveries in flight at most (default 4). */
  concurrency?: number | undefined;
}

interface Sent {
  status?: number;
  error?: string;
}

/** One POST; resolves with the status, or an error text (never rejects). */
export function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  policy: AddressPolicy,
  timeoutMs: number,
): Promise<Sent> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ error: 'invalid URL' });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    return Promise.resolve({ error: `unsupported URL scheme ${target.protocol}` });
  try {
    assertLiteralAllowed(target.hostname, policy);
  } catch (error) {
    return Promise.resolve({ error: `refused: ${(error as Error).message}` });
  }
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const done = (sent: Sent) => {
      if (settled) return;
      settled = true;
      resolve(sent);
    };
    const req = request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(policy) as never,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.byteLength;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('error', () => undefined);
        res.on('close', () => done({ status }));
        res.on('end', () => done({ status }));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      done({
        error: (error.name === 'AbortError'
          ? `timed out after ${timeoutMs} ms`
          : error.code === 'EBLOCKED'
            ? `refused: ${error.message}`
            : error.message || String(error.code)
        ).slice(0, MAX_ERROR_CHARS),
      }),
    );
    req.end(body);
  });
}

export class WebhookDispatcher {
  private readonly retry: RetrySchedule;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly secrets = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastPurge = 0;

  constructor(private readonly options: DispatcherOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.concurrency = options.concurrency ?? 4;
    for (const endpoint of [
      ...options.endpoints.global,
      ...[...options.endpoints.byBot.values()].flat(),
    ])
      this.secrets.set(`${endpoint.url}\n${endpoint.secretEnv}`, endpoint.secret);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.options.pollMs ?? 2_000);
    this.timer.unref();
    this.kick();
  }

  /** Looks for due rows now (after an enqueue, or on the timer). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((error: unknown) =>
        this.options.log.warn({ err: String(error) }, 'webhook dispatch failed; retrying later'),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async db(): Promise<Kysely<Schema>> {
    await this.options.storage.ready();
    return this.options.storage.db;
  }

  /** Delivers due rows, `concurrency` at a time, until none is due. */
  private async drain(): Promise<void> {
    if (Date.now() - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = Date.now();
      const db = await this.db();
      await db
        .deleteFrom('webhook_outbox')
        .where('status', '!=', 'pending')
        .where('created_at', '<=', Date.now() - KEEP_FINISHED_MS)
        .execute();
    }
    for (let round = 0; round < 100 && !this.stopped; round++) {
      const db = await this.db();
      const now = Date.now();
      const due = await db
        .selectFrom('webhook_outbox')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .where('locked_until', '<=', now)
        .orderBy('next_attempt_at')
        .limit(this.concurrency)
        .execute();
      if (due.length === 0) return;
      await Promise.all(due.map((row) => this.deliver(row.id)));
    }
  }

  /** Claims one row (or finds another relay has it) and makes one attempt. */
  async deliver(id: string): Promise<void> {
    const db = await this.db();
    const now = Date.now();
    const claimed = await db
      .updateTable('webhook_outbox')
      .set({ locked_until: now + this.timeoutMs + 5_000 })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .where('locked_until', '<=', now)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return;
    const row = await db
      .selectFrom('webhook_outbox')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const secret = this.secrets.get(`${row.url}\n${row.secret_env}`);
    const started = performance.now();
    const timestamp = Math.floor(Date.now() / 1000);
    const sent: Sent =
      secret === undefined
        ? { error: 'the endpoint is no longer configured' }
        : await post(
            row.url,
            {
              'content-type': 'application/json',
              'user-agent': 'voicebot-relay-webhooks',
              'webhook-id': row.message_id,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signWebhook(secret, row.message_id, timestamp, row.body),
            },
            row.body,
            this.options.policy,
            this.timeoutMs,
          );
    const ended = Date.now();
    const ok = sent.status !== undefined && sent.status >= 200 && sent.status < 300;
    const attempts = Number(row.attempts) + 1;
    const attempt: DeliveryAttempt = {
      at: new Date(ended).toISOString(),
      ...(sent.status !== undefined ? { status: sent.status } : {}),
      ...(sent.error !== undefined ? { error: sent.error } : {}),
      ms: Math.round(performance.now() - started),
    };
    const log = [...(JSON.parse(row.log) as DeliveryAttempt[]), attempt].slice(-MAX_LOG_ENTRIES);
    const next = ended + retryDelayMs(attempts, this.retry);
    const giveUp = !ok && (secret === undefined || next > Number(row.give_up_at));
    await db
      .updateTable('webhook_outbox')
      .set({
        status: ok ? 'delivered' : giveUp ? 'failed' : 'pending',
        attempts,
        locked_until: 0,
        next_attempt_at: ok || giveUp ? ended : next,
        delivered_at: ok ? ended : null,
        last_status: sent.status ?? null,
        last_error: ok ? null : (sent.error ?? `HTTP ${sent.status}`),
        log: JSON.stringify(log),
      })
      .where('id', '=', id)
      .execute();
    const fields = {
      delivery: id,
      event: row.event,
      host: new URL(row.url).host,
      attempt: attempts,
      ...(sent.status !== undefined ? { status: sent.status } : {}),
    };
    if (ok) this.options.log.info(fields, 'webhook delivered');
    else if (giveUp)
      this.options.log.error({ ...fields, err: sent.error }, 'webhook failed; giving up');
    else
      this.options.log.warn({ ...fields, err: sent.error }, 'webhook attempt failed; will retry');
  }

  /** Stops polling and waits for the deliveries in flight. */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
