/**
 * The relay's one storage layer: client keys (+ audit log), usage per key per day, conversations
 * and used session tokens, in SQLite (`<dataDir>/voicebot.db`, the default) or PostgreSQL
 * (`DATABASE_URL`). Versioned migrations run at start ({@link Storage.ready}); an old
 * `<dataDir>/keys.json` is imported once.
 */
import { existsSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Migrator, sql, type Kysely } from 'kysely';
import type { ClientKeyRecord, KeyStore } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { StateStatus } from '../state/shared-state.js';
import { DbConversationStore } from './conversations.js';
import {
  StorageError,
  isSqliteBusy,
  openDatabase,
  resolveTarget,
  writeTransaction,
  type DbHandle,
  type Engine,
  type Target,
} from './database.js';
import { AuditLog, DbKeyStore, rowFromRecord, writeAudit } from './keys.js';
import { migrations } from './migrations/index.js';
import type { Schema } from './schema.js';
import { DbUsageLedger } from './usage.js';
import { DbTokenReplays } from './used-tokens.js';

export interface StorageOptions {
  /** `postgres://…` / `postgresql://…`: PostgreSQL. Absent: SQLite in `dataDir`. */
  databaseUrl?: string | undefined;
  /** SQLite's folder, and where an old `keys.json` is imported from. Default `./.voicebot`. */
  dataDir?: string | undefined;
  logger?: Logger | undefined;
  /** How often the database is pinged while monitoring (ms, default 5000). */
  pingMs?: number;
  /** How often expired tokens and conversations are deleted while monitoring (ms, default 60 000). */
  purgeMs?: number;
}

/** Each storage's key store → the storage (so a relay given only the keys uses their database). */
const storageOf = new WeakMap<KeyStore, Storage>();

/** The meta row that marks `keys.json` as imported. */
const KEYS_IMPORTED = 'keys_json_imported';

/** Migration bookkeeping tables (Kysely's). */
const MIGRATION_TABLE = 'voicebot_migrations';
const MIGRATION_LOCK_TABLE = 'voicebot_migrations_lock';

