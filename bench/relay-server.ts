/**
 * Child process: the relay under test, built from `packages/relay/dist` (`createRelay`), on
 * 127.0.0.1, talking to the fake upstream given in argv[2] (JSON `{ upstreamUrl, keys }`).
 *
 * Production-like settings: info-level JSON logging (serialised, then discarded rather than written
 * to a terminal), one retry and a 30 s timeout per provider request. Every abuse limit (rate limits,
 * quotas, session caps) is raised far out of reach: the benchmark opens up to thousands of sessions
 * per minute from one IP, which the relay would rightly refuse in production.
 *
 * IPC: sends `{type:'ready', url, keys, baselineRssMb}`; `window-start` begins a measurement window,
 * `window-end` answers `{type:'stats', stats, connects}` (CPU, RSS, event-loop delay, GC of this process;
 * TCP connections it opened to the upstream in the window).
 */
import { subscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayOptions } from '@voice-bot/relay';
import { ORIGIN, ProcessProbe, benchmarkLimits, type IpcMessage } from './common.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { upstreamUrl: string; keys?: number };
// BENCH_RELAY_MODULE points at another build of the relay (e.g. a patched copy of dist/ inside the
// repository, so it resolves the same dependencies) for before/after comparisons.
const { DEFAULT_LIMITS, KeyStore, createLogger, createRelay } = (await import(process.env.BENCH_RELAY_MODULE ?? '@voice-bot/relay')) as typeof import('@voice-bot/relay');

const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-bench-'));
const keys = KeyStore.inDataDir(dataDir);
const secrets: string[] = [];
for (let i = 0; i < Math.max(1, config.keys ?? 1); i++) secrets.push((await keys.create({ origins: [ORIGIN], label: `bench ${i}` })).secret);

const stage = { baseURL: config.upstreamUrl, apiKey: 'sk-bench', timeoutMs: 30_000, maxRetries: 1 };
const options: RelayOptions = {
  keys,
  // BENCH_RELAY_LOG=warn (or any level) writes the relay's log at that level to stderr instead.
  logger: process.env.BENCH_RELAY_LOG
    ? createLogger({ level: process.env.BENCH_RELAY_LOG, destination: process.stderr as never })
    : createLogger({ level: 'info', destination: { write: () => true } as never }),
  tokenSecret: 'bench-secret-bench-secret-bench-secret-0123456789',
  providers: {
    stt: { ...stage, model: 'whisper-1' },
    llm: { ...stage, model: 'gpt-4o-mini' },
    tts: { ...stage, model: 'gpt-4o-mini-tts', voice: 'alloy' },
  },
  limits: benchmarkLimits(DEFAULT_LIMITS as unknown as Record<string, unknown>) as RelayOptions['limits'],
};
const relay = createRelay(options);
const { url } = await relay.listen(0, '127.0.0.1');

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const probe = new ProcessProbe();
probe.start();
// Outgoing TCP connections (all of them go to the fake upstream): a pool that keeps its
// connections reuses them; one that lets them idle out reconnects under load.
let connects = 0;
subscribe('net.client.socket', () => connects++);

process.on('message', (m: IpcMessage) => {
  if (m.type === 'window-start') {
    probe.start();
    connects = 0;
  } else if (m.type === 'window-end') process.send?.({ type: 'stats', stats: probe.stop(), connects });
  else if (m.type === 'rss') {
    if (m.gc) gc?.();
    process.send?.({ type: 'rss', rssMb: process.memoryUsage.rss() / 2 ** 20, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 });
  } else if (m.type === 'exit') {
    void shutdown();
  }
});
process.on('disconnect', () => void shutdown());

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(0), 3000);
  timer.unref();
  await relay.close().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
  process.exit(0);
}

process.send?.({ type: 'ready', url, keys: secrets, limits: options.limits, baselineRssMb: process.memoryUsage.rss() / 2 ** 20 });
