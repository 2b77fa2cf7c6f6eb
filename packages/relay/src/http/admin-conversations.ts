/**
 * Conversation records and webhook deliveries in the admin API (mounted by admin.ts, behind its
 * bearer check):
 *
 *   GET    /admin/conversations             list, newest first (?key ?bot ?from ?to ?sentiment ?urgency
 *                                            ?handoff ?feedback ?status, ?limit=1..200, ?cursor)
 *   GET    /admin/conversations/export      the same filters, every match with its turns, as JSON Lines
 *   GET    /admin/conversations/:id         one record with its turns
 *   DELETE /admin/conversations/:id         erasure: the record, the conversation's state, its webhook rows
 *   GET    /admin/webhooks/deliveries       the outbox and its delivery log (?status ?event ?conversation ?limit ?cursor);
 *                                            `configured`: whether any webhook endpoint is set up
 *   GET    /admin/webhooks/deliveries/:id   one delivery
 *   POST   /admin/webhooks/deliveries/:id/retry   queue it again now (a fresh day of retries)
 */
import { Hono, type Context } from 'hono';
import { RelayError } from './errors.js';
import { SENTIMENTS, URGENCIES } from '../records/analysis.js';
import {
  decodeCursor,
  encodeCursor,
  type RecordFilter,
  type RecordStore,
} from '../records/store.js';
import type { DbWebhookOutbox } from '../webhooks/queue.js';

export interface ConversationsAdminDeps {
  records: RecordStore;
  webhooks: DbWebhookOutbox;
}

const MAX_LIMIT = 200;
const badRequest = (message: string) => new RelayError('bad_request', 400, message);
const notFound = (what: string) => new RelayError('not_found', 404, `no ${what} with that id`);

function limitOf(c: Context): number {
  const limit = Number(c.req.query('limit') ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw badRequest(`limit must be 1 to ${MAX_LIMIT}`);
  return limit;
}

function idParam(c: Context, prefix: string): string {
  const id = c.req.param('id') ?? '';
  if (!id.startsWith(prefix) || id.length > 128 || !/^[\w-]+$/.test(id))
    throw badRequest(`the id must be a ${prefix}… id`);
  return id;
}

/** `2024-05-01`, an ISO time, or epoch milliseconds. */
function time(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw badRequest(`${field} must be a date, an ISO time or epoch ms`);
  return ms;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  field: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw badRequest(`${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function shortText(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > 128)
    throw badRequest(`${field} must be 1-128 characters`);
  return value;
}

function filterOf(c: Context): RecordFilter {
  const handoff = oneOf(c.req.query('handoff'), ['true', 'false'], 'handoff');
  return {
    key: shortText(c.req.query('key'), 'key'),
    bot: shortText(c.req.query('bot'), 'bot'),
    from: time(c.req.query('from'), 'from'),
    to: time(c.req.query('to'), 'to'),
    sentiment: oneOf(c.req.query('sentiment'), SENTIMENTS, 'sentiment'),
    urgency: oneOf(c.req.query('urgency'), URGENCIES, 'urgency'),
    handoff: handoff === undefined ? undefined : handoff === 'true',
    feedback: oneOf(c.req.query('feedback'), ['up', 'down', 'any'] as const, 'feedback'),
    status: oneOf(c.req.query('status'), ['open', 'analysing', 'ended'] as const, 'status'),
  };
}

export function conversationsAdmin({ records, webhooks }: ConversationsAdminDeps): Hono {
  const app = new Hono();

  app.get('/conversations', async (c) => {
    const filter = filterOf(c);
    const limit = limitOf(c);
    const cursor = c.req.query('cursor');
    if (cursor !== undefined && !decodeCursor(cursor)) throw badRequest('cursor is not valid');
    const page = await records.list(filter, limit, cursor);
    const last = page[page.length - 1];
    return c.json({
      conversations: page,
      next_cursor: last && page.length === limit ? encodeCursor(last) : null,
    });
  });

  app.get('/conversations/export', (c) => {
    const filter = filterOf(c);
    const encoder = new TextEncoder();
    const source = records.export(filter);
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await source.next();
          if (next.done) controller.close();
          else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`));
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await source.return(undefined);
      },
    });
    return c.body(stream, 200, {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'content-disposition': 'attachment; filename="conversations.jsonl"',
    });
  });

  app.get('/conversations/:id', async (c) => {
    const record = await records.get(idParam(c, 'conv_'));
    if (!record) throw notFound('conversation record');
    return c.json(record);
  });

  app.delete('/conversations/:id', async (c) => {
    const deleted = await records.erase(idParam(c, 'conv_'));
    return c.json({ deleted });
  });

  app.get('/webhooks/deliveries', async (c) => {
    const limit = limitOf(c);
    const cursor = c.req.query('cursor');
    if (cursor !== undefined && !/^whd_[\w-]{1,100}$/.test(cursor))
      throw badRequest('cursor is not valid');
    const page = await webhooks.list(
      {
        status: oneOf(c.req.query('status'), ['pending', 'delivered', 'failed'] as const, 'status'),
        event: oneOf(
          c.req.query('event'),
          ['conversation.ended', 'handoff.requested'] as const,
          'event',
        ),
        conversation: shortText(c.req.query('conversation'), 'conversation'),
      },
      limit,
      cursor,
    );
    const last = page[page.length - 1];
    return c.json({
      deliveries: page,
      next_cursor: last && page.length === limit ? last.id : null,
      configured: webhooks.configured,
    });
  });

  app.get('/webhooks/deliveries/:id', async (c) => {
    const delivery = await webhooks.get(idParam(c, 'whd_'));
    if (!delivery) throw notFound('delivery');
    return c.json(delivery);
  });

  app.post('/webhooks/deliveries/:id/retry', async (c) => {
    const id = idParam(c, 'whd_');
    if (!(await webhooks.get(id))) throw notFound('delivery');
    if (!(await webhooks.retryNow(id)))
      throw new RelayError('bad_request', 409, 'the delivery is being attempted right now');
    return c.json(await webhooks.get(id));
  });

  return app;
}
