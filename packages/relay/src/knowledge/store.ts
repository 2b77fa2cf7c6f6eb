/**
 * The knowledge base's tables (migration 003) through Kysely, on SQLite and PostgreSQL alike:
 * collections, documents, chunks with their vectors, and each engine's own full-text search.
 * A document's chunks are replaced in one transaction; every change bumps its collection's
 * `version`, which tells a search holding the vectors in memory to reload them.
 */
import { sql, type Kysely } from 'kysely';
import { writeTransaction } from '../store/database.js';
import type { Schema } from '../store/schema.js';
import type { Storage } from '../store/storage.js';
import { KnowledgeError } from './errors.js';

export interface CollectionInfo {
  name: string;
  documents: number;
  chunks: number;
  created_at: string;
  updated_at: string;
}

export interface DocumentInfo {
  id: number;
  collection: string;
  source: string;
  url: string | null;
  title: string;
  format: string;
  status: 'ready' | 'failed';
  error: string | null;
  chunk_count: number;
  chars: number;
  model: string;
  content_hash: string;
  created_at: string;
  updated_at: string;
}

export interface NewDocument {
  source: string;
  url: string | null;
  title: string;
  format: string;
  content_hash: string;
  chars: number;
  model: string;
}

export interface NewChunk {
  position: number;
  heading: string;
  text: string;
  vector: Float32Array;
}

export interface ChunkRow {
  id: number;
  document_id: number;
  title: string;
  heading: string;
  text: string;
  url: string | null;
  source: string;
}

/** The vectors of a collection's chunks of one model, row after row in one array. */
export interface VectorMatrix {
  ids: Int32Array | Float64Array;
  dimensions: number;
  matrix: Float32Array;
}

const COLLECTION_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/i;

export function checkCollectionName(name: string): string {
  if (typeof name !== 'string' || !COLLECTION_NAME.test(name))
    throw new KnowledgeError(
      'bad_request',
      `collection name ${JSON.stringify(name)} must be 1-64 letters, digits, - or _`,
    );
  return name;
}

/** Words too common to say what a question is about (the vector side handles meaning). */
const STOPWORDS = new Set(
  (
    'a an and are as at be but by can could do does for from have how i if in is it me my of on ' +
    'or our please so tell that the their there this to us was we what when where which who why ' +
    'will with would you your'
  ).split(' '),
);
const MAX_QUERY_WORDS = 24;

/** The words of a query, for the engines' full-text search (any of them may match). */
export function queryWords(query: string): string[] {
  const words = new Set<string>();
  for (const match of query.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    if (STOPWORDS.has(match[0])) continue;
    words.add(match[0]);
    if (words.size >= MAX_QUERY_WORDS) break;
  }
  return [...words];
}

const now = () => new Date().toISOString();

