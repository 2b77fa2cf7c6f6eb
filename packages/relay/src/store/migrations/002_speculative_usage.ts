import { type Kysely, type Migration } from 'kysely';

const COLUMNS = ['speculative_confirmed', 'speculative_discarded'] as const;

/** Usage per key per day counts speculative turns (protocol 1.1): confirmed and discarded. */
export function speculativeUsage(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      // One column per statement: SQLite's ALTER TABLE adds a single column.
      for (const column of COLUMNS)
        await db.schema
          .alterTable('usage_days')
          .addColumn(column, 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const column of [...COLUMNS].reverse())
        await db.schema.alterTable('usage_days').dropColumn(column).execute();
    },
  };
}
