import { type Kysely, type Migration } from 'kysely';
import type { Engine } from '../database.js';

/** Conversation records (per bot, opt-in): one row per conversation, one per recorded turn. */
export function records(engine: Engine): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('conversation_records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('bot', 'text', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('ends_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
        .addColumn('claimed_until', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('transcripts', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('turns', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('handoff', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('handoff_detail', 'text')
        .addColumn('feedback_up', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('feedback_down', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('ended_at', 'bigint')
        .addColumn('summary', 'text')
        .addColumn('sentiment', 'text')
        .addColumn('urgency', 'text')
        .addColumn('extracted', 'text')
        .addColumn('analysis_error', 'text')
        .execute();
      for (const [name, columns] of [
        ['conversation_records_due', ['status', 'ends_at']],
        ['conversation_records_expires', ['expires_at']],
        ['conversation_records_started', ['started_at', 'id']],
      ] as const)
        await db.schema
          .createIndex(name)
          .on('conversation_records')
          .columns([...columns])
          .execute();

      await db.schema
        .createTable('conversation_record_turns')
        .addColumn('seq', engine === 'postgres' ? 'bigserial' : 'integer', (c) =>
          engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('turn_id', 'integer', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('user_text', 'text')
        .addColumn('assistant_text', 'text')
        .addColumn('interrupted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('error', 'text')
        .addColumn('metrics', 'text')
        .addColumn('tools', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('feedback_rating', 'text')
        .addColumn('feedback_comment', 'text')
        .addColumn('feedback_at', 'bigint')
        .addUniqueConstraint('conversation_record_turns_turn', [
          'conversation_id',
          'session_id',
          'turn_id',
        ])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('conversation_record_turns').ifExists().execute();
      await db.schema.dropTable('conversation_records').ifExists().execute();
    },
  };
}
