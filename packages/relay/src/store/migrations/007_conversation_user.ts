import { type Kysely, type Migration } from 'kysely';

/** The signed-in visitor a conversation belongs to (null: anonymous), so only they resume it. */
export function conversationUser(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('conversations').addColumn('user_id', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('conversations').dropColumn('user_id').execute();
    },
  };
}
