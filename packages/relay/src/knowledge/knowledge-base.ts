/**
 * The knowledge base as the CLI, the admin API and the relay use it: sources (URLs crawled,
 * files, folders, uploads) → extracted → chunked → embedded → stored, a document at a time. A
 * source whose extracted content and embeddings model are unchanged costs no embeddings request;
 * a changed one has its chunks replaced in one transaction.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { StageConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../store/storage.js';
import { chunkDocument, embeddingText } from './chunk.js';
import { crawl, fetchPage, DEFAULT_MAX_BYTES, type FetchPolicy } from './crawl.js';
import { createEmbedder, type Embedder } from './embed.js';
import { KnowledgeError } from './errors.js';
import { extract, formatOf, titleFromName, type DocumentFormat } from './extract.js';
import { KnowledgeSearch, type SearchOptions, type SearchResult } from './search.js';
import {
  KnowledgeStore,
  checkCollectionName,
  type CollectionInfo,
  type DocumentInfo,
} from './store.js';

/** Files read from one folder at most. */
const MAX_FOLDER_FILES = 10_000;

export interface KnowledgeBaseOptions {
  storage: Storage;
  /** The embeddings provider stage (`providers.embeddings`). */
  embeddings: StageConfig;
  /** Hosts the crawler may reach although they are private (`toolAllowHosts`). */
  allowHosts?: readonly string[];
  /** Another embedder (tests, benchmarks). */
  embedder?: Embedder;
  logger?: Logger;
}

export interface AddOptions {
  collection: string;
  /** Pages fetched at most per URL given (default 50). */
  maxPages?: number;
  /** The public address of the files given (`https://example.com/docs/`): their results cite it. */
  baseUrl?: string;
  /** Embed again even when the content is unchanged. */
  force?: boolean;
  signal?: AbortSignal;
}

export interface UploadedFile {
  filename: string;
  content: Uint8Array;
  /** The address results cite for it. */
  url?: string;
}

export type IngestStatus = 'added' | 'updated' | 'unchanged' | 'failed';

export interface IngestOutcome {
  source: string;
  url: string | null;
  status: IngestStatus;
  title?: string;
  chunks?: number;
  error?: string;
}

export interface IngestReport {
  collection: string;
  added: number;
  updated: number;
  unchanged: number;
  failed: number;
  /** Chunks sent to the embeddings provider. */
  embedded: number;
  documents: IngestOutcome[];
}

interface SourceDocument {
  source: string;
  url: string | null;
  format: DocumentFormat;
  bytes: Uint8Array;
  fallbackTitle: string;
}

const isUrl = (input: string) => /^https?:\/\//i.test(input);

function report(collection: string, documents: IngestOutcome[], embedded: number): IngestReport {
  const count = (status: IngestStatus) => documents.filter((d) => d.status === status).length;
  return {
    collection,
    added: count('added'),
    updated: count('updated'),
    unchanged: count('unchanged'),
    failed: count('failed'),
    embedded,
    documents,
  };
}

function fileUrl(baseUrl: string | undefined, relativePath: string): string | null {
  if (!baseUrl) return null;
  try {
    const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    return new URL(relativePath.split(sep).map(encodeURIComponent).join('/'), base).href;
  } catch {
    throw new KnowledgeError('bad_request', `base URL ${JSON.stringify(baseUrl)} is not a URL`);
  }
}

async function folderFiles(dir: string, out: string[] = []): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (out.length >= MAX_FOLDER_FILES) break;
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await folderFiles(path, out);
    else if (entry.isFile() && formatOf(entry.name)) out.push(path);
  }
  return out;
}

export class KnowledgeBase {
  readonly store: KnowledgeStore;
  readonly embedder: Embedder;
  private readonly searcher: KnowledgeSearch;
  private readonly policy: FetchPolicy;
  private readonly log: Logger | undefined;

