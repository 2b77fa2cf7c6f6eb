/**
 * `voicebot-relay kb add|list|remove|reindex|search`: the knowledge base from the command line,
 * in the relay's database (`DATABASE_URL`, else SQLite in the data dir), embedded by the
 * `embeddings` provider stage (`VOICEBOT_EMBEDDINGS_*`, else `OPENAI_*`; or `providers.embeddings`
 * in the config file, whose `toolAllowHosts` the crawler honours too).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  applyConfigFile,
  defaultDataDir,
  embeddingsStage,
  providersFromEnv,
  type ConfigFile,
} from '../config/config.js';
import { processEnv, readConfigFile, relayEnv } from '../config/settings.js';
import { KnowledgeBase, type IngestReport } from '../knowledge/knowledge-base.js';
import { KnowledgeError } from '../knowledge/errors.js';
import { createStorage, type Storage } from '../store/storage.js';

export const KB_USAGE = `  voicebot-relay kb add <files|folders|urls…> [--collection NAME] [--max-pages N] [--base-url URL] [--force]
                             index Markdown, HTML, text and PDF files (folders: all of them); a URL
                             crawls its site (a sitemap.xml, or a start page and its same-site links)
                             up to --max-pages (default 50); --base-url: the public address of the
                             files, cited in answers. Unchanged documents are not embedded again
  voicebot-relay kb list [--collection NAME] [--json]   collections, or one collection's documents
  voicebot-relay kb remove ID|SOURCE… --collection NAME   remove documents (--all: the whole collection)
  voicebot-relay kb reindex [--collection NAME] [--force]  read every source again, replace what changed
  voicebot-relay kb search QUERY [--collection NAME…]  what the search_knowledge tool would find
`;

const DEFAULT_COLLECTION = 'default';

class KbUsageError extends Error {}

function write(text: string): void {
  process.stdout.write(text);
}

function printReport(report: IngestReport): void {
  for (const doc of report.documents) {
    const where = doc.url ?? doc.source;
    const detail =
      doc.status === 'failed'
        ? doc.error
        : `${doc.chunks ?? 0} chunks${doc.title ? `  ${doc.title}` : ''}`;
    write(`${doc.status.padEnd(9)} ${where}  ${detail}\n`);
  }
  write(
    `${report.collection}: ${report.added} added, ${report.updated} updated, ${report.unchanged} unchanged, ${report.failed} failed (${report.embedded} chunks embedded)\n`,
  );
}

async function knowledgeBase(
  configPath: string | undefined,
): Promise<{ storage: Storage; knowledge: KnowledgeBase }> {
  const path =
    configPath ?? (existsSync('voicebot.config.json') ? 'voicebot.config.json' : undefined);
  const file: ConfigFile = path ? await readConfigFile(path) : {};
  const env = processEnv();
  const settings = applyConfigFile(file, env, providersFromEnv(env));
  const providers = settings.providers ?? providersFromEnv(env);
  const storage = createStorage({
    databaseUrl: relayEnv(env).databaseUrl,
    dataDir: defaultDataDir(env),
  });
  return {
    storage,
    knowledge: new KnowledgeBase({
      storage,
      embeddings: embeddingsStage(providers),
      allowHosts: settings.toolAllowHosts ?? [],
    }),
  };
}

export async function kbCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      collection: { type: 'string', multiple: true },
      'max-pages': { type: 'string' },
      'base-url': { type: 'string' },
      force: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (!['add', 'list', 'remove', 'reindex', 'search'].includes(action ?? ''))
    throw new KbUsageError(`unknown kb action ${JSON.stringify(action ?? '')}\n\n${KB_USAGE}`);
  const collections = values.collection ?? [];
  const one = (): string => {
    if (collections.length > 1) throw new KbUsageError('give one --collection here');
    return collections[0] ?? DEFAULT_COLLECTION;
  };
  const { storage, knowledge } = await knowledgeBase(values.config);
  try {
    await storage.ready();
    if (action === 'add') {
      if (positionals.length === 0) throw new KbUsageError('kb add needs files, folders or URLs');
      const maxPages = values['max-pages'] === undefined ? undefined : Number(values['max-pages']);
      if (maxPages !== undefined && (!Number.isInteger(maxPages) || maxPages < 1))
        throw new KbUsageError(
          `--max-pages must be a whole number ≥ 1, not ${values['max-pages']}`,
        );
      const report = await knowledge.add(positionals, {
        collection: one(),
        force: values.force,
        ...(maxPages !== undefined ? { maxPages } : {}),
        ...(values['base-url'] ? { baseUrl: values['base-url'] } : {}),
      });
      if (values.json) write(`${JSON.stringify(report)}\n`);
      else printReport(report);
      if (report.failed > 0) process.exitCode = 1;
      return;
    }
    if (action === 'list') {
      if (collections.length === 0) {
        const list = await knowledge.collections();
        if (values.json) return write(`${JSON.stringify(list)}\n`);
        if (list.length === 0)
          write(
            'No collections yet. Add documents with: voicebot-relay kb add ./docs --collection NAME\n',
          );
        for (const c of list)
          write(
            `${c.name}  ${c.documents} documents, ${c.chunks} chunks, updated ${c.updated_at}\n`,
          );
        return;
      }
      const docs = await knowledge.documents(one());
      if (values.json) return write(`${JSON.stringify(docs)}\n`);
      for (const d of docs)
        write(
          `${String(d.id).padStart(5)}  ${d.status.padEnd(6)}  ${String(d.chunk_count).padStart(4)} chunks  ${d.url ?? d.source}  ${d.title}${d.error ? `  (${d.error})` : ''}\n`,
        );
      return;
    }
    if (action === 'remove') {
      const collection = collections[0];
      if (!collection || collections.length > 1)
        throw new KbUsageError('kb remove needs --collection NAME');
      if (values.all) {
        if (!(await knowledge.removeCollection(collection)))
          throw new KnowledgeError('not_found', `there is no collection ${collection}`);
        return write(`Deleted collection ${collection}\n`);
      }
      if (positionals.length === 0)
        throw new KbUsageError(
          'kb remove needs document ids or sources (see kb list --collection NAME), or --all',
        );
      for (const target of positionals) {
        const removed = await knowledge.removeDocument(collection, target);
        if (removed) write(`Removed ${removed.id}  ${removed.url ?? removed.source}\n`);
        else {
          process.stderr.write(`voicebot-relay: no document ${target} in ${collection}\n`);
          process.exitCode = 1;
        }
      }
      return;
    }
    if (action === 'reindex') {
      const names = collections.length
        ? collections
        : (await knowledge.collections()).map((c) => c.name);
      for (const name of names) {
        const report = await knowledge.reindex(name, { force: values.force });
        if (values.json) write(`${JSON.stringify(report)}\n`);
        else printReport(report);
        if (report.failed > 0) process.exitCode = 1;
      }
      return;
    }
    const query = positionals.join(' ');
    if (!query.trim()) throw new KbUsageError('kb search needs a query');
    const names = collections.length
      ? collections
      : (await knowledge.collections()).map((c) => c.name);
    const results = await knowledge.search(names, query, { limit: Number(values.limit ?? 4) || 4 });
    if (values.json) return write(`${JSON.stringify(results)}\n`);
    for (const r of results)
      write(
        `${r.score.toFixed(4)}  ${r.url ?? r.source}  ${[r.title, r.heading].filter(Boolean).join(' › ')}\n        ${r.text.slice(0, 200).replace(/\s+/g, ' ')}\n`,
      );
  } finally {
    await storage.close();
  }
}

export { KbUsageError };
