/**
 * Console sign-ins in the relay's database (`console_sessions`, migration 008), so every relay of a
 * fleet knows them. A row is keyed by the SHA-256 of the session id: the cookie's value is never
 * stored. Rows leave only through `delete … returning`, and the try-out keys of the rows a
 * transaction deletes are revoked (with a `key.revoke` audit row naming the reason) in that same
 * transaction: a session never ends without its keys, and when two relays end the same session at
 * once (sign-out, expiry, pushed out by a newer one) exactly one of them revokes them.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AuditActor } from '../auth/keys.js';
import { writeTransaction } from './database.js';
import { writeAudit } from './keys.js';
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

export type ConsoleSessionEnd = 'expired' | 'pushed_out' | 'signed_out' | 'signed_in_again';

/** A session that ended: the try-out keys it held, revoked already (their sockets are the caller's to close). */
export interface EndedConsoleSession {
  hash: string;
  ip: string;
  reason: ConsoleSessionEnd;
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

const consoleActor = (ip: string): AuditActor => ({ kind: 'console', ip });

/** Revokes try-out keys inside the caller's transaction; `reason` goes into the audit row's detail. */
async function revokeKeys(
  trx: Kysely<Schema>,
  keyIds: readonly string[],
  actor: AuditActor,
  reason: ConsoleSessionEnd | 'replaced',
): Promise<void> {
  for (const id of keyIds) {
    const changed = await trx
      .updateTable('client_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(changed.numUpdatedRows) > 0)
      await writeAudit(trx, actor, 'key.revoke', id, { reason });
  }
}

/** Revokes the keys of sessions that ended, each as its own admin (`actor` overrides). */
async function revokeEnded(
  trx: Kysely<Schema>,
  sessions: readonly EndedConsoleSession[],
  actor?: AuditActor,
): Promise<EndedConsoleSession[]> {
  for (const session of sessions)
    await revokeKeys(trx, session.keyIds, actor ?? consoleActor(session.ip), session.reason);
  return [...sessions];
}

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
   * Stores a new session and its `console.sign_in` audit row. Returns the sessions that ended
   * (their try-out keys revoked): the one the browser held before (`replaces`), the expired ones,
   * and the oldest live ones beyond {@link MAX_CONSOLE_SESSIONS}.
   */
  async create(
    hash: string,
    ip: string,
    expiresAt: number,
    replaces?: string,
  ): Promise<EndedConsoleSession[]> {
    const now = this.now();
    return this.write(async (trx) => {
      if (this.storage.engine === 'postgres')
        await sql`select pg_advisory_xact_lock(${CREATE_LOCK})`.execute(trx);
      const previous =
        replaces === undefined
          ? []
          : await trx
              .deleteFrom('console_sessions')
              .where('id_hash', '=', replaces)
              .returning(['id_hash', 'ip', 'try_keys'])
              .execute();
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
      const gone = await revokeEnded(trx, [
        ...ended(previous, 'signed_in_again').map((s) => ({ ...s, ip })),
        ...ended(expired, 'expired'),
        ...ended(pushedOut, 'pushed_out'),
      ]);
      await writeAudit(trx, consoleActor(ip), 'console.sign_in', null);
      return gone;
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

  /**
   * Signs a session out from `ip` (revoking its try-out keys, with a `console.sign_out` audit row):
   * what it held, or undefined when it had ended already.
   */
  async delete(hash: string, ip: string): Promise<EndedConsoleSession | undefined> {
    return this.write(async (trx) => {
      const rows = await trx
        .deleteFrom('console_sessions')
        .where('id_hash', '=', hash)
        .returning(['id_hash', 'ip', 'try_keys'])
        .execute();
      const [session] = await revokeEnded(trx, ended(rows, 'signed_out'), consoleActor(ip));
      await writeAudit(trx, consoleActor(ip), 'console.sign_out', null);
      return session;
    });
  }

  /**
   * Records the try-out key made for `bot` from `ip`, revoking the key it replaces. Returns that
   * key's id, or undefined when the session is gone: then the new key is revoked instead.
   */
  async setTryKey(
    hash: string,
    bot: string,
    keyId: string,
    ip: string,
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
      if (!row) {
        await revokeKeys(trx, [keyId], consoleActor(ip), 'signed_out');
        return undefined;
      }
      const keys = parseKeys(row.try_keys);
      const replaced = keys.get(bot);
      keys.set(bot, keyId);
      await trx
        .updateTable('console_sessions')
        .set({ try_keys: JSON.stringify(Object.fromEntries(keys)) })
        .where('id_hash', '=', hash)
        .execute();
      if (replaced !== undefined) await revokeKeys(trx, [replaced], consoleActor(ip), 'replaced');
      return { replaced };
    });
  }

  /**
   * Deletes the expired sessions and revokes their try-out keys; each is returned to exactly one
   * caller, fleet-wide.
   */
  async sweep(): Promise<EndedConsoleSession[]> {
    const now = this.now();
    return this.write(async (trx) =>
      revokeEnded(trx, ended(await ConsoleSessionStore.expire(trx, now), 'expired')),
    );
  }
}
