import { type Kysely, type Migration } from 'kysely';

/** A client key's visitor secret: what a site's server signs visitor tokens with (null: none). */
export function visitorSecrets(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('client_keys').addColumn('visitor_secret', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('client_keys').dropColumn('visitor_secret').execute();
    },
  };
}