function vectorBytes(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

type DocumentRow = Omit<Schema['knowledge_documents'], 'id'> & { id: number | string };

function documentInfo(row: DocumentRow): DocumentInfo {
  return {
    ...row,
    id: Number(row.id),
    chunk_count: Number(row.chunk_count),
    chars: Number(row.chars),
  };
}

export class KnowledgeStore {
  constructor(private readonly storage: Storage) {}

  get engine() {
    return this.storage.engine;
  }

  private async db(): Promise<Kysely<Schema>> {
    await this.storage.ready();
    return this.storage.db;
  }

  private async write<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
    await this.storage.ready();
    return writeTransaction(this.storage.db, this.storage.engine, fn);
  }

  async collections(): Promise<CollectionInfo[]> {
    const db = await this.db();
    const rows = await db
      .selectFrom('knowledge_collections as c')
      .select([
        'c.name',
        'c.created_at',
        'c.updated_at',
        (eb) =>
          eb
            .selectFrom('knowledge_documents as d')
            .whereRef('d.collection', '=', 'c.name')
            .select((e) => e.fn.countAll<number | string>().as('n'))
            .as('documents'),
        (eb) =>
          eb
            .selectFrom('knowledge_chunks as k')
            .whereRef('k.collection', '=', 'c.name')
            .select((e) => e.fn.countAll<number | string>().as('n'))
            .as('chunks'),
      ])
      .orderBy('c.name')
      .execute();
    return rows.map((r) => ({
      name: r.name,
      created_at: r.created_at,
      updated_at: r.updated_at,
      documents: Number(r.documents ?? 0),
      chunks: Number(r.chunks ?? 0),
    }));
  }

  async collection(name: string): Promise<CollectionInfo | undefined> {
    return (await this.collections()).find((c) => c.name === name);
  }

  async ensureCollection(name: string): Promise<void> {
    checkCollectionName(name);
    const at = now();
    const db = await this.db();
    await db
      .insertInto('knowledge_collections')
      .values({ name, created_at: at, updated_at: at, version: 0 })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }

  /** Deletes the collection with its documents and chunks; false when there was none. */
  async deleteCollection(name: string): Promise<boolean> {
    return this.write(async (trx) => {
      if (this.engine === 'sqlite')
        await sql`delete from knowledge_fts where collection = ${name}`.execute(trx);
      await trx.deleteFrom('knowledge_chunks').where('collection', '=', name).execute();
      await trx.deleteFrom('knowledge_documents').where('collection', '=', name).execute();
      const result = await trx
        .deleteFrom('knowledge_collections')
        .where('name', '=', name)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async documents(collection: string): Promise<DocumentInfo[]> {
    const db = await this.db();
    const rows = await db
      .selectFrom('knowledge_documents')
      .selectAll()
      .where('collection', '=', collection)
      .orderBy('source')
      .execute();
    return rows.map(documentInfo);
  }

  async document(collection: string, source: string): Promise<DocumentInfo | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('knowledge_documents')
      .selectAll()
      .where('collection', '=', collection)
      .where('source', '=', source)
      .executeTakeFirst();
    return row ? documentInfo(row) : undefined;
  }

  async documentById(collection: string, id: number): Promise<DocumentInfo | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('knowledge_documents')
      .selectAll()
      .where('collection', '=', collection)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? documentInfo(row) : undefined;
  }

  private async bump(trx: Kysely<Schema>, collection: string): Promise<void> {
    await trx
      .updateTable('knowledge_collections')
      .set({ version: sql<number>`version + 1`, updated_at: now() })
      .where('name', '=', collection)
      .execute();
  }

  private async dropChunks(trx: Kysely<Schema>, documentId: number): Promise<void> {
    if (this.engine === 'sqlite')
      await sql`delete from knowledge_fts where rowid in (select id from knowledge_chunks where document_id = ${documentId})`.execute(
        trx,
      );
    await trx.deleteFrom('knowledge_chunks').where('document_id', '=', documentId).execute();
  }

  /** Writes a document and replaces its chunks, in one transaction. Returns its id. */
  async saveDocument(collection: string, doc: NewDocument, chunks: NewChunk[]): Promise<number> {
    return this.write(async (trx) => {
      const at = now();
      const existing = await trx
        .selectFrom('knowledge_documents')
        .select('id')
        .where('collection', '=', collection)
        .where('source', '=', doc.source)
        .executeTakeFirst();
      let id: number;
      const fields = {
        ...doc,
        status: 'ready' as const,
        error: null,
        chunk_count: chunks.length,
        updated_at: at,
      };
      if (existing) {
        id = Number(existing.id);
        await this.dropChunks(trx, id);
        await trx.updateTable('knowledge_documents').set(fields).where('id', '=', id).execute();
      } else {
        const inserted = await trx
          .insertInto('knowledge_documents')
          .values({ ...fields, collection, created_at: at })
          .returning('id')
          .executeTakeFirstOrThrow();
        id = Number(inserted.id);
      }
      for (let i = 0; i < chunks.length; i += 100) {
        await trx
          .insertInto('knowledge_chunks')
          .values(
            chunks.slice(i, i + 100).map((chunk) => ({
              document_id: id,
              collection,
              position: chunk.position,
              title: doc.title,
              heading: chunk.heading,
              text: chunk.text,
              model: doc.model,
              dimensions: chunk.vector.length,
              vector: vectorBytes(chunk.vector),
            })),
          )
          .execute();
      }
      if (this.engine === 'sqlite')
        await sql`insert into knowledge_fts (rowid, title, heading, text, collection) select id, title, heading, text, collection from knowledge_chunks where document_id = ${id}`.execute(
          trx,
        );
      await this.bump(trx, collection);
      return id;
    });
  }

  /** Records that a source could not be read (its earlier chunks, if any, stay). */
  async markFailed(
    collection: string,
    doc: Pick<NewDocument, 'source' | 'url' | 'title' | 'format' | 'model'>,
    error: string,
  ): Promise<void> {
    await this.write(async (trx) => {
      const at = now();
      const updated = await trx
        .updateTable('knowledge_documents')
        .set({ status: 'failed', error, updated_at: at })
        .where('collection', '=', collection)
        .where('source', '=', doc.source)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) > 0) return;
      await trx
        .insertInto('knowledge_documents')
        .values({
          ...doc,
          collection,
          content_hash: '',
          status: 'failed',
          error,
          chunk_count: 0,
          chars: 0,
          created_at: at,
          updated_at: at,
        })
        .execute();
    });
  }

  /** An unchanged document read again: clears an earlier failure, keeps the newest URL. */
  async touchDocument(id: number, url: string | null): Promise<void> {
    await this.write(async (trx) => {
      await trx
        .updateTable('knowledge_documents')
        .set({ status: 'ready', error: null, url, updated_at: now() })
        .where('id', '=', id)
        .execute();
    });
  }

  /** Deletes one document and its chunks; false when the collection has no such document. */
  async deleteDocument(collection: string, id: number): Promise<boolean> {
    return this.write(async (trx) => {
      const found = await trx
        .selectFrom('knowledge_documents')
        .select('id')
        .where('collection', '=', collection)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!found) return false;
      await this.dropChunks(trx, id);
      await trx.deleteFrom('knowledge_documents').where('id', '=', id).execute();
      await this.bump(trx, collection);
      return true;
    });
  }

  /** The stored chunks of a document (to embed them again with another model). */
  async documentChunks(
    documentId: number,
  ): Promise<{ id: number; heading: string; text: string; title: string }[]> {
    const db = await this.db();
    const rows = await db
      .selectFrom('knowledge_chunks')
      .select(['id', 'heading', 'text', 'title'])
      .where('document_id', '=', documentId)
      .orderBy('position')
      .execute();
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  /** New vectors for a document's chunks (same texts), all in one transaction. */
  async replaceVectors(
    collection: string,
    documentId: number,
    model: string,
    vectors: { id: number; vector: Float32Array }[],
  ): Promise<void> {
    await this.write(async (trx) => {
      for (const { id, vector } of vectors)
        await trx
          .updateTable('knowledge_chunks')
          .set({ model, dimensions: vector.length, vector: vectorBytes(vector) })
          .where('id', '=', id)
          .execute();
      await trx
        .updateTable('knowledge_documents')
        .set({ model, updated_at: now() })
        .where('id', '=', documentId)
        .execute();
      await this.bump(trx, collection);
    });
  }

  /** The collection's version (changes with every write), or undefined when it does not exist. */
  async version(collection: string): Promise<number | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('knowledge_collections')
      .select('version')
      .where('name', '=', collection)
      .executeTakeFirst();
    return row ? Number(row.version) : undefined;
  }

  /** Every vector of the collection made by `model` (of the most common length, should two differ). */
  async vectors(collection: string, model: string): Promise<VectorMatrix> {
    const db = await this.db();
    const rows = await db
      .selectFrom('knowledge_chunks')
      .select(['id', 'dimensions', 'vector'])
      .where('collection', '=', collection)
      .where('model', '=', model)
      .orderBy('id')
      .execute();
    const counts = new Map<number, number>();
    for (const row of rows) counts.set(row.dimensions, (counts.get(row.dimensions) ?? 0) + 1);
    const dimensions = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
    const kept = rows.filter((row) => row.dimensions === dimensions);
    const matrix = new Float32Array(kept.length * dimensions);
    const bytes = new Uint8Array(matrix.buffer);
    const ids = new Float64Array(kept.length);
    kept.forEach((row, i) => {
      ids[i] = Number(row.id);
      bytes.set(row.vector.subarray(0, dimensions * 4), i * dimensions * 4);
    });
    return { ids, dimensions, matrix };
  }

  /** Chunk ids of the collection that match any word of the query, best first. */
  async fullText(collection: string, query: string, limit: number): Promise<number[]> {
    const words = queryWords(query);
    if (words.length === 0) return [];
    const db = await this.db();
    if (this.engine === 'sqlite') {
      const match = words.map((w) => `"${w}"`).join(' OR ');
      const { rows } = await sql<{ id: number }>`
        select rowid as id from knowledge_fts
        where knowledge_fts match ${match} and collection = ${collection}
        order by bm25(knowledge_fts, 4.0, 2.0, 1.0) limit ${limit}`.execute(db);
      return rows.map((r) => Number(r.id));
    }
    const { rows } = await sql<{ id: string | number }>`
      select id from knowledge_chunks,
        (select cast(replace(cast(plainto_tsquery('english', ${words.join(' ')}) as text), ' & ', ' | ') as tsquery) as q) as query
      where collection = ${collection} and tsv @@ q
      order by ts_rank(tsv, q) desc limit ${limit}`.execute(db);
    return rows.map((r) => Number(r.id));
  }

  async chunks(ids: readonly number[]): Promise<ChunkRow[]> {
    if (ids.length === 0) return [];
    const db = await this.db();
    const rows = await db
      .selectFrom('knowledge_chunks as k')
      .innerJoin('knowledge_documents as d', 'd.id', 'k.document_id')
      .select(['k.id', 'k.document_id', 'k.title', 'k.heading', 'k.text', 'd.url', 'd.source'])
      .where('k.id', 'in', [...ids])
      .execute();
    return rows.map((r) => ({ ...r, id: Number(r.id), document_id: Number(r.document_id) }));
  }
}
