/**
 * The knowledge base in the admin API, mounted at `/admin/knowledge` (admin token required):
 *
 *   GET    /admin/knowledge/collections                        collections with document and chunk counts
 *   POST   /admin/knowledge/collections                        create one: {"name"}
 *   DELETE /admin/knowledge/collections/:name                  delete it with its documents
 *   GET    /admin/knowledge/collections/:name/documents        its documents (source, url, title, status, chunks…)
 *   POST   /admin/knowledge/collections/:name/documents        add: {"urls": [...], "max_pages"?} crawls each URL
 *                                                              (sitemap.xml or start page, same site only);
 *                                                              {"files": [{"filename", "content" (base64) | "text", "url"?}]}
 *                                                              uploads; "force": true embeds unchanged content again.
 *                                                              Answers the ingest report (per document: added,
 *                                                              updated, unchanged or failed, with the reason)
 *   DELETE /admin/knowledge/collections/:name/documents/:id    remove one document
 *   POST   /admin/knowledge/collections/:name/reindex          read every source again ({"force"?})
 *   GET    /admin/knowledge/search?q=…&collections=a,b&limit=4 try a search (what `search_knowledge` returns)
 *
 * Paths on the relay's own disk are not accepted here (the CLI reads files); uploads are.
 */
import { Hono, type Context, type ErrorHandler, type NotFoundHandler } from 'hono';
import { limitBody } from './body-limit.js';
import { RelayError } from './errors.js';
import { jsonObject } from './json-body.js';
import type { Logger } from '../logger.js';
import { KnowledgeError } from '../knowledge/errors.js';
import type { KnowledgeBase, UploadedFile } from '../knowledge/knowledge-base.js';
import { MAX_PAGES_LIMIT } from '../knowledge/crawl.js';
import { MAX_QUERY_CHARS, MAX_RESULTS } from '../knowledge/search.js';

/** Upload bodies (base64 is 4/3 of the files): a few PDFs at once. */
export const MAX_KNOWLEDGE_BODY_BYTES = 32 * 1024 * 1024;
const MAX_URLS = 100;
const MAX_FILES = 200;

export interface KnowledgeAdminDeps {
  knowledge: KnowledgeBase;
  log: Logger;
  errors: { onError: ErrorHandler; notFound: NotFoundHandler };
}

const badRequest = (message: string) => new RelayError('bad_request', 400, message);

function urls(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_URLS)
    throw badRequest(`urls must be an array of at most ${MAX_URLS} URLs`);
  return value.map((item) => {
    if (typeof item !== 'string' || !/^https?:\/\/[^/\s]+/i.test(item) || item.length > 2000)
      throw badRequest(`urls: ${JSON.stringify(item)} is not an http(s) URL`);
    return item;
  });
}

