/**
 * Conversation records in the relay's database (`conversation_records`, one row per conversation,
 * and `conversation_record_turns`, one per recorded turn), on SQLite and PostgreSQL alike.
 */
import type { Kysely, Selectable } from 'kysely';
import type { TurnMetrics } from '@voice-bot/protocol';
import { writeTransaction } from '../store/database.js';
import type { Storage } from '../store/storage.js';
import type {
  ConversationRecordTurnsTable,
  ConversationRecordsTable,
  Schema,
} from '../store/schema.js';

export type Sentiment = 'positive' | 'neutral' | 'negative';
export type Urgency = 'low' | 'normal' | 'high';

export interface RecordedTool {
  name: string;
  ok: boolean;
  args: unknown;
  result?: unknown;
  error?: string;
}

export interface RecordedTurn {
  sessionId: string;
  turnId: number;
  at: number;
  user?: string | undefined;
  assistant?: string | undefined;
  interrupted: boolean;
  error?: string | undefined;
  metrics?: TurnMetrics | undefined;
  tools: RecordedTool[];
}

export interface HandoffDetail {
  reason?: string;
  urgency?: string;
}

export interface Analysis {
  summary: string | null;
  sentiment: Sentiment | null;
  urgency: Urgency | null;
  extracted: Record<string, unknown> | null;
  error?: string | undefined;
}

export interface RecordFilter {
  key?: string | undefined;
  bot?: string | undefined;
  /** `started_at` bounds, epoch ms (inclusive from, exclusive to). */
  from?: number | undefined;
  to?: number | undefined;
  sentiment?: Sentiment | undefined;
  urgency?: Urgency | undefined;
  handoff?: boolean | undefined;
  feedback?: 'up' | 'down' | 'any' | undefined;
  status?: ConversationRecordsTable['status'] | undefined;
}

export interface RecordView {
  id: string;
  key_id: string;
  bot: string;
  status: ConversationRecordsTable['status'];
  started_at: string;
  updated_at: string;
  ended_at: string | null;
  expires_at: string;
  turn_count: number;
  handoff: boolean;
  handoff_detail: HandoffDetail | null;
  feedback: { up: number; down: number };
  summary: string | null;
  sentiment: string | null;
  urgency: string | null;
  extracted: Record<string, unknown> | null;
  analysis_error: string | null;
}

export interface TurnView {
  session_id: string;
  turn_id: number;
  at: string;
  user: string | null;
  assistant: string | null;
  interrupted: boolean;
  error: string | null;
  metrics: TurnMetrics | null;
  tools: RecordedTool[];
  feedback: { rating: 'up' | 'down'; comment: string | null; at: string } | null;
}

export type FullRecord = RecordView & { turns: TurnView[] };

/** Turns a record keeps at most; later ones are not stored (a conversation that long is logged). */
export const MAX_RECORDED_TURNS = 500;

const iso = (ms: unknown): string => new Date(Number(ms)).toISOString();
const parse = <T>(text: string | null): T | null =>
  text === null ? null : (JSON.parse(text) as T);

function recordView(row: Selectable<ConversationRecordsTable>): RecordView {
  return {
    id: row.id,
    key_id: row.key_id,
    bot: row.bot,
    status: row.status,
    started_at: iso(row.started_at),
    updated_at: iso(row.updated_at),
    ended_at: row.ended_at === null ? null : iso(row.ended_at),
    expires_at: iso(row.expires_at),
    turn_count: Number(row.turns),
    handoff: Number(row.handoff) === 1,
    handoff_detail: parse<HandoffDetail>(row.handoff_detail),
    feedback: { up: Number(row.feedback_up), down: Number(row.feedback_down) },
    summary: row.summary,
    sentiment: row.sentiment,
    urgency: row.urgency,
    extracted: parse<Record<string, unknown>>(row.extracted),
    analysis_error: row.analysis_error,
  };
}

function turnView(row: Selectable<ConversationRecordTurnsTable>): TurnView {
  return {
    session_id: row.session_id,
    turn_id: Number(row.turn_id),
    at: iso(row.at),
    user: row.user_text,
    assistant: row.assistant_text,
    interrupted: Number(row.interrupted) === 1,
    error: row.error,
    metrics: parse<TurnMetrics>(row.metrics),
    tools: JSON.parse(row.tools) as RecordedTool[],
    feedback:
      row.feedback_rating === 'up' || row.feedback_rating === 'down'
        ? {
            rating: row.feedback_rating,
            comment: row.feedback_comment,
            at: iso(row.feedback_at),
          }
        : null,
  };
}

