/**
 * Hybrid retrieval: the database's full-text ranking and cosine similarity over the collection's
 * vectors (held in memory per collection, reloaded when the collection's version changes), fused
 * by reciprocal rank. At site scale (thousands of chunks) a scan of the vectors is a few
 * milliseconds and needs no vector index.
 */
import type { Logger } from '../logger.js';
import type { Embedder } from './embed.js';
import { KnowledgeError } from './errors.js';
import type { KnowledgeStore, VectorMatrix } from './store.js';

export interface SearchResult {
  title: string;
  /** The page to cite (null when the source has no URL, e.g. a file added without a base URL). */
  url: string | null;
  /** Where it came from (URL, file path, `upload:<name>`). */
  source: string;
  /** Heading path within the page (`Parking › Bicycles`). */
  heading: string;
  text: string;
  /** Reciprocal-rank-fusion score (higher is better; comparable within one search only). */
  score: number;
  collection: string;
  chunk_id: number;
}

export interface SearchOptions {
  /** Results wanted (default 4, at most 20). */
  limit?: number;
  signal?: AbortSignal;
  /** The query's vector, when the caller has it already (benchmarks). */
  vector?: Float32Array;
}

/** Candidates each ranking contributes before fusion, and RRF's constant. */
const CANDIDATES = 40;
const RRF_K = 60;
export const MAX_RESULTS = 20;
export const MAX_QUERY_CHARS = 1_000;

interface Cached {
  version: number;
  model: string;
  vectors: VectorMatrix;
}

/**
 * The dot product of the query with each row of the matrix. Eight accumulators: V8 does not
 * vectorise, and independent sums let the CPU overlap the multiplications (≈ 1.8× a plain loop).
 */
export function dotProducts(
  matrix: Float32Array,
  dimensions: number,
  rows: number,
  query: Float32Array,
): Float32Array {
  const scores = new Float32Array(rows);
  const whole = dimensions - (dimensions % 8);
  for (let row = 0, offset = 0; row < rows; row++, offset += dimensions) {
    let a = 0;
    let b = 0;
    let c = 0;
    let d = 0;
    let e = 0;
    let f = 0;
    let g = 0;
    let h = 0;
    for (let k = 0; k < whole; k += 8) {
      const p = offset + k;
      a += (matrix[p] as number) * (query[k] as number);
      b += (matrix[p + 1] as number) * (query[k + 1] as number);
      c += (matrix[p + 2] as number) * (query[k + 2] as number);
      d += (matrix[p + 3] as number) * (query[k + 3] as number);
      e += (matrix[p + 4] as number) * (query[k + 4] as number);
      f += (matrix[p + 5] as number) * (query[k + 5] as number);
      g += (matrix[p + 6] as number) * (query[k + 6] as number);
      h += (matrix[p + 7] as number) * (query[k + 7] as number);
    }
    for (let k = whole; k < dimensions; k++)
      a += (matrix[offset + k] as number) * (query[k] as number);
    scores[row] = a + b + c + d + e + f + g + h;
  }
  return scores;
}

/** Indices of the `k` largest scores, best first. */
export function topK(scores: Float32Array, k: number): number[] {
  const best: number[] = [];
  let floor = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] ?? -Infinity;
    if (best.length === k && s <= floor) continue;
    let at = best.length;
    while (at > 0 && (scores[best[at - 1] ?? 0] ?? -Infinity) < s) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
    floor = best.length === k ? (scores[best[k - 1] ?? 0] ?? -Infinity) : -Infinity;
  }
  return best;
}

export class KnowledgeSearch {
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<Cached>>();

  constructor(
    private readonly store: KnowledgeStore,
    private readonly embedder: Embedder,
    private readonly log?: Logger,
  ) {}