  constructor(options: KnowledgeBaseOptions) {
    this.store = new KnowledgeStore(options.storage);
    this.embedder = options.embedder ?? createEmbedder(options.embeddings);
    this.searcher = new KnowledgeSearch(this.store, this.embedder, options.logger);
    this.policy = { allowHosts: options.allowHosts ?? [] };
    this.log = options.logger;
  }

  collections(): Promise<CollectionInfo[]> {
    return this.store.collections();
  }

  async documents(collection: string): Promise<DocumentInfo[]> {
    if (!(await this.store.collection(collection)))
      throw new KnowledgeError('not_found', `there is no collection ${JSON.stringify(collection)}`);
    return this.store.documents(collection);
  }

  async createCollection(name: string): Promise<void> {
    await this.store.ensureCollection(checkCollectionName(name));
  }

  async removeCollection(name: string): Promise<boolean> {
    const removed = await this.store.deleteCollection(name);
    this.searcher.invalidate(name);
    return removed;
  }

  /** Removes a document by id or by source (URL, file path, `upload:<name>`). */
  async removeDocument(
    collection: string,
    idOrSource: string | number,
  ): Promise<DocumentInfo | undefined> {
    const doc =
      typeof idOrSource === 'number' || /^\d+$/.test(idOrSource)
        ? await this.store.documentById(collection, Number(idOrSource))
        : ((await this.store.document(collection, idOrSource)) ??
          (await this.store.document(collection, resolve(idOrSource))));
    if (!doc) return undefined;
    await this.store.deleteDocument(collection, doc.id);
    return doc;
  }

  search(
    collections: readonly string[],
    query: string,
    options?: SearchOptions,
  ): Promise<SearchResult[]> {
    return this.searcher.search(collections, query, options);
  }

