import { randomBytes } from 'node:crypto';
import type {
  Conversation,
  ConversationMessage,
  ConversationStore,
  MetadataValue,
  OpenedConversation,
} from '../conversation/conversations.js';
import type { Logger } from '../logger.js';
import { CompiledQuery, type Kysely, type Selectable } from 'kysely';
import type { DbHandle } from './database.js';
import type { ConversationsTable, Schema } from './schema.js';

/** Retry delays of a conversation write that failed (the last one repeats). */
const RETRY_MS = [250, 1_000, 3_000, 5_000];
/** Conversations waiting to be written at most; beyond it the oldest waiting write is dropped (logged). */
const MAX_PENDING = 10_000;
/** Conversations written per transaction at most (one statement each, one commit for all). */
const WRITE_BATCH = 64;

/**
 * Conversations in the `conversations` table, so a visitor resumes on any relay sharing the
 * database, and after a restart. `open` reads; `touch` queues an upsert and returns at once:
 * writes go out one at a time in the order they were made (only a conversation's newest state
 * is written), a failed write is retried until it succeeds, and a turn never waits for one.
 * A conversation unused for `ttlMs` is never resumed and is purged.
 */
export class DbConversationStore implements ConversationStore {
  /** id → the newest snapshot not yet written (Map order = the order they were made). */
  private readonly pending = new Map<string, Row>();
  /** The upsert's SQL, compiled once, and the row field behind each of its parameters. */
  private upsert: { sql: string; fields: (keyof Row)[] } | undefined;
  private writing: Promise<void> | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly handle: DbHandle,
    readonly ttlMs: number,
    private readonly log?: Logger,
  ) {}

  async open(
    requestedId: string | undefined,
    keyId: string,
    bot: string,
    userId?: string,
  ): Promise<OpenedConversation> {
    if (requestedId && requestedId.length <= 100) {
      const waiting = this.pending.get(requestedId);
      const found = waiting ?? (await this.read(requestedId));
      if (
        found &&
        found.key_id === keyId &&
        found.bot === bot &&
        (found.user_id ?? undefined) === userId &&
        Number(found.expires_at) > Date.now()
      )
        return { conversation: fromRow(found), resumed: true };
    }
    const conversation: Conversation = {
      id: `conv_${randomBytes(16).toString('base64url')}`,
      keyId,
      bot,
      ...(userId === undefined ? {} : { userId }),
      messages: [],
      pageMetadata: {},
      toolMetadata: {},
      updatedAt: Date.now(),
    };
    return { conversation, resumed: false };
  }

  private async read(id: string): Promise<Selectable<ConversationsTable> | undefined> {
    const db = await this.handle.get();
    return db
      .selectFrom('conversations')
      .selectAll()
      .where('id', '=', id)
      .where('expires_at', '>', Date.now())
      .executeTakeFirst();
  }

  touch(conversation: Conversation): void {
    const now = Date.now();
    conversation.updatedAt = now;
    const row: Row = {
      id: conversation.id,
      key_id: conversation.keyId,
      bot: conversation.bot,
      user_id: conversation.userId ?? null,
      messages: JSON.stringify(conversation.messages),
      page_metadata: JSON.stringify(conversation.pageMetadata),
      tool_metadata: JSON.stringify(conversation.toolMetadata),
      created_at: now,
      updated_at: now,
      expires_at: now + this.ttlMs,
    };
    this.pending.delete(conversation.id);
    this.pending.set(conversation.id, row);
    if (this.pending.size > MAX_PENDING) {
      const [oldest] = this.pending.keys();
      if (oldest !== undefined) {
        this.pending.delete(oldest);
        this.log?.error({ conversation: oldest }, 'conversation write dropped: too many waiting');
      }
    }
    this.kick();
  }

  /** Starts the writer unless it runs or waits to retry. */
  private kick(): void {
    if (this.writing || this.retryTimer || this.pending.size === 0) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0) {
      const batch: Row[] = [];
      for (const row of this.pending.values()) {
        batch.push(row);
        if (batch.length === WRITE_BATCH) break;
      }
      try {
        await this.write(batch);
        // A snapshot made while the batch was being written stays pending.
        for (const row of batch) if (this.pending.get(row.id) === row) this.pending.delete(row.id);
        if (this.failures > 0) this.log?.info('conversation writes resumed');
        this.failures = 0;
      } catch (error) {
        this.failures++;
        if (this.failures === 1)
          this.log?.warn(
            { err: this.handle.redact(String(error)) },
            'conversation write failed; retrying',
          );
        if (this.closed) return;
        const delay = RETRY_MS[Math.min(this.failures - 1, RETRY_MS.length - 1)] as number;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, delay);
        this.retryTimer.unref();
        return;
      }
    }
  }

  /** Upserts `rows` in one transaction (a single row as one statement). */
  private async write(rows: Row[]): Promise<void> {
    const upsert = async (db: Kysely<Schema>) => {
      for (const row of rows) await db.executeQuery(this.compiledUpsert(db, row));
    };
    if (rows.length === 1) await this.handle.writeOne(upsert);
    else await this.handle.write(upsert);
  }

  /**
   * The upsert of `row` without building and compiling the query again: it is compiled once, with a
   * distinct placeholder per field, to learn which field each parameter takes.
   */
  private compiledUpsert(db: Kysely<Schema>, row: Row): CompiledQuery {
    if (!this.upsert) {
      const names = Object.keys(row) as (keyof Row)[];
      const placeholders = Object.fromEntries(names.map((name) => [name, `\u0000${name}`]));
      const compiled = upsertQuery(db, placeholders as unknown as Row).compile();
      const fields = compiled.parameters.map((value) => {
        const name = String(value).slice(1) as keyof Row;
        if (!names.includes(name)) throw new Error(`unexpected upsert parameter ${String(value)}`);
        return name;
      });
      this.upsert = { sql: compiled.sql, fields };
    }
    return CompiledQuery.raw(
      this.upsert.sql,
      this.upsert.fields.map((name) => row[name]),
    );
  }

  /** Deletes expired conversations; returns how many. */
  async purge(now = Date.now()): Promise<number> {
    const db = await this.handle.get();
    const result = await db
      .deleteFrom('conversations')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Conversations waiting to be written. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Writes what is waiting (one more try each, at most `timeoutMs`); stops retrying afterwards. */
  async flush(timeoutMs = 5_000): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      this.kick();
      await this.writing;
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.pending.size > 0)
      this.log?.error({ conversations: this.pending.size }, 'conversations not written at close');
  }
}