function files(value: unknown): UploadedFile[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_FILES)
    throw badRequest(`files must be an array of at most ${MAX_FILES} files`);
  return value.map((item, i) => {
    const file = item as Record<string, unknown> | null;
    const name = file?.['filename'];
    if (typeof name !== 'string' || !name.trim() || name.length > 300 || /[\0]/.test(name))
      throw badRequest(`files[${i}].filename must be a file name`);
    const content = file?.['content'];
    const text = file?.['text'];
    let bytes: Uint8Array;
    if (typeof content === 'string' && /^[A-Za-z0-9+/=\s]*$/.test(content))
      bytes = Buffer.from(content, 'base64');
    else if (typeof text === 'string') bytes = Buffer.from(text, 'utf8');
    else throw badRequest(`files[${i}] needs content (base64) or text`);
    const url = file?.['url'];
    if (url !== undefined && (typeof url !== 'string' || !/^https?:\/\//i.test(url)))
      throw badRequest(`files[${i}].url must be an http(s) URL`);
    return { filename: name.trim(), content: bytes, ...(url ? { url } : {}) };
  });
}

function optionalBoolean(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw badRequest(`${field} must be true or false`);
  return value;
}

export function knowledgeAdmin(deps: KnowledgeAdminDeps): Hono {
  const { knowledge, log } = deps;
  const app = new Hono();
  app.use('*', limitBody(MAX_KNOWLEDGE_BODY_BYTES));
  app.onError((error, c) => {
    if (error instanceof KnowledgeError)
      return deps.errors.onError(
        error.code === 'not_found'
          ? new RelayError('not_found', 404, error.message)
          : badRequest(error.message),
        c,
      );
    return deps.errors.onError(error, c);
  });

  const collectionOf = async (c: Context): Promise<string> => {
    const name = c.req.param('name') ?? '';
    if (!(await knowledge.store.collection(name)))
      throw new RelayError('not_found', 404, `there is no collection ${JSON.stringify(name)}`);
    return name;
  };

  app.get('/collections', async (c) => c.json({ collections: await knowledge.collections() }));

  app.post('/collections', async (c) => {
    const input = await jsonObject(c);
    if (typeof input.name !== 'string') throw badRequest('name must be a string');
    await knowledge.createCollection(input.name);
    log.info({ collection: input.name }, 'admin: knowledge collection created');
    return c.json(await knowledge.store.collection(input.name), 201);
  });

  app.delete('/collections/:name', async (c) => {
    const name = await collectionOf(c);
    await knowledge.removeCollection(name);
    log.info({ collection: name }, 'admin: knowledge collection deleted');
    return c.json({ name, deleted: true });
  });

  app.get('/collections/:name/documents', async (c) =>
    c.json({ documents: await knowledge.documents(await collectionOf(c)) }),
  );

  app.post('/collections/:name/documents', async (c) => {
    const collection = c.req.param('name');
    const input = await jsonObject(c);
    const known = new Set(['urls', 'files', 'max_pages', 'force']);
    const extra = Object.keys(input).find((field) => !known.has(field));
    if (extra !== undefined)
      throw badRequest(`${extra} is not accepted (urls, files, max_pages, force are)`);
    const list = urls(input.urls);
    const uploads = files(input.files);
    if (list.length === 0 && uploads.length === 0) throw badRequest('give urls or files');
    const maxPages = input.max_pages;
    if (
      maxPages !== undefined &&
      (typeof maxPages !== 'number' ||
        !Number.isInteger(maxPages) ||
        maxPages < 1 ||
        maxPages > MAX_PAGES_LIMIT)
    )
      throw badRequest(`max_pages must be 1 to ${MAX_PAGES_LIMIT}`);
    const force = optionalBoolean(input.force, 'force');
    const options = {
      collection,
      force,
      signal: c.req.raw.signal,
      ...(typeof maxPages === 'number' ? { maxPages } : {}),
    };
    const fromUrls = list.length ? await knowledge.add(list, options) : undefined;
    const fromFiles = uploads.length ? await knowledge.addFiles(uploads, options) : undefined;
    const parts = [fromUrls, fromFiles].filter((r) => r !== undefined);
    const sum = (field: 'added' | 'updated' | 'unchanged' | 'failed' | 'embedded') =>
      parts.reduce((n, r) => n + r[field], 0);
    const report = {
      collection,
      added: sum('added'),
      updated: sum('updated'),
      unchanged: sum('unchanged'),
      failed: sum('failed'),
      embedded: sum('embedded'),
      documents: parts.flatMap((r) => r.documents),
    };
    log.info(
      { collection, added: report.added, updated: report.updated, failed: report.failed },
      'admin: knowledge documents added',
    );
    return c.json(report);
  });

  app.delete('/collections/:name/documents/:id', async (c) => {
    const collection = await collectionOf(c);
    const id = c.req.param('id');
    if (!/^\d{1,15}$/.test(id)) throw badRequest('the document id is a number');
    const removed = await knowledge.removeDocument(collection, Number(id));
    if (!removed)
      throw new RelayError('not_found', 404, 'no document with that id in this collection');
    log.info({ collection, document: removed.id }, 'admin: knowledge document removed');
    return c.json({ id: removed.id, source: removed.source, deleted: true });
  });

  app.post('/collections/:name/reindex', async (c) => {
    const collection = await collectionOf(c);
    const input = await jsonObject(c);
    const report = await knowledge.reindex(collection, {
      force: optionalBoolean(input.force, 'force'),
      signal: c.req.raw.signal,
    });
    log.info(
      { collection, updated: report.updated, failed: report.failed },
      'admin: knowledge reindexed',
    );
    return c.json(report);
  });

  app.get('/search', async (c) => {
    const q = c.req.query('q') ?? '';
    if (!q.trim() || q.length > MAX_QUERY_CHARS)
      throw badRequest(`q must be 1 to ${MAX_QUERY_CHARS} characters`);
    const limit = Number(c.req.query('limit') ?? 4);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RESULTS)
      throw badRequest(`limit must be 1 to ${MAX_RESULTS}`);
    const named = c.req.query('collections');
    const collections = named
      ? named
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : (await knowledge.collections()).map((col) => col.name);
    const started = performance.now();
    const results = await knowledge.search(collections, q, { limit, signal: c.req.raw.signal });
    return c.json({
      query: q,
      collections,
      took_ms: Math.round(performance.now() - started),
      results,
    });
  });

  app.notFound(deps.errors.notFound);
  return app;
}
