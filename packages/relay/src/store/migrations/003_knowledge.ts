import { sql, type Kysely, type Migration } from 'kysely';
import type { Engine } from '../database.js';

/**
 * The knowledge base: collections, their documents (one per source, with the content hash that
 * makes an unchanged page cost nothing), and the documents' chunks with their embedding vectors
 * (float32 bytes). Full-text search is the engine's own: an FTS5 table (Porter stemming) whose
 * rowid is the chunk's id on SQLite, a stored tsvector column with a GIN index on PostgreSQL.
 */
export function knowledge(engine: Engine): Migration {
  const id = engine === 'postgres' ? 'bigserial' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('knowledge_collections')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        // Bumped by every change: a search holding the collection's vectors in memory reloads them.
        .addColumn('version', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();

      await db.schema
        .createTable('knowledge_documents')
        .addColumn('id', id, (c) =>
          engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('collection', 'text', (c) =>
          c.notNull().references('knowledge_collections.name').onDelete('cascade'),
        )
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('url', 'text')
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('content_hash', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('chunk_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('chars', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('knowledge_documents_source', ['collection', 'source'])
        .execute();

      let chunks = db.schema
        .createTable('knowledge_chunks')
        .addColumn('id', id, (c) =>
          engine === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('document_id', 'bigint', (c) =>
          c.notNull().references('knowledge_documents.id').onDelete('cascade'),
        )
        .addColumn('collection', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('heading', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('dimensions', 'integer', (c) => c.notNull())
        .addColumn('vector', engine === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull());
      if (engine === 'postgres')
        chunks = chunks.addColumn('tsv', sql`tsvector`, (c) =>
          c
            .generatedAlwaysAs(
              sql`setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', heading), 'B') || to_tsvector('english', text)`,
            )
            .stored(),
        );
      await chunks.execute();
      await db.schema
        .createIndex('knowledge_chunks_document')
        .on('knowledge_chunks')
        .column('document_id')
        .execute();
      await db.schema
        .createIndex('knowledge_chunks_collection')
        .on('knowledge_chunks')
        .columns(['collection', 'id'])
        .execute();
      if (engine === 'postgres') {
        await sql`create index knowledge_chunks_tsv on knowledge_chunks using gin (tsv)`.execute(
          db,
        );
      } else {
        await sql`create virtual table knowledge_fts using fts5(title, heading, text, collection unindexed, tokenize = 'porter unicode61')`.execute(
          db,
        );
      }
    },
    async down(db: Kysely<unknown>) {
      if (engine === 'sqlite') await sql`drop table if exists knowledge_fts`.execute(db);
      for (const table of ['knowledge_chunks', 'knowledge_documents', 'knowledge_collections'])
        await db.schema.dropTable(table).ifExists().execute();
    },
  };
}