function upsertQuery(db: Kysely<Schema>, row: Row) {
  return db
    .insertInto('conversations')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('id')
        .doUpdateSet((eb) => ({
          messages: eb.ref('excluded.messages'),
          page_metadata: eb.ref('excluded.page_metadata'),
          tool_metadata: eb.ref('excluded.tool_metadata'),
          updated_at: eb.ref('excluded.updated_at'),
          expires_at: eb.ref('excluded.expires_at'),
        }))
        // An id is only ever written by the key and bot that created it.
        .where('conversations.key_id', '=', row.key_id)
        .where('conversations.bot', '=', row.bot)
        .where('conversations.user_id', 'is not distinct from', row.user_id),
    );
}

/** A row as written. */
interface Row {
  id: string;
  key_id: string;
  bot: string;
  user_id: string | null;
  messages: string;
  page_metadata: string;
  tool_metadata: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

function fromRow(row: Selectable<ConversationsTable> | Row): Conversation {
  return {
    id: row.id,
    keyId: row.key_id,
    bot: row.bot,
    ...(row.user_id == null ? {} : { userId: row.user_id }),
    messages: JSON.parse(row.messages) as ConversationMessage[],
    pageMetadata: JSON.parse(row.page_metadata) as Record<string, MetadataValue>,
    toolMetadata: JSON.parse(row.tool_metadata) as Record<string, MetadataValue>,
    updatedAt: Number(row.updated_at),
  };
}
