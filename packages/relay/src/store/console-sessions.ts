/**
 * Console sign-ins in the relay's database (`console_sessions`, migration 008), so every relay of a
 * fleet knows them. A row is keyed by the SHA-256 of the session id: the cookie's value is never
 * stored. Rows leave only through `delete … returning`, so when two relays end the same session at
 * once (sign-out, expiry, pushed out by a newer one), exactly one of them gets its try-out keys to
 * revoke.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import { writeTransaction } from './database.js';
import type { Schema } from './schema.js';
import type { Storage } from './storage.js';

/** Sessions kept at once: beyond it the oldest is signed out. */
export const MAX_CONSOLE_SESSIONS = 64;

/** Serialises sign-ins on PostgreSQL, so the cap holds when relays sign people in at once. */
const CREATE_LOCK = 0x76_62_63_73;

export interface StoredConsoleSession {
  /** SHA-256 (hex) of the session id. */
  hash: string;
  ip: string;
  createdAt: number;
  expiresAt: number;
  /** bot id → try-out key id */
  tryKeys: Map<string, string>;
}

/** A session that ended: the try-out keys it held are for the caller to revoke. */
export interface EndedConsoleSession {
  hash: string;
  ip: string;
  reason: 'expired' | 'pushed_out' | 'signed_out';
  keyIds: string[];
}

type Row = Selectable<Schema['console_sessions']>;

function parseKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null)
      for (const [bot, id] of Object.entries(parsed)) if (typeof id === 'string') keys.set(bot, id);
  } catch {
    // A row this module did not write: no keys.
  }
  return keys;
}

const ended = (
  rows: Pick<Row, 'id_hash' | 'ip' | 'try_keys'>[],
  reason: EndedConsoleSession['reason'],
): EndedConsoleSession[] =>
  rows.map((row) => ({
    hash: row.id_hash,
    ip: row.ip,
    reason,
    keyIds: [...parseKeys(row.try_keys).values()],
  }));

export class ConsoleSessionStore {
  constructor(
    private readonly storage: Pick<Storage, 'db' | 'ready' | 'engine'>,
    private readonly now: () => number = Date.now,
  ) {}

  private async write<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
    await this.storage.ready();
    return writeTransaction(this.storage.db, this.storage.engine, fn);
  }

  private static expire(trx: Kysely<Schema>, now: number) {
    return trx
      .deleteFrom('console_sessions')
      .where('expires_at', '<=', now)
      .returning(['id_hash', 'ip', 'try_keys'])
      .execute();
  }

  /**
   * Stores a new session. Returns the sessions that ended to make room: the expired ones, and the
   * oldest live ones beyond {@link MAX_CONSOLE_SESSIONS}.
   */
  async create(hash: string, ip: string, expiresAt: number): Promise<EndedConsoleSession[]> {
    const now = this.now();
    return this.write(async (trx) => {
      if (this.storage.engine === 'postgres')
        await sql`select pg_advisory_xact_lock(${CREATE_LOCK})`.execute(trx);
      const expired = await ConsoleSessionStore.expire(trx, now);
      const { live } = await trx
        .selectFrom('console_sessions')
        .select((eb) => eb.fn.countAll<number | string>().as('live'))
        .executeTakeFirstOrThrow();
      const excess = Number(live) - MAX_CONSOLE_SESSIONS + 1;
      const pushedOut =
        excess > 0
          ? await trx
              .deleteFrom('console_sessions')
              .where('id_hash', 'in', (eb) =>
                eb
                  .selectFrom('console_sessions')
                  .select('id_hash')
                  .orderBy('created_at')
                  .orderBy('id_hash')
                  .limit(excess),
              )
              .returning(['id_hash', 'ip', 'try_keys'])
              .execute()
          : [];
      await trx
        .insertInto('console_sessions')
        .values({ id_hash: hash, ip, created_at: now, expires_at: expiresAt })
        .execute();
      return [...ended(expired, 'expired'), ...ended(pushedOut, 'pushed_out')];
    });
  }

  /** The live session with this hash. */
  async find(hash: string): Promise<StoredConsoleSession | undefined> {
    await this.storage.ready();
    const row = await this.storage.db
      .selectFrom('console_sessions')
      .selectAll()
      .where('id_hash', '=', hash)
      .where('expires_at', '>', this.now())
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      hash: row.id_hash,
      ip: row.ip,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
      tryKeys: parseKeys(row.try_keys),
    };
  }

  /** Signs a session out: its try-out keys, or undefined when it had ended already. */
  async delete(hash: string): Promise<EndedConsoleSession | undefined> {
    await this.storage.ready();
    const rows = await this.storage.db
      .deleteFrom('console_sessions')
      .where('id_hash', '=', hash)
      .returning(['id_hash', 'ip', 'try_keys'])
      .execute();
    return ended(rows, 'signed_out')[0];
  }

  /**
   * Records the try-out key made for `bot`. Returns the key it replaces (for the caller to
   * revoke), or undefined when the session is gone: then the new key is the caller's to revoke.
   */
  async setTryKey(
    hash: string,
    bot: string,
    keyId: string,
  ): Promise<{ replaced: string | undefined } | undefined> {
    const now = this.now();
    return this.write(async (trx) => {
      const row = await trx
        .selectFrom('console_sessions')
        .select('try_keys')
        .where('id_hash', '=', hash)
        .where('expires_at', '>', now)
        .$if(this.storage.engine === 'postgres', (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!row) return undefined;
      const keys = parseKeys(row.try_keys);
      const replaced = keys.get(bot);
      keys.set(bot, keyId);
      await trx
        .updateTable('console_sessions')
        .set({ try_keys: JSON.stringify(Object.fromEntries(keys)) })
        .where('id_hash', '=', hash)
        .execute();
      return { replaced };
    });
  }

  /** Deletes the expired sessions; each is returned to exactly one caller, fleet-wide. */
  async sweep(): Promise<EndedConsoleSession[]> {
    await this.storage.ready();
    return ended(await ConsoleSessionStore.expire(this.storage.db, this.now()), 'expired');
  }
}
