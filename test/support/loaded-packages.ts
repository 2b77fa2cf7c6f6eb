/**
 * Child process of relay-lazy-deps.test.ts: starts a relay in the default configuration (SQLite,
 * in-process state, a bot without tools), then ingests an HTML page, then makes a relay whose bot
 * has a tool, and prints after each step the files under node_modules loaded so far (ES modules
 * by a resolve hook, CommonJS ones from the require cache) as one JSON object.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire, register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
const resolved = new Set<string>();
port1.on('message', (url: string) => resolved.add(url));
port1.unref();
register('./module-log.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });
const require = createRequire(import.meta.url);

/** Paths under node_modules loaded so far (`pg/lib/index.js`). */
async function loaded(): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 100));
  const files = new Set(Object.keys(require.cache));
  for (const url of resolved) if (url.startsWith('file:')) files.add(fileURLToPath(url));
  return [...files]
    .map((file) => /\/node_modules\/(.+)$/.exec(file)?.[1])
    .filter((path): path is string => path !== undefined)
    .sort();
}

const { createFakeUpstream } = await import('@voice-bot/fake-provider');
const { createRelay, createLogger, defineTool, openStorage, DEFAULT_BOT } =
  await import('@voice-bot/relay');

const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-lazy-'));
const upstream = createFakeUpstream();
const served = await upstream.listen(0);
const stage = { baseURL: served.url, apiKey: 'sk-test', timeoutMs: 5_000, maxRetries: 0 };
const options = {
  logger: createLogger({ level: 'warn', destination: { write: () => true } as never }),
  tokenSecret: 'test-secret-test-secret-test-secret-0123',
  providers: {
    stt: { ...stage, model: 'whisper-1' },
    llm: { ...stage, model: 'gpt-4o-mini' },
    tts: { ...stage, model: 'gpt-4o-mini-tts', voice: 'alloy' },
    embeddings: { ...stage, model: 'text-embedding-3-small' },
  },
};
const out: Record<string, unknown> = {};

const storage = await openStorage({ dataDir });
const { secret } = await storage.keys.create({ origins: ['https://example.com'], label: 'test' });
const relay = createRelay({ ...options, storage });
const { url } = await relay.listen(0);
const session = await fetch(`${url}/v1/sessions`, {
  method: 'POST',
  headers: {
    authorization: `Bearer ${secret}`,
    origin: 'https://example.com',
    'content-type': 'application/json',
  },
  body: '{}',
});
out.session = session.status;
out.started = await loaded();

const page = `<!doctype html><html><head><title>Hours</title></head><body><nav>Home</nav>
  <main><h1>Opening hours</h1><p>We are open from 8 to 18 on weekdays.</p></main></body></html>`;
const report = await relay.knowledge.addFiles(
  [{ filename: 'hours.html', content: Buffer.from(page) }],
  { collection: 'site' },
);
out.ingested = report.documents.map((d) => d.error ?? d.status);
out.html = await loaded();

const withTools = createRelay({
  ...options,
  storage,
  tools: [
    defineTool({
      name: 'opening_hours',
      description: 'Opening hours of a day',
      parameters: { type: 'object', properties: { day: { type: 'string' } } },
      execute: async () => 'open',
    }),
  ],
  bots: [{ ...DEFAULT_BOT, tools: ['opening_hours'] }],
});
out.tools = await loaded();

await withTools.close();
await relay.close();
await storage.close();
await served.close();
await rm(dataDir, { recursive: true, force: true });
process.stdout.write(JSON.stringify(out));
