import { type Kysely, type Migration } from 'kysely';

/**
 * Console sign-ins, shared by every relay on the database: keyed by the SHA-256 of the session id
 * (the cookie itself is never stored; the CSRF token is derived from it), with the try-out keys
 * made for the session (JSON object, bot → key id).
 */
export function consoleSessions(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('console_sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('ip', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('try_keys', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      for (const [name, column] of [
        ['console_sessions_expires', 'expires_at'],
        ['console_sessions_created', 'created_at'],
      ] as const)
        await db.schema.createIndex(name).on('console_sessions').column(column).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('console_sessions').ifExists().execute();
    },
  };
}
