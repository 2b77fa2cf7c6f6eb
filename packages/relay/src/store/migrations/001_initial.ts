import { type Kysely, type Migration } from 'kysely';
import type { Engine } from '../database.js';

/** Keys, audit log, usage per key per day, conversations, used session tokens, meta flags. */
export function initial(engine: Engine): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('client_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('label', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('hint', 'text', (c) => c.notNull())
        .addColumn('origins', 'text', (c) => c.notNull())
        .addColumn('bots', 'text', (c) => c.notNull())
        .addColumn('limits', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('id', engine === 'postgres' ? 'bigserial' : 'integer', (c) =>
          engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text')
        .addColumn('detail', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema
        .createIndex('audit_log_key')
        .on('audit_log')
        .columns(['key_id', 'id'])
        .execute();

      let usage = db.schema
        .createTable('usage_days')
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull());
      for (const counter of [
        'sessions',
        'sockets',
        'turns',
        'audio_in_bytes',
        'audio_out_ms',
        'prompt_tokens',
        'completion_tokens',
        'tts_chars',
      ])
        usage = usage.addColumn(counter, 'bigint', (c) => c.notNull().defaultTo(0));
      await usage
        .addColumn('errors', 'text', (c) => c.notNull().defaultTo('{}'))
        .addPrimaryKeyConstraint('usage_days_pk', ['day', 'key_id'])
        .execute();

      await db.schema
        .createTable('conversations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('bot', 'text', (c) => c.notNull())
        .addColumn('messages', 'text', (c) => c.notNull())
        .addColumn('page_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('tool_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('conversations_expires')
        .on('conversations')
        .column('expires_at')
        .execute();

      await db.schema
        .createTable('used_tokens')
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('used_tokens_expires')
        .on('used_tokens')
        .column('expires_at')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of [
        'used_tokens',
        'conversations',
        'usage_days',
        'audit_log',
        'client_keys',
        'meta',
      ])
        await db.schema.dropTable(table).ifExists().execute();
    },
  };
}