  /** URLs (crawled within `maxPages`), files and folders (their .md, .html, .txt and .pdf files). */
  async add(inputs: readonly string[], options: AddOptions): Promise<IngestReport> {
    const collection = checkCollectionName(options.collection);
    await this.store.ensureCollection(collection);
    const outcomes: IngestOutcome[] = [];
    let embedded = 0;
    const ingest = async (doc: SourceDocument) => {
      const outcome = await this.ingest(collection, doc, options.force ?? false, options.signal);
      if (outcome.status === 'added' || outcome.status === 'updated')
        embedded += outcome.chunks ?? 0;
      outcomes.push(outcome);
    };
    for (const input of inputs) {
      if (isUrl(input)) {
        try {
          for await (const item of crawl(input, {
            policy: this.policy,
            ...(options.maxPages !== undefined ? { maxPages: options.maxPages } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
          })) {
            if ('error' in item) {
              outcomes.push(
                await this.failed(collection, { source: item.url, url: item.url }, item.error),
              );
              continue;
            }
            const { page } = item;
            const format = formatOf(new URL(page.url).pathname, page.contentType);
            if (!format) {
              outcomes.push(
                await this.failed(
                  collection,
                  { source: page.url, url: page.url },
                  new KnowledgeError(
                    'unsupported',
                    `${page.url}: ${page.contentType || 'unknown type'} is not a document type read here`,
                  ),
                ),
              );
              continue;
            }
            await ingest({
              source: page.url,
              url: page.url,
              format,
              bytes: page.body,
              fallbackTitle: titleFromName(new URL(page.url).pathname) || new URL(page.url).host,
            });
          }
        } catch (error) {
          if (options.signal?.aborted) throw error;
          const failure =
            error instanceof KnowledgeError
              ? error
              : new KnowledgeError('fetch_failed', (error as Error).message);
          outcomes.push(await this.failed(collection, { source: input, url: input }, failure));
        }
        continue;
      }
      const path = resolve(input);
      let files: { path: string; relativePath: string }[];
      try {
        const info = await stat(path);
        files = info.isDirectory()
          ? (await folderFiles(path)).map((file) => ({
              path: file,
              relativePath: relative(path, file),
            }))
          : [{ path, relativePath: basename(path) }];
      } catch (error) {
        outcomes.push({
          source: path,
          url: null,
          status: 'failed',
          error: `cannot read ${input}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        });
        continue;
      }
      for (const file of files) {
        const url = fileUrl(options.baseUrl, file.relativePath);
        try {
          await ingest(await this.readFileSource(file.path, url));
        } catch (error) {
          if (!(error instanceof KnowledgeError)) throw error;
          outcomes.push(await this.failed(collection, { source: file.path, url }, error));
        }
      }
    }
    return report(collection, outcomes, embedded);
  }

  /** Files sent to the admin API (their content, not a path on the server). */
  async addFiles(files: readonly UploadedFile[], options: AddOptions): Promise<IngestReport> {
    const collection = checkCollectionName(options.collection);
    await this.store.ensureCollection(collection);
    const outcomes: IngestOutcome[] = [];
    let embedded = 0;
    for (const file of files) {
      const source = `upload:${file.filename}`;
      const url = file.url ?? null;
      const format = formatOf(file.filename);
      if (!format) {
        outcomes.push(
          await this.failed(
            collection,
            { source, url },
            new KnowledgeError(
              'unsupported',
              `${file.filename}: only .md, .html, .txt and .pdf files are read`,
            ),
          ),
        );
        continue;
      }
      const outcome = await this.ingest(
        collection,
        { source, url, format, bytes: file.content, fallbackTitle: titleFromName(file.filename) },
        options.force ?? false,
        options.signal,
      );
      if (outcome.status === 'added' || outcome.status === 'updated')
        embedded += outcome.chunks ?? 0;
      outcomes.push(outcome);
    }
    return report(collection, outcomes, embedded);
  }

  /**
   * Reads every document's source again (URLs fetched, files read; uploads kept as they are) and
   * replaces what changed; chunks embedded by another model than the configured one are embedded
   * again. `force` embeds everything again.
   */
  async reindex(
    collection: string,
    options: { force?: boolean; signal?: AbortSignal } = {},
  ): Promise<IngestReport> {
    const docs = await this.documents(collection);
    const outcomes: IngestOutcome[] = [];
    let embedded = 0;
    for (const doc of docs) {
      let outcome: IngestOutcome;
      try {
        const source = await this.reread(doc, options.signal);
        outcome = source
          ? await this.ingest(collection, source, options.force ?? false, options.signal)
          : await this.reembed(collection, doc, options.force ?? false, options.signal);
      } catch (error) {
        if (!(error instanceof KnowledgeError)) throw error;
        outcome = await this.failed(collection, doc, error);
      }
      if (outcome.status === 'added' || outcome.status === 'updated')
        embedded += outcome.chunks ?? 0;
      outcomes.push(outcome);
    }
    return report(collection, outcomes, embedded);
  }

  private async reread(
    doc: DocumentInfo,
    signal?: AbortSignal,
  ): Promise<SourceDocument | undefined> {
    if (isUrl(doc.source)) {
      const page = await fetchPage(doc.source, this.policy, signal);
      const format = formatOf(new URL(page.url).pathname, page.contentType);
      if (!format)
        throw new KnowledgeError(
          'unsupported',
          `${page.url}: ${page.contentType} is not a document type read here`,
        );
      return {
        source: doc.source,
        url: doc.url,
        format,
        bytes: page.body,
        fallbackTitle: doc.title,
      };
    }
    if (doc.source.startsWith('upload:')) return undefined;
    return { ...(await this.readFileSource(doc.source, doc.url)), fallbackTitle: doc.title };
  }

  private async readFileSource(path: string, url: string | null): Promise<SourceDocument> {
    const format = formatOf(path);
    if (!format)
      throw new KnowledgeError(
        'unsupported',
        `${path}: only .md, .html, .txt and .pdf files are read`,
      );
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      throw new KnowledgeError(
        'unreadable',
        `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? ''}`,
      );
    }
    if (size > DEFAULT_MAX_BYTES)
      throw new KnowledgeError('too_large', `${path}: ${size} bytes (limit ${DEFAULT_MAX_BYTES})`);
    return {
      source: path,
      url,
      format,
      bytes: await readFile(path),
      fallbackTitle: titleFromName(path),
    };
  }

  /** Embeds a document's stored chunks again (a source that cannot be read again: an upload). */
  private async reembed(
    collection: string,
    doc: DocumentInfo,
    force: boolean,
    signal?: AbortSignal,
  ): Promise<IngestOutcome> {
    const base = { source: doc.source, url: doc.url, title: doc.title };
    if (!force && doc.model === this.embedder.model)
      return { ...base, status: 'unchanged', chunks: doc.chunk_count };
    const chunks = await this.store.documentChunks(doc.id);
    const vectors = await this.embedder.embed(
      chunks.map((c) => embeddingText(c.title, c)),
      signal,
    );
    await this.store.replaceVectors(
      collection,
      doc.id,
      this.embedder.model,
      chunks.map((c, i) => ({ id: c.id, vector: vectors[i] as Float32Array })),
    );
    return { ...base, status: 'updated', chunks: chunks.length };
  }

  private async failed(
    collection: string,
    doc: { source: string; url: string | null; title?: string },
    error: KnowledgeError,
  ): Promise<IngestOutcome> {
    this.log?.warn(
      { collection, source: doc.source, err: error.message },
      'knowledge: source not ingested',
    );
    await this.store.markFailed(
      collection,
      {
        source: doc.source,
        url: doc.url,
        title: doc.title ?? titleFromName(doc.source),
        format: formatOf(doc.source) ?? 'unknown',
        model: this.embedder.model,
      },
      error.message,
    );
    return { source: doc.source, url: doc.url, status: 'failed', error: error.message };
  }

  private async ingest(
    collection: string,
    doc: SourceDocument,
    force: boolean,
    signal?: AbortSignal,
  ): Promise<IngestOutcome> {
    const base = { source: doc.source, url: doc.url };
    let extracted;
    try {
      extracted = await extract(doc.bytes, doc.format, doc.fallbackTitle);
    } catch (error) {
      const failure =
        error instanceof KnowledgeError
          ? error
          : new KnowledgeError('unreadable', (error as Error).message);
      return this.failed(collection, doc, failure);
    }
    const chunks = chunkDocument(extracted);
    if (chunks.length === 0)
      return this.failed(
        collection,
        { ...doc, title: extracted.title },
        new KnowledgeError('unreadable', `${doc.source}: no text found`),
      );
    const hash = createHash('sha256')
      .update(JSON.stringify([extracted.title, chunks.map((c) => [c.heading, c.text])]))
      .digest('hex');
    const existing = await this.store.document(collection, doc.source);
    if (
      !force &&
      existing?.status === 'ready' &&
      existing.content_hash === hash &&
      existing.model === this.embedder.model
    ) {
      if (existing.url !== doc.url) await this.store.touchDocument(existing.id, doc.url);
      return { ...base, title: extracted.title, status: 'unchanged', chunks: existing.chunk_count };
    }
    let vectors: Float32Array[];
    try {
      vectors = await this.embedder.embed(
        chunks.map((chunk) => embeddingText(extracted.title, chunk)),
        signal,
      );
    } catch (error) {
      if (signal?.aborted || !(error instanceof KnowledgeError)) throw error;
      return this.failed(collection, { ...doc, title: extracted.title }, error);
    }
    await this.store.saveDocument(
      collection,
      {
        source: doc.source,
        url: doc.url,
        title: extracted.title,
        format: doc.format,
        content_hash: hash,
        chars: chunks.reduce((n, c) => n + c.text.length, 0),
        model: this.embedder.model,
      },
      chunks.map((chunk, i) => ({ ...chunk, vector: vectors[i] as Float32Array })),
    );
    const status = existing && existing.content_hash ? 'updated' : 'added';
    this.log?.info(
      { collection, source: doc.source, chunks: chunks.length, status },
      'knowledge: document indexed',
    );
    return { ...base, title: extracted.title, status, chunks: chunks.length };
  }
}
