/**
 * Opening the relay's database: an embedded SQLite file (the default, no setup) or PostgreSQL
 * (`DATABASE_URL=postgres://…`), both behind one Kysely instance. Nothing here ever prints a
 * password: every message about the database goes through {@link redactUrl} / {@link Target.redact}.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from 'kysely';
import type { Pool } from 'pg';
import { importOptional } from '../dependencies.js';
import type { Schema } from './schema.js';

export type Engine = 'sqlite' | 'postgres';

/** The SQLite file in the data dir. */
export const SQLITE_FILE = 'voicebot.db';

/** The database could not be opened, migrated or reached. Its message never holds a password. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
}

/** Where the data lives, and how to speak of it without the password. */
export interface Target {
  engine: Engine;
  /** `postgres://user@host:5432/db` (no password) or the SQLite file's path. */
  display: string;
  /** The PostgreSQL host (and port), for "cannot reach …" messages; the file for SQLite. */
  host: string;
  /** Removes the password from any text (an error message from the driver, say). */
  redact(text: string): string;
  url?: string;
  file?: string;
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`; other text unchanged. */
export function redactUrl(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
}

/** Which engine and where: a `postgres://` / `postgresql://` URL, else SQLite in `dataDir`. */
export function resolveTarget(options: {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
}): Target {
  const url = options.databaseUrl;
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new StorageError(`DATABASE_URL is not a valid URL: ${redactUrl(url)}`);
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
      throw new StorageError(
        `DATABASE_URL must start with postgres:// or postgresql:// (got ${parsed.protocol}//…)`,
      );
    const password = decodeURIComponent(parsed.password);
    const host = parsed.host || (parsed.searchParams.get('host') ?? 'localhost');
    const shown = new URL(url);
    shown.password = '';
    const redact = (text: string) => {
      let out = redactUrl(text);
      if (password.length >= 3) out = out.split(password).join('***');
      if (parsed.password.length >= 3) out = out.split(parsed.password).join('***');
      return out;
    };
    return { engine: 'postgres', display: redact(shown.toString()), host, redact, url };
  }
  const file = resolve(options.dataDir ?? '.voicebot', SQLITE_FILE);
  return { engine: 'sqlite', display: file, host: file, redact: (text) => text, file };
}

/**
 * Sets SQLite up so the processes of one machine (cluster workers, the CLI) share the file.
 * better-sqlite3 is synchronous: a long busy timeout would block the event loop (and deadlock two
 * connections of one process), so it is short and {@link writeTransaction} retries asynchronously.
 */
async function openSqlite(file: string): Promise<Database.Database> {
  const { default: Sqlite } = await importOptional(
    'better-sqlite3',
    'The SQLite database',
    () => import('better-sqlite3'),
  );
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Sqlite(file);
  db.pragma('busy_timeout = 2000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${SQLITE_BUSY_MS}`);
  return db;
}

/** Prepared statements kept per SQLite connection (the relay's queries are a few dozen texts). */
export const STATEMENT_CACHE_SIZE = 100;

/**
 * The connection as Kysely's SQLite driver sees it, with its prepared statements kept by SQL text:
 * the driver prepares every query it runs (compiling its SQL each time) otherwise. At most
 * {@link STATEMENT_CACHE_SIZE}, least recently used dropped first; a statement still being iterated
 * (a streamed select) is not handed out twice.
 */
export function cachingStatements(db: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    prepare(text) {
      let statement = cache.get(text);
      if (statement && !statement.busy) {
        cache.delete(text);
        cache.set(text, statement);
        return statement;
      }
      statement = db.prepare(text);
      cache.set(text, statement);
      if (cache.size > STATEMENT_CACHE_SIZE) {
        const [oldest] = cache.keys();
        if (oldest !== undefined) cache.delete(oldest);
      }
      return statement;
    },
    close() {
      cache.clear();
      db.close();
    },
  };
}

/** How long one SQLite statement waits (synchronously) for another connection's lock. */
const SQLITE_BUSY_MS = 20;
/** How long a write waits in all (asynchronously, retrying) for another connection's lock. */
const SQLITE_WRITE_WAIT_MS = 10_000;

export const isSqliteBusy = (error: unknown): boolean =>
  typeof error === 'object' &&
  error !== null &&
  String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY');

export interface OpenedDatabase {
  db: Kysely<Schema>;
  /** Called when an idle PostgreSQL connection fails (the server went away): logged, never thrown. */
  onIdleError(listener: (error: Error) => void): void;
}

/**
 * The database behind Kysely. Its driver (better-sqlite3 or pg) is loaded by the first query, so
 * a relay on SQLite never loads pg, and the reverse.
 */
export function openDatabase(target: Target): OpenedDatabase {
  let idleError: (error: Error) => void = () => undefined;
  if (target.engine === 'sqlite') {
    const file = target.file ?? join('.voicebot', SQLITE_FILE);
    const db = new Kysely<Schema>({
      dialect: new SqliteDialect({
        database: async () => cachingStatements(await openSqlite(file)),
      }),
    });
    return { db, onIdleError: () => undefined };
  }
  const connect = async (): Promise<Pool> => {
    const { default: pg } = await importOptional(
      'pg',
      'A PostgreSQL DATABASE_URL',
      () => import('pg'),
    );
    const pool = new pg.Pool({
      connectionString: target.url,
      max: 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      query_timeout: 15_000,
    });
    // An idle client whose server went away emits 'error' on the pool: without a listener it would crash the process.
    pool.on('error', (error) => idleError(error));
    return pool;
  };
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: connect }) });
  return {
    db,
    onIdleError: (listener) => {
      idleError = listener;
    },
  };
}

/** What the repositories hold: the database once it is ready, and write transactions. */
export interface DbHandle {
  readonly engine: Engine;
  /** Removes the password from a driver's message. */
  redact(text: string): string;
  /** The database, after migrations (waits for them). */
  get(): Promise<Kysely<Schema>>;
  /**
   * Runs `fn` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so a
   * read-then-write waits for another connection's writer instead of failing.
   */
  write<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T>;
  /** One write statement: as is on PostgreSQL, in {@link write} on SQLite (to wait for the lock). */
  writeOne<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T>;
}

export async function writeTransaction<T>(
  db: Kysely<Schema>,
  engine: Engine,
  fn: (trx: Kysely<Schema>) => Promise<T>,
): Promise<T> {
  if (engine === 'postgres') return db.transaction().execute(fn);
  return db.connection().execute(async (conn) => {
    const deadline = Date.now() + SQLITE_WRITE_WAIT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await sql`begin immediate`.execute(conn);
        break;
      } catch (error) {
        if (!isSqliteBusy(error) || Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, Math.min(100, 2 * attempt) + Math.random() * 5));
      }
    }
    try {
      const out = await fn(conn);
      await sql`commit`.execute(conn);
      return out;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw error;
    }
  });
}