/** The message of any error, AggregateErrors (a refused connection to every address of a host) included. */
function describe(error: unknown): string {
  if (error instanceof AggregateError && !error.message)
    return error.errors.map((e: unknown) => describe(e)).join('; ');
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

export class Storage {
  readonly engine: Engine;
  /** Where the data lives, without the password (`postgres://user@host:5432/db` or the SQLite file). */
  readonly display: string;
  readonly db: Kysely<Schema>;
  readonly keys: DbKeyStore;
  readonly audit: AuditLog;
  readonly usedTokens: DbTokenReplays;
  readonly usage: DbUsageLedger;
  private readonly target: Target;
  private readonly handle: DbHandle;
  private readonly stores = new Map<number, DbConversationStore>();
  private readying: Promise<void> | undefined;
  private health: StateStatus = { ok: true };
  private pingTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: StorageOptions = {}) {
    this.target = resolveTarget(options);
    this.engine = this.target.engine;
    this.display = this.target.display;
    const opened = openDatabase(this.target);
    this.db = opened.db;
    opened.onIdleError((error) =>
      options.logger?.warn(
        { err: this.target.redact(describe(error)) },
        'database connection lost (it reconnects on the next query)',
      ),
    );
    this.handle = {
      engine: this.engine,
      redact: (text) => this.target.redact(text),
      get: async () => {
        await this.ready();
        return this.db;
      },
      write: async (fn) => {
        await this.ready();
        return writeTransaction(this.db, this.engine, fn);
      },
      writeOne: async (fn) => {
        await this.ready();
        return this.engine === 'postgres'
          ? fn(this.db)
          : writeTransaction(this.db, this.engine, fn);
      },
    };
    this.keys = new DbKeyStore(this.handle);
    this.audit = new AuditLog(this.handle);
    this.usedTokens = new DbTokenReplays(this.handle);
    this.usage = new DbUsageLedger(this.handle);
    storageOf.set(this.keys, this);
  }

  /** The conversations store for this TTL (one per TTL, closed with the storage). */
  conversations(ttlMs: number): DbConversationStore {
    let store = this.stores.get(ttlMs);
    if (!store) {
      store = new DbConversationStore(this.handle, ttlMs, this.options.logger);
      this.stores.set(ttlMs, store);
    }
    return store;
  }

  /**
   * Migrates and imports `keys.json` (once per process; a failure is retried by the next call).
   * Rejects with a {@link StorageError} naming the database (never its password).
   */
  ready(): Promise<void> {
    this.readying ??= this.prepare().catch((error: unknown) => {
      this.readying = undefined;
      throw error;
    });
    return this.readying;
  }

  private async prepare(): Promise<void> {
    try {
      await this.ping();
      await this.migrate();
      await this.importKeysJson();
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw this.error(error);
    }
  }

  /** A StorageError that names the database, without its password. */
  error(error: unknown): StorageError {
    return new StorageError(
      `cannot use the database at ${this.display}: ${this.target.redact(describe(error))}`,
    );
  }

  /** Runs the migrations not applied yet; returns their names (none: already up to date). */
  async migrate(): Promise<string[]> {
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrations(this.engine) },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    for (let attempt = 1; ; attempt++) {
      const { error, results } = await migrator.migrateToLatest();
      if (!error)
        return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      // Two processes migrating one SQLite file at once: the second waits and finds nothing to do.
      if (this.engine === 'sqlite' && isSqliteBusy(error) && attempt < 20) {
        await new Promise((r) => setTimeout(r, 50 * attempt));
        continue;
      }
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new StorageError(
        `migration ${failed ?? '(setup)'} failed on ${this.display}: ${this.target.redact(describe(error))}`,
      );
    }
  }

  /** Imports `<dataDir>/keys.json` (the store before the database) once, then renames it `keys.json.imported`. */
  private async importKeysJson(): Promise<void> {
    const dataDir = resolve(this.options.dataDir ?? '.voicebot');
    const file = join(dataDir, 'keys.json');
    if (!existsSync(file)) return;
    let parsed: { keys?: unknown };
    try {
      parsed = JSON.parse(await readFile(file, 'utf8')) as { keys?: unknown };
    } catch (error) {
      throw new StorageError(`cannot import ${file}: ${describe(error)}`);
    }
    const keys = (Array.isArray(parsed.keys) ? parsed.keys : []) as ClientKeyRecord[];
    const imported = await writeTransaction(this.db, this.engine, async (trx) => {
      const marked = await trx
        .insertInto('meta')
        .values({
          key: KEYS_IMPORTED,
          value: JSON.stringify({ file, at: new Date().toISOString() }),
        })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      if (Number(marked.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
      let count = 0;
      for (const record of keys) {
        const inserted = await trx
          .insertInto('client_keys')
          .values(
            rowFromRecord({
              ...record,
              origins: record.origins ?? [],
              bots: record.bots ?? [],
              label: record.label ?? '',
              revoked_at: record.revoked_at ?? null,
            }),
          )
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) continue;
        count++;
        await writeAudit(trx, { kind: 'import', file }, 'key.import', record.id);
      }
      return count;
    });
    if (imported === undefined) {
      this.options.logger?.warn({ file }, 'keys.json was imported before; it is not read again');
      return;
    }
    await rename(file, `${file}.imported`).catch((error: unknown) =>
      this.options.logger?.warn(
        { file, err: describe(error) },
        'could not rename the imported keys.json',
      ),
    );
    this.options.logger?.info(
      { file, keys: imported },
      `imported ${imported} client keys from ${file}`,
    );
  }

  /** `select 1`: throws a StorageError when the database does not answer. */
  async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.db);
    } catch (error) {
      throw this.error(error);
    }
  }

  /** Whether the database answered its last ping (while monitoring). */
  status(): StateStatus {
    return this.health;
  }

  /** Pings now and updates {@link status}; logs when the database goes away or comes back. */
  async check(): Promise<StateStatus> {
    try {
      await this.ping();
      if (!this.health.ok)
        this.options.logger?.info({ database: this.display }, 'database reachable again');
      this.health = { ok: true };
    } catch (error) {
      const detail = (error as Error).message;
      if (this.health.ok) this.options.logger?.error({ err: detail }, 'database unreachable');
      this.health = { ok: false, detail };
    }
    return this.health;
  }

  /** Starts the ping (health) and the purge of expired tokens and conversations. Idempotent. */
  monitor(): void {
    if (this.pingTimer || this.closing) return;
    this.pingTimer = setInterval(() => void this.check(), this.options.pingMs ?? 5_000);
    this.pingTimer.unref();
    this.purgeTimer = setInterval(
      () => void this.purge().catch(() => undefined),
      this.options.purgeMs ?? 60_000,
    );
    this.purgeTimer.unref();
  }

  /** Deletes used-token ids and conversations that expired. */
  async purge(): Promise<{ tokens: number; conversations: number }> {
    const tokens = await this.usedTokens.purge();
    const db = await this.handle.get();
    const result = await db
      .deleteFrom('conversations')
      .where('expires_at', '<=', Date.now())
      .executeTakeFirst();
    return { tokens, conversations: Number(result.numDeletedRows) };
  }

  /** Writes what waits (conversations) and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pingTimer);
      clearInterval(this.purgeTimer);
      await Promise.all([...this.stores.values()].map((store) => store.close()));
      await this.db.destroy();
    })();
    return this.closing;
  }
}

/** Creates the storage without touching the database yet (see {@link Storage.ready}). */
export function createStorage(options: StorageOptions = {}): Storage {
  return new Storage(options);
}

/** Opens the storage and migrates it: what a program using the relay's data calls first. */
export async function openStorage(options: StorageOptions = {}): Promise<Storage> {
  const storage = new Storage(options);
  try {
    await storage.ready();
  } catch (error) {
    await storage.close().catch(() => undefined);
    throw error;
  }
  return storage;
}

/** The SQLite storage of a data dir's keys (`KeyStore.inDataDir`, kept for older code). */
export function openDataDirKeys(dataDir: string): KeyStore {
  return createStorage({ dataDir }).keys;
}

/** The storage a key store belongs to, when it came from {@link openDataDirKeys} or a Storage. */
export function storageOfKeys(keys: KeyStore): Storage | undefined {
  return storageOf.get(keys);
}