/** A page cursor: the last row's `started_at` and id. */
export function encodeCursor(row: { started_at: string; id: string }): string {
  return Buffer.from(`${Date.parse(row.started_at)}:${row.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { startedAt: number; id: string } | undefined {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^(\d{1,16}):(conv_[\w-]{1,100})$/.exec(text);
  return match ? { startedAt: Number(match[1]), id: match[2] as string } : undefined;
}

export class RecordStore {
  /** `ended`: told when records were made due at once (a revoked key's), to end them now. */
  constructor(
    private readonly storage: Storage,
    private readonly ended?: () => void,
  ) {}

  private async db(): Promise<Kysely<Schema>> {
    await this.storage.ready();
    return this.storage.db;
  }

  private async write<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
    await this.storage.ready();
    return writeTransaction(this.storage.db, this.storage.engine, fn);
  }

  /**
   * A socket started (or resumed) the conversation: the record exists from now on, open until
   * `endsAt`. A record that had ended opens again (its next end is a new generation).
   */
  async opened(input: {
    id: string;
    keyId: string;
    bot: string;
    transcripts: boolean;
    now: number;
    endsAt: number;
    expiresAt: number;
  }): Promise<void> {
    await this.write(async (trx) => {
      const existing = await trx
        .selectFrom('conversation_records')
        .select(['status', 'key_id', 'bot'])
        .where('id', '=', input.id)
        .executeTakeFirst();
      if (!existing) {
        await trx
          .insertInto('conversation_records')
          .values({
            id: input.id,
            key_id: input.keyId,
            bot: input.bot,
            started_at: input.now,
            updated_at: input.now,
            ends_at: input.endsAt,
            expires_at: input.expiresAt,
            status: 'open',
            claimed_until: 0,
            generation: 0,
            transcripts: input.transcripts ? 1 : 0,
            turns: 0,
            handoff: 0,
            handoff_detail: null,
            feedback_up: 0,
            feedback_down: 0,
            ended_at: null,
            summary: null,
            sentiment: null,
            urgency: null,
            extracted: null,
            analysis_error: null,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        return;
      }
      if (existing.key_id !== input.keyId || existing.bot !== input.bot) return;
      await trx
        .updateTable('conversation_records')
        .set((eb) => ({
          updated_at: input.now,
          ends_at: input.endsAt,
          expires_at: input.expiresAt,
          ...(existing.status === 'ended'
            ? { status: 'open' as const, generation: eb('generation', '+', 1) }
            : {}),
        }))
        .where('id', '=', input.id)
        .execute();
    });
  }

  /** The socket closed: the conversation ends at `endsAt` unless a socket resumes it first. */
  async closed(id: string, endsAt: number): Promise<void> {
    const db = await this.db();
    await db
      .updateTable('conversation_records')
      .set({ ends_at: endsAt })
      .where('id', '=', id)
      .where('status', '=', 'open')
      .execute();
  }

  /**
   * The key was revoked: its open conversations cannot be resumed, so they are due now rather than
   * after their TTL. Returns how many were.
   */
  async endKey(keyId: string, now: number): Promise<number> {
    const ended = await this.endOpen(now, { keyId });
    if (ended > 0) this.ended?.();
    return ended;
  }

  /** As {@link endKey}, for every revoked key (revoked by another process, e.g. the CLI). */
  endRevoked(now: number): Promise<number> {
    return this.endOpen(now, { revoked: true });
  }

  private async endOpen(now: number, keys: { keyId: string } | { revoked: true }): Promise<number> {
    const db = await this.db();
    const result = await db
      .updateTable('conversation_records')
      .set({ ends_at: now })
      .where('status', '=', 'open')
      .where('ends_at', '>', now)
      .where((eb) =>
        'keyId' in keys
          ? eb('key_id', '=', keys.keyId)
          : eb(
              'key_id',
              'in',
              eb.selectFrom('client_keys').select('id').where('revoked_at', 'is not', null),
            ),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Stores one ended turn; `handoff` marks the record. False when the record is full or gone. */
  async turn(
    id: string,
    turn: RecordedTurn,
    update: { now: number; expiresAt: number; handoff?: HandoffDetail | undefined },
  ): Promise<boolean> {
    return this.write(async (trx) => {
      const record = await trx
        .selectFrom('conversation_records')
        .select(['turns'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!record || Number(record.turns) >= MAX_RECORDED_TURNS) return false;
      const inserted = await trx
        .insertInto('conversation_record_turns')
        .values({
          conversation_id: id,
          session_id: turn.sessionId,
          turn_id: turn.turnId,
          at: turn.at,
          user_text: turn.user ?? null,
          assistant_text: turn.assistant ?? null,
          interrupted: turn.interrupted ? 1 : 0,
          error: turn.error ?? null,
          metrics: turn.metrics ? JSON.stringify(turn.metrics) : null,
          tools: JSON.stringify(turn.tools),
          feedback_rating: null,
          feedback_comment: null,
          feedback_at: null,
        })
        .onConflict((oc) => oc.columns(['conversation_id', 'session_id', 'turn_id']).doNothing())
        .executeTakeFirst();
      const added = Number(inserted.numInsertedOrUpdatedRows ?? 0);
      await trx
        .updateTable('conversation_records')
        .set((eb) => ({
          updated_at: update.now,
          expires_at: update.expiresAt,
          turns: eb('turns', '+', added),
          ...(update.handoff ? { handoff: 1, handoff_detail: JSON.stringify(update.handoff) } : {}),
        }))
        .where('id', '=', id)
        .execute();
      return true;
    });
  }

  /** Rates a recorded turn (a second rating replaces the first). False when there is no such turn. */
  async feedback(
    id: string,
    sessionId: string,
    turnId: number,
    rating: 'up' | 'down',
    comment: string | undefined,
    now: number,
  ): Promise<boolean> {
    return this.write(async (trx) => {
      const turn = await trx
        .selectFrom('conversation_record_turns')
        .select(['seq', 'feedback_rating'])
        .where('conversation_id', '=', id)
        .where('session_id', '=', sessionId)
        .where('turn_id', '=', turnId)
        .executeTakeFirst();
      if (!turn) return false;
      await trx
        .updateTable('conversation_record_turns')
        .set({ feedback_rating: rating, feedback_comment: comment ?? null, feedback_at: now })
        .where('seq', '=', turn.seq)
        .execute();
      const before = turn.feedback_rating;
      await trx
        .updateTable('conversation_records')
        .set((eb) => ({
          updated_at: now,
          feedback_up: eb(
            'feedback_up',
            '+',
            (rating === 'up' ? 1 : 0) - (before === 'up' ? 1 : 0),
          ),
          feedback_down: eb(
            'feedback_down',
            '+',
            (rating === 'down' ? 1 : 0) - (before === 'down' ? 1 : 0),
          ),
        }))
        .where('id', '=', id)
        .execute();
      return true;
    });
  }

  /** Records whose conversation has ended (or whose analysing relay went away), oldest first. */
  async due(now: number, limit: number): Promise<string[]> {
    const db = await this.db();
    const rows = await db
      .selectFrom('conversation_records')
      .select('id')
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'open'), eb('ends_at', '<=', now)]),
          eb.and([eb('status', '=', 'analysing'), eb('claimed_until', '<=', now)]),
        ]),
      )
      .orderBy('ends_at')
      .limit(limit)
      .execute();
    return rows.map((row) => row.id);
  }

  /**
   * Takes a due record for analysis until `now + leaseMs`: true for exactly one relay of a fleet
   * (the update is conditional on the row still being due).
   */
  async claim(id: string, now: number, leaseMs: number): Promise<boolean> {
    const db = await this.db();
    const result = await db
      .updateTable('conversation_records')
      .set({ status: 'analysing', claimed_until: now + leaseMs })
      .where('id', '=', id)
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'open'), eb('ends_at', '<=', now)]),
          eb.and([eb('status', '=', 'analysing'), eb('claimed_until', '<=', now)]),
        ]),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The record and its turns (oldest first), or undefined. */
  async get(id: string): Promise<FullRecord | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('conversation_records')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const turns = await db
      .selectFrom('conversation_record_turns')
      .selectAll()
      .where('conversation_id', '=', id)
      .orderBy('seq')
      .execute();
    return { ...recordView(row), turns: turns.map(turnView) };
  }

  /** The generation of a record (part of its `conversation.ended` event's id). */
  async generation(id: string): Promise<number> {
    const db = await this.db();
    const row = await db
      .selectFrom('conversation_records')
      .select('generation')
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(row?.generation ?? 0);
  }

  /**
   * Stores the analysis and ends the record, if this relay still holds it. Without transcripts the
   * turns' texts (and tool arguments and results) are erased now.
   */
  async finish(id: string, analysis: Analysis, now: number): Promise<boolean> {
    return this.write(async (trx) => {
      const result = await trx
        .updateTable('conversation_records')
        .set({
          status: 'ended',
          ended_at: now,
          summary: analysis.summary,
          sentiment: analysis.sentiment,
          urgency: analysis.urgency,
          extracted: analysis.extracted ? JSON.stringify(analysis.extracted) : null,
          analysis_error: analysis.error ?? null,
        })
        .where('id', '=', id)
        .where('status', '=', 'analysing')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      const record = await trx
        .selectFrom('conversation_records')
        .select('transcripts')
        .where('id', '=', id)
        .executeTakeFirst();
      if (record && Number(record.transcripts) === 0)
        await trx
          .updateTable('conversation_record_turns')
          .set({ user_text: null, assistant_text: null, tools: '[]' })
          .where('conversation_id', '=', id)
          .execute();
      return true;
    });
  }

  /** Deletes a claimed record and its turns (a conversation in which the visitor said nothing). */
  async drop(id: string): Promise<void> {
    await this.write(async (trx) => {
      const deleted = await trx
        .deleteFrom('conversation_records')
        .where('id', '=', id)
        .where('status', '=', 'analysing')
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 1)
        await trx
          .deleteFrom('conversation_record_turns')
          .where('conversation_id', '=', id)
          .execute();
    });
  }

  /** One page of records, newest first. */
  async list(filter: RecordFilter, limit: number, after?: string): Promise<RecordView[]> {
    const db = await this.db();
    let query = db
      .selectFrom('conversation_records')
      .selectAll()
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (filter.key !== undefined) query = query.where('key_id', '=', filter.key);
    if (filter.bot !== undefined) query = query.where('bot', '=', filter.bot);
    if (filter.from !== undefined) query = query.where('started_at', '>=', filter.from);
    if (filter.to !== undefined) query = query.where('started_at', '<', filter.to);
    if (filter.sentiment !== undefined) query = query.where('sentiment', '=', filter.sentiment);
    if (filter.urgency !== undefined) query = query.where('urgency', '=', filter.urgency);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.handoff !== undefined) query = query.where('handoff', '=', filter.handoff ? 1 : 0);
    if (filter.feedback === 'up') query = query.where('feedback_up', '>', 0);
    if (filter.feedback === 'down') query = query.where('feedback_down', '>', 0);
    if (filter.feedback === 'any')
      query = query.where((eb) => eb.or([eb('feedback_up', '>', 0), eb('feedback_down', '>', 0)]));
    if (after !== undefined) {
      const cursor = decodeCursor(after);
      if (cursor)
        query = query.where((eb) =>
          eb.or([
            eb('started_at', '<', cursor.startedAt),
            eb.and([eb('started_at', '=', cursor.startedAt), eb('id', '<', cursor.id)]),
          ]),
        );
    }
    const rows = await query.execute();
    return rows.map(recordView);
  }

  /** Every matching record with its turns, newest first, read a page at a time. */
  async *export(filter: RecordFilter, pageSize = 100): AsyncGenerator<FullRecord> {
    let after: string | undefined;
    for (;;) {
      const page = await this.list(filter, pageSize, after);
      for (const record of page) {
        const full = await this.get(record.id);
        if (full) yield full;
      }
      const last = page[page.length - 1];
      if (!last || page.length < pageSize) return;
      after = encodeCursor(last);
    }
  }

  /**
   * A visitor's erasure: the record, its turns, the conversation's stored state and its webhook
   * outbox rows. Returns what was deleted.
   */
  async erase(id: string): Promise<{ records: number; conversations: number; webhooks: number }> {
    return this.write(async (trx) => {
      await trx.deleteFrom('conversation_record_turns').where('conversation_id', '=', id).execute();
      const records = await trx
        .deleteFrom('conversation_records')
        .where('id', '=', id)
        .executeTakeFirst();
      const conversations = await trx
        .deleteFrom('conversations')
        .where('id', '=', id)
        .executeTakeFirst();
      const webhooks = await trx
        .deleteFrom('webhook_outbox')
        .where('conversation_id', '=', id)
        .executeTakeFirst();
      return {
        records: Number(records.numDeletedRows),
        conversations: Number(conversations.numDeletedRows),
        webhooks: Number(webhooks.numDeletedRows),
      };
    });
  }

  /** Deletes records (and their turns) past their retention; returns how many records. */
  async purge(now: number, batch = 500): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.write(async (trx) => {
        const ids = (
          await trx
            .selectFrom('conversation_records')
            .select('id')
            .where('expires_at', '<=', now)
            .where('status', '!=', 'analysing')
            .limit(batch)
            .execute()
        ).map((row) => row.id);
        if (ids.length === 0) return 0;
        await trx
          .deleteFrom('conversation_record_turns')
          .where('conversation_id', 'in', ids)
          .execute();
        await trx.deleteFrom('conversation_records').where('id', 'in', ids).execute();
        return ids.length;
      });
      total += deleted;
      if (deleted < batch) return total;
    }
  }
}
