import { type Kysely, type Migration } from 'kysely';

/** The webhook outbox: one row per event and endpoint, with its delivery log. */
export function webhooks(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhook_outbox')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('bot', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text')
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('secret_env', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('give_up_at', 'bigint', (c) => c.notNull())
        .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('delivered_at', 'bigint')
        .addColumn('last_status', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('log', 'text', (c) => c.notNull().defaultTo('[]'))
        .addUniqueConstraint('webhook_outbox_message', ['message_id', 'url'])
        .execute();
      for (const [name, columns] of [
        ['webhook_outbox_due', ['status', 'next_attempt_at']],
        ['webhook_outbox_conversation', ['conversation_id']],
        ['webhook_outbox_created', ['created_at', 'id']],
      ] as const)
        await db.schema
          .createIndex(name)
          .on('webhook_outbox')
          .columns([...columns])
          .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('webhook_outbox').ifExists().execute();
    },
  };
}