  /** The collection's vectors, from memory while its version is unchanged. */
  private async vectors(collection: string, version: number): Promise<VectorMatrix> {
    const model = this.embedder.model;
    const cached = this.cache.get(collection);
    if (cached && cached.version === version && cached.model === model) return cached.vectors;
    const key = `${collection}\n${version}`;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.store.vectors(collection, model).then((vectors) => {
        const entry = { version, model, vectors };
        this.cache.set(collection, entry);
        return entry;
      });
      pending.finally(() => this.loading.delete(key)).catch(() => undefined);
      this.loading.set(key, pending);
    }
    return (await pending).vectors;
  }

  /** Forgets the vectors held for a collection (they are reloaded on the next search). */
  invalidate(collection?: string): void {
    if (collection === undefined) this.cache.clear();
    else this.cache.delete(collection);
  }

  private async queryVector(
    query: string,
    signal?: AbortSignal,
  ): Promise<Float32Array | undefined> {
    try {
      const [vector] = await this.embedder.embed([query], signal);
      return vector;
    } catch (error) {
      if (signal?.aborted) throw error;
      // Full-text ranking alone still answers: a provider hiccup should not silence the bot.
      this.log?.warn(
        { err: (error as Error).message },
        'knowledge search: the query could not be embedded; full-text ranking only',
      );
      return undefined;
    }
  }

  async search(
    collections: readonly string[],
    query: string,
    options: SearchOptions = {},
  ): Promise<SearchResult[]> {
    const text = query.trim().slice(0, MAX_QUERY_CHARS);
    if (!text) throw new KnowledgeError('bad_request', 'the query is empty');
    const limit = Math.min(MAX_RESULTS, Math.max(1, Math.floor(options.limit ?? 4)));
    const versions = await Promise.all(collections.map((c) => this.store.version(c)));
    const present = collections.filter((_c, i) => versions[i] !== undefined);
    if (present.length === 0) return [];
    const vector = options.vector ?? (await this.queryVector(text, options.signal));
    const fused = new Map<number, { score: number; collection: string }>();
    const add = (ids: ArrayLike<number>, collection: string) => {
      for (let rank = 0; rank < ids.length; rank++) {
        const id = ids[rank] as number;
        const entry = fused.get(id) ?? { score: 0, collection };
        entry.score += 1 / (RRF_K + rank + 1);
        fused.set(id, entry);
      }
    };
    await Promise.all(
      present.map(async (collection) => {
        const version = versions[collections.indexOf(collection)] as number;
        const [textIds, vectorIds] = await Promise.all([
          this.store.fullText(collection, text, CANDIDATES),
          vector ? this.nearest(collection, version, vector) : Promise.resolve([]),
        ]);
        add(textIds, collection);
        add(vectorIds, collection);
      }),
    );
    const ranked = [...fused].sort((a, b) => b[1].score - a[1].score).slice(0, limit);
    const rows = new Map((await this.store.chunks(ranked.map(([id]) => id))).map((r) => [r.id, r]));
    const results: SearchResult[] = [];
    for (const [id, { score, collection }] of ranked) {
      const row = rows.get(id);
      if (!row) continue; // deleted since
      results.push({
        title: row.title,
        url: row.url,
        source: row.source,
        heading: row.heading,
        text: row.text,
        score: Math.round(score * 1e5) / 1e5,
        collection,
        chunk_id: id,
      });
    }
    return results;
  }

  /** Chunk ids by cosine similarity to the query (vectors are unit length: a dot product). */
  private async nearest(
    collection: string,
    version: number,
    query: Float32Array,
  ): Promise<number[]> {
    const { ids, dimensions, matrix } = await this.vectors(collection, version);
    if (ids.length === 0) return [];
    if (dimensions !== query.length) {
      this.log?.warn(
        { collection, stored: dimensions, query: query.length },
        'knowledge search: stored vectors and the query differ in length (another model?): run kb reindex',
      );
      return [];
    }
    const scores = dotProducts(matrix, dimensions, ids.length, query);
    return topK(scores, CANDIDATES).map((i) => ids[i] as number);
  }
}
