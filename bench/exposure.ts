/**
 * What the relay's two exposure protections cost and bound (`npm run bench -- --only=exposure`):
 *
 * 1. **Clients that stop reading.** `sessions` WebSocket sessions each ask for a long spoken reply
 *    (`sentences` × `sentenceBytes` of TTS audio, streamed by the fake upstream as fast as the relay
 *    reads it) and then stop reading (`ws.pause()`). The reference, in alternating rounds: as many
 *    sessions that read the same replies. Each phase runs on a fresh relay process; the orchestrator
 *    samples the relay's RSS (/proc, every 100 ms), what the relay has queued per socket (its own
 *    count of `writableLength`), the kernel's socket queues on both hops (/proc/net/tcp), the bytes
 *    the provider streamed (counted in the fake upstream), and the relay's `/metrics`
 *    (`voicebot_errors_total{code="slow_client"}`, `voicebot_sessions_active`).
 * 2. **Oversized request bodies.** `bodies` raw HTTP clients at once each `POST /v1/sessions` with
 *    `Content-Length: 256 MiB` (or chunked, without a length) and stream 1 MiB writes as fast as the
 *    socket takes them; the reference is as many valid `POST /v1/sessions` (201). Rounds alternate
 *    on one warm relay; per phase: time to the answer, the body bytes the kernel had taken from the
 *    client by then and in all, the relay's RSS (before, peak) and CPU.
 *
 * Everything is on 127.0.0.1, bounded in count and time, and stops by itself.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  machineBusyMs,
  nextMessage,
  summarize,
  type IpcMessage,
  type ProcessStats,
  type Summary,
} from './common.js';
import type { BodyRecord, SocketRecord } from './exposure-client.js';
import type { ExposureUpstreamConfig, SessionBytes } from './exposure-upstream.js';
import { DEFAULT_LIMITS } from '@voice-bot/relay';
import { forkBench, stopChild, waitForQuiet } from './levels.js';

export interface ExposureOptions {
  quick: boolean;
  /** WebSocket sessions per phase */
  sessions: number;
  /** rounds of (non-reading, reading), alternating which goes first */
  rounds: number;
  /**
   * sampling window per socket phase, ms; a reading phase goes on until its replies are done, a
   * non-reading one until the relay has closed every session (either ≤ 20 s more)
   */
  windowMs: number;
  sentences: number;
  sentenceBytes: number;
  /** oversized (and normal) requests per body phase, all at once */
  bodies: number;
  bodyRounds: number;
  /** Content-Length the oversized clients announce */
  declaredBytes: number;
  chunkBytes: number;
  /** a body client gives up this long after connecting */
  bodyMaxMs: number;
  /** limits set over the benchmark's (the quick run shortens `slowClientTimeoutMs`) */
  limits: Record<string, number>;
  waitQuietMs: number;
}

export function exposureOptions(quick: boolean, waitQuietMs: number): ExposureOptions {
  return quick
    ? {
        quick,
        sessions: 10,
        rounds: 1,
        windowMs: 5000,
        sentences: 24,
        sentenceBytes: 480_000,
        bodies: 3,
        bodyRounds: 1,
        declaredBytes: 256 * 2 ** 20,
        chunkBytes: 2 ** 20,
        bodyMaxMs: 5000,
        limits: { slowClientTimeoutMs: 2000 },
        waitQuietMs: 0,
      }
    : {
        quick,
        sessions: 100,
        rounds: 2,
        windowMs: 12_000,
        sentences: 24,
        sentenceBytes: 480_000,
        bodies: 20,
        bodyRounds: 3,
        declaredBytes: 256 * 2 ** 20,
        chunkBytes: 2 ** 20,
        bodyMaxMs: 10_000,
        limits: {},
        waitQuietMs: Math.min(waitQuietMs, 20_000),
      };
}

/** One 500 ms sample of a socket phase (t: ms after the sessions asked). */
export interface SocketSample {
  t: number;
  rssMb: number;
  /** bytes the fake upstream has streamed to the relay in this phase (all sessions) */
  providerBytes: number;
  /** bytes the relay process has queued towards its accepted sockets (sum, largest) */
  relayQueued: number;
  relayQueuedMax: number;
  /** kernel socket queues, relay → clients: relay's send queues + clients' receive queues */
  kernelToClients: number;
  /** kernel socket queues, provider → relay: upstream's send queues + relay's receive queues */
  kernelFromProvider: number;
  /** `voicebot_errors_total{code="slow_client"}` and `voicebot_sessions_active` */
  slowClient: number | undefined;
  sessionsActive: number | undefined;
  /** replies finished (`done`) and audio bytes received by the clients */
  done: number;
  audioBytes: number;
}

export interface SocketPhase {
  variant: 'non-reading' | 'reading';
  round: number;
  sessions: number;
  opened: number;
  setupFailures: string[];
  /** per-session reply: audio bytes the provider has for it */
  replyAudioBytes: number;
  /** relay RSS after a GC: fresh (no session), with the sessions open and idle */
  rssFreshMb: number;
  rssIdleMb: number;
  /** highest RSS sampled (every 100 ms, /proc) during the window, and when RSS first came within 1 MB of it (ms after the ask) */
  rssPeakMb: number;
  rssPeakAtMs: number;
  /** at the end of the window (no GC), and after the sessions closed and a GC (with the JS heap and ArrayBuffers then) */
  rssEndMb: number;
  rssAfterMb: number;
  heapAfterMb: number;
  arrayBuffersAfterMb: number;
  /** the same 3 s later (another GC) */
  rssLaterMb?: number;
  heapLaterMb?: number;
  arrayBuffersLaterMb?: number;
  windowMs: number;
  relay: ProcessStats;
  /** CPU busy on the whole machine during the window (cores) */
  machineCpuCores: number | undefined;
  samples: SocketSample[];
  /** bytes the provider streamed per session (speech + chat), and speech requests per session */
  providerPerSession: Summary;
  speechRequestsPerSession: Summary;
  providerTotal: number;
  slowClientTotal: number | undefined;
  sessionsActiveEnd: number | undefined;
  /** replies completed, and ms after the ask of the last one */
  repliesDone: number;
  lastDoneMs: number | undefined;
  /** the clients' view: WebSocket close codes, error messages, connections the relay ended */
  closeCodes: Record<string, number>;
  errors: Record<string, number>;
  closedByRelay: number;
  bytesReadBeforeResume: Summary;
  audioBytesReceived: Summary;
}

export interface BodyPhase {
  mode: BodyRecord['mode'];
  round: number;
  n: number;
  statuses: Record<string, number>;
  answerMs: Summary;
  writtenAtAnswer: Summary;
  writtenTotal: Summary;
  endedMs: Summary;
  ended: Record<string, number>;
  connectionClose: number;
  rssBeforeMb: number;
  /** highest RSS sampled every 20 ms (/proc) from the start of the phase until every client is done */
  rssPeakMb: number;
  rssAfterMb: number;
  relay: ProcessStats;
  /** relay CPU in the phase ÷ requests, and the same less what the idle relay used over as long */
  cpuMsPerRequest: number;
  netCpuMsPerRequest: number;
  machineCpuCores: number | undefined;
}

export interface ExposureReport {
  options: ExposureOptions;
  /** the relay's limits in force (`maxBufferedBytes`, `slowClientTimeoutMs`) and the session body limit */
  maxBufferedBytes: number;
  slowClientTimeoutMs: number;
  maxSessionBodyBytes: number;
  /** net.ipv4.tcp_wmem / tcp_rmem of this machine (min default max) */
  tcpWmem: string | undefined;
  tcpRmem: string | undefined;
  loadStart: string;
  loadEnd: string;
  backgroundCpuCores: number | undefined;
  /** CPU the idle relay used (cores), subtracted for the body phases' net CPU per request */
  idleRelayCpuCores: number;
  elapsedS: number;
  sockets: SocketPhase[];
  bodies: BodyPhase[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readText = (path: string) => {
  try {
    return readFileSync(path, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return undefined;
  }
};

/** RSS of a process from /proc (MB), or NaN. */
function procRssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Samples a process's RSS every `everyMs` until stopped; returns the peak, when RSS first came
 * within 1 MB of it (ms after `t0`), and the last sample.
 */
function rssSampler(
  pid: number | undefined,
  everyMs: number,
  t0: number,
): { stop(): { peakMb: number; peakAtMs: number; lastMb: number } } {
  const series: [number, number][] = [[performance.now() - t0, procRssMb(pid)]];
  const timer = setInterval(() => series.push([performance.now() - t0, procRssMb(pid)]), everyMs);
  return {
    stop() {
      clearInterval(timer);
      series.push([performance.now() - t0, procRssMb(pid)]);
      const peakMb = Math.max(...series.map(([, mb]) => mb).filter(Number.isFinite));
      const peakAtMs = series.find(([, mb]) => mb >= peakMb - 1)?.[0] ?? Number.NaN;
      return { peakMb, peakAtMs, lastMb: series.at(-1)?.[1] ?? Number.NaN };
    },
  };
}

/**
 * Kernel socket queues on 127.0.0.1 (/proc/net/tcp, established connections): for the connections
 * to `port`, the server side's send queue (written, not yet acknowledged or sent) plus the client
 * side's receive queue (arrived, not yet read by the application).
 */
function kernelQueued(port: number): number {
  let total = 0;
  try {
    const lines = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || f[3] !== '01') continue;
      const local = parseInt((f[1] ?? '').split(':')[1] ?? '', 16);
      const remote = parseInt((f[2] ?? '').split(':')[1] ?? '', 16);
      const [tx, rx] = (f[4] ?? '0:0').split(':').map((h) => parseInt(h, 16));
      if (local === port) total += tx ?? 0;
      else if (remote === port) total += rx ?? 0;
    }
  } catch {
    return Number.NaN;
  }
  return total;
}

/** The relay's counters of interest from `/metrics`. */
async function relayMetrics(relayUrl: string): Promise<{
  slowClient: number | undefined;
  sessionsActive: number | undefined;
  payloadTooLarge: number | undefined;
}> {
  try {
    const text = await (
      await fetch(`${relayUrl}/metrics`, { signal: AbortSignal.timeout(3000) })
    ).text();
    const pick = (re: RegExp) => {
      const m = re.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return {
      slowClient: pick(/^voicebot_errors_total\{code="slow_client"\} (\d+)/m) ?? 0,
      sessionsActive: pick(/^voicebot_sessions_active(?:\{[^}]*\})? (\d+)/m),
      payloadTooLarge: pick(/^voicebot_errors_total\{code="payload_too_large"\} (\d+)/m) ?? 0,
    };
  } catch {
    return { slowClient: undefined, sessionsActive: undefined, payloadTooLarge: undefined };
  }
}

type Ready = IpcMessage & { url: string; keys: string[]; limits: Record<string, number> };

async function startRelay(
  upstreamUrl: string,
  o: ExposureOptions,
): Promise<{ child: ChildProcess; ready: Ready; port: number }> {
  const child = forkBench(
    'relay-server.ts',
    [
      JSON.stringify({
        upstreamUrl,
        keys: 1,
        limits: o.limits,
        metrics: 'public',
        trackSockets: true,
      }),
    ],
    ['--expose-gc'],
  );
  const ready = await nextMessage<Ready>(child, 'ready', 30_000);
  return { child, ready, port: Number(new URL(ready.url).port) };
}

async function relayMemory(
  relay: ChildProcess,
  gc: boolean,
): Promise<{ rssMb: number; heapUsedMb: number; arrayBuffersMb: number }> {
  relay.send({ type: 'rss', gc });
  return nextMessage<IpcMessage & { rssMb: number; heapUsedMb: number; arrayBuffersMb: number }>(
    relay,
    'rss',
    30_000,
  );
}
const relayRss = async (relay: ChildProcess, gc: boolean) => (await relayMemory(relay, gc)).rssMb;

function countBy<T>(items: T[], key: (item: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

async function socketPhase(
  variant: SocketPhase['variant'],
  round: number,
  o: ExposureOptions,
  upstream: { child: ChildProcess; url: string; port: number },
  client: ChildProcess,
  log: (line: string) => void,
): Promise<SocketPhase> {
  const relay = await startRelay(upstream.url, o);
  try {
    const rssFreshMb = await relayRss(relay.child, true);
    client.send({
      type: 'open',
      relayUrl: relay.ready.url,
      key: relay.ready.keys[0],
      sessions: o.sessions,
    });
    const opened = await nextMessage<
      IpcMessage & { opened: number; failures: string[]; setupMs: number }
    >(client, 'opened', 60_000 + o.sessions * 100);
    const rssIdleMb = await relayRss(relay.child, true);
    upstream.child.send({ type: 'reset' });
    await nextMessage(upstream.child, 'reset-done', 10_000);

    relay.child.send({ type: 'window-start' });
    const busy0 = machineBusyMs();
    const t0 = performance.now();
    const rss = rssSampler(relay.child.pid, 100, t0);
    client.send({ type: 'ask', read: variant === 'reading' });
    await nextMessage(client, 'asked', 10_000);

    const samples: SocketSample[] = [];
    const capMs = o.windowMs + 20_000;
    let active: number | undefined;
    for (let tick = 1; ; tick++) {
      await sleep(Math.max(0, t0 + tick * 500 - performance.now()));
      const t = performance.now() - t0;
      relay.child.send({ type: 'sockets' });
      upstream.child.send({ type: 'counts' });
      client.send({ type: 'status' });
      const [sockets, counts, status, metrics] = await Promise.all([
        nextMessage<IpcMessage & { queuedBytes: number; maxQueuedBytes: number }>(
          relay.child,
          'sockets',
          10_000,
        ),
        nextMessage<IpcMessage & { total: number }>(upstream.child, 'counts', 10_000),
        nextMessage<IpcMessage & { done: number; audioBytes: number }>(client, 'status', 10_000),
        tick % 2 === 0 ? relayMetrics(relay.ready.url) : Promise.resolve(undefined),
      ]);
      samples.push({
        t,
        rssMb: procRssMb(relay.child.pid),
        providerBytes: counts.total,
        relayQueued: sockets.queuedBytes,
        relayQueuedMax: sockets.maxQueuedBytes,
        kernelToClients: kernelQueued(relay.port),
        kernelFromProvider: kernelQueued(upstream.port),
        slowClient: metrics?.slowClient,
        sessionsActive: metrics?.sessionsActive,
        done: status.done,
        audioBytes: status.audioBytes,
      });
      if (metrics) active = metrics.sessionsActive;
      const over =
        variant === 'reading' ? status.done >= opened.opened : active === undefined || active === 0;
      // (a quick run's reading phase ends with its replies: nothing is measured on it but that)
      if (t >= capMs || (t >= (o.quick && variant === 'reading' ? 0 : o.windowMs) && over)) break;
    }
    const peak = rss.stop();
    const busy1 = machineBusyMs();
    const windowMs = performance.now() - t0;
    relay.child.send({ type: 'window-end' });
    const stats = await nextMessage<IpcMessage & { stats: ProcessStats }>(
      relay.child,
      'stats',
      30_000,
    );
    const metrics = await relayMetrics(relay.ready.url);
    upstream.child.send({ type: 'counts' });
    const counts = await nextMessage<
      IpcMessage & { total: number; sessions: Record<string, SessionBytes> }
    >(upstream.child, 'counts', 10_000);
    client.send({ type: 'finish', drainMs: 1500 });
    const finished = await nextMessage<IpcMessage & { sockets: SocketRecord[] }>(
      client,
      'finished',
      30_000,
    );
    const after = await relayMemory(relay.child, true);
    // Once more a little later: V8 frees ArrayBuffers' memory after a GC, not during it.
    let later: Awaited<ReturnType<typeof relayMemory>> | undefined;
    if (!o.quick) {
      await sleep(3000);
      later = await relayMemory(relay.child, true);
    }

    const per = [...Array(opened.opened).keys()].map(
      (i) => counts.sessions[String(i)] ?? { speech: 0, chat: 0, speechRequests: 0 },
    );
    const done = finished.sockets.filter((s) => s.doneMs !== undefined);
    const phase: SocketPhase = {
      variant,
      round,
      sessions: o.sessions,
      opened: opened.opened,
      setupFailures: opened.failures,
      replyAudioBytes: o.sentences * o.sentenceBytes,
      rssFreshMb,
      rssIdleMb,
      rssPeakMb: peak.peakMb,
      rssPeakAtMs: peak.peakAtMs,
      rssEndMb: peak.lastMb,
      rssAfterMb: after.rssMb,
      heapAfterMb: after.heapUsedMb,
      arrayBuffersAfterMb: after.arrayBuffersMb,
      ...(later
        ? {
            rssLaterMb: later.rssMb,
            heapLaterMb: later.heapUsedMb,
            arrayBuffersLaterMb: later.arrayBuffersMb,
          }
        : {}),
      windowMs,
      relay: stats.stats,
      machineCpuCores:
        busy0 !== undefined && busy1 !== undefined ? (busy1 - busy0) / windowMs : undefined,
      samples,
      providerPerSession: summarize(per.map((p) => p.speech + p.chat)),
      speechRequestsPerSession: summarize(per.map((p) => p.speechRequests)),
      providerTotal: counts.total,
      slowClientTotal: metrics.slowClient,
      sessionsActiveEnd: metrics.sessionsActive,
      repliesDone: done.length,
      lastDoneMs: done.length ? Math.max(...done.map((s) => s.doneMs as number)) : undefined,
      closeCodes: countBy(finished.sockets, (s) =>
        s.closeCode === undefined ? undefined : String(s.closeCode),
      ),
      errors: countBy(
        finished.sockets.flatMap((s) => s.errors),
        (e) => e,
      ),
      closedByRelay: finished.sockets.filter((s) => s.closedByRelay).length,
      bytesReadBeforeResume: summarize(finished.sockets.map((s) => s.bytesReadAtFinish)),
      audioBytesReceived: summarize(finished.sockets.map((s) => s.audioBytes)),
    };
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    log(
      `  ${variant}, round ${round + 1}: ${phase.opened} sessions, RSS ${phase.rssIdleMb.toFixed(0)} → peak ${phase.rssPeakMb.toFixed(0)} MB (after ${(phase.rssPeakAtMs / 1000).toFixed(1)} s), ` +
        `provider ${mb(phase.providerPerSession.p50)} MB per session (p50; reply ${mb(phase.replyAudioBytes)} MB), slow_client ${phase.slowClientTotal ?? '?'}, replies done ${phase.repliesDone}` +
        (phase.lastDoneMs !== undefined
          ? ` (last after ${(phase.lastDoneMs / 1000).toFixed(1)} s)`
          : ''),
    );
    return phase;
  } finally {
    await stopChild(relay.child);
  }
}

async function bodyPhase(
  mode: BodyRecord['mode'],
  round: number,
  o: ExposureOptions,
  relay: { child: ChildProcess; ready: Ready },
  client: ChildProcess,
  idleCores: number,
): Promise<BodyPhase> {
  const rssBeforeMb = await relayRss(relay.child, true);
  relay.child.send({ type: 'window-start' });
  const busy0 = machineBusyMs();
  const t0 = performance.now();
  const rss = rssSampler(relay.child.pid, 20, t0);
  client.send({
    type: 'bodies',
    relayUrl: relay.ready.url,
    key: relay.ready.keys[0],
    mode,
    n: o.bodies,
    chunkBytes: o.chunkBytes,
    declaredBytes: o.declaredBytes,
    maxMs: o.bodyMaxMs,
  });
  const { results } = await nextMessage<IpcMessage & { results: BodyRecord[] }>(
    client,
    'bodies-result',
    o.bodyMaxMs + 30_000,
  );
  // The relay may still be reading what the clients sent last; let it finish.
  await sleep(200);
  const peak = rss.stop();
  const busy1 = machineBusyMs();
  const wall = performance.now() - t0;
  relay.child.send({ type: 'window-end' });
  const stats = await nextMessage<IpcMessage & { stats: ProcessStats }>(
    relay.child,
    'stats',
    30_000,
  );
  const rssAfterMb = await relayRss(relay.child, false);
  const answered = results.filter((r) => r.answerMs !== undefined);
  return {
    mode,
    round,
    n: results.length,
    statuses: countBy(results, (r) => String(r.status ?? 'none')),
    answerMs: summarize(answered.map((r) => r.answerMs as number)),
    writtenAtAnswer: summarize(answered.map((r) => r.writtenAtAnswer)),
    writtenTotal: summarize(results.map((r) => r.writtenTotal)),
    endedMs: summarize(
      results.filter((r) => r.endedMs !== undefined).map((r) => r.endedMs as number),
    ),
    ended: countBy(results, (r) => r.ended),
    connectionClose: results.filter((r) => r.connectionClose).length,
    rssBeforeMb,
    rssPeakMb: Math.max(peak.peakMb, stats.stats.rssMaxMb),
    rssAfterMb,
    relay: stats.stats,
    cpuMsPerRequest: stats.stats.cpuMs / Math.max(1, results.length),
    netCpuMsPerRequest:
      (stats.stats.cpuMs - idleCores * stats.stats.wallMs) / Math.max(1, results.length),
    machineCpuCores:
      busy0 !== undefined && busy1 !== undefined ? (busy1 - busy0) / wall : undefined,
  };
}

export async function measureExposure(
  o: ExposureOptions,
  log: (line: string) => void,
): Promise<ExposureReport> {
  const started = performance.now();
  const loadStart = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const backgroundCpuCores = o.waitQuietMs
    ? await waitForQuiet(o.waitQuietMs, 0.3, log)
    : undefined;
  const upstreamConfig: ExposureUpstreamConfig = {
    sentences: o.sentences,
    sentenceBytes: o.sentenceBytes,
    llmTtftMs: 50,
  };
  const upstreamChild = forkBench('exposure-upstream.ts', [JSON.stringify(upstreamConfig)]);
  const client = forkBench('exposure-client.ts');
  const sockets: SocketPhase[] = [];
  const bodies: BodyPhase[] = [];
  let limits: Record<string, number> = {};
  let idleCpuCores = 0;
  try {
    const [ready] = await Promise.all([
      nextMessage<IpcMessage & { url: string }>(upstreamChild, 'ready', 30_000),
      nextMessage(client, 'alive', 30_000),
    ]);
    const upstream = {
      child: upstreamChild,
      url: ready.url,
      port: Number(new URL(ready.url).port),
    };

    log(
      `  clients that stop reading: ${o.sessions} sessions per phase, a ${o.sentences}-sentence reply of ${((o.sentences * o.sentenceBytes) / 2 ** 20).toFixed(1)} MB of audio each, ${o.rounds} round(s) alternating with ${o.sessions} that read`,
    );
    for (let round = 0; round < o.rounds; round++) {
      const order: SocketPhase['variant'][] =
        round % 2 === 0 ? ['non-reading', 'reading'] : ['reading', 'non-reading'];
      for (const variant of order)
        sockets.push(await socketPhase(variant, round, o, upstream, client, log));
    }

    log(
      `  oversized bodies: ${o.bodies} clients at once per phase, ${o.bodyRounds} round(s) alternating declared / chunked / normal`,
    );
    const relay = await startRelay(upstream.url, o);
    // The relay reports the limits the benchmark set; the rest are the relay's defaults.
    limits = { ...(DEFAULT_LIMITS as unknown as Record<string, number>), ...relay.ready.limits };
    try {
      // Warm-up (not recorded): both code paths once, so no phase pays for the first call's JIT.
      for (const mode of ['normal', 'declared', 'chunked'] as const) {
        client.send({
          type: 'bodies',
          relayUrl: relay.ready.url,
          key: relay.ready.keys[0],
          mode,
          n: 2,
          chunkBytes: o.chunkBytes,
          declaredBytes: o.declaredBytes,
          maxMs: o.bodyMaxMs,
        });
        await nextMessage(client, 'bodies-result', o.bodyMaxMs + 30_000);
      }
      // What the idle relay uses (timers, the probe's own sampling), to subtract from the phases.
      await sleep(300);
      relay.child.send({ type: 'window-start' });
      await sleep(1000);
      relay.child.send({ type: 'window-end' });
      const idle = await nextMessage<IpcMessage & { stats: ProcessStats }>(
        relay.child,
        'stats',
        30_000,
      );
      idleCpuCores = idle.stats.cpuCores;
      for (let round = 0; round < o.bodyRounds; round++) {
        const order: BodyPhase['mode'][] =
          round % 2 === 0 ? ['declared', 'chunked', 'normal'] : ['normal', 'chunked', 'declared'];
        for (const mode of order) {
          const phase = await bodyPhase(mode, round, o, relay, client, idleCpuCores);
          bodies.push(phase);
          log(
            `  ${mode}, round ${round + 1}: ${Object.entries(phase.statuses)
              .map(([k, v]) => `${k}×${v}`)
              .join(
                ', ',
              )}, answer p50/max ${phase.answerMs.p50.toFixed(1)}/${phase.answerMs.max.toFixed(1)} ms, ` +
              `written at answer p50 ${(phase.writtenAtAnswer.p50 / 2 ** 20).toFixed(1)} MB, in all p50/max ${(phase.writtenTotal.p50 / 2 ** 20).toFixed(1)}/${(phase.writtenTotal.max / 2 ** 20).toFixed(1)} MB, ` +
              `RSS ${phase.rssBeforeMb.toFixed(0)} → peak ${phase.rssPeakMb.toFixed(0)} MB, relay CPU ${phase.cpuMsPerRequest.toFixed(2)} ms per request`,
          );
        }
      }
    } finally {
      await stopChild(relay.child);
    }
  } finally {
    await Promise.all([stopChild(client), stopChild(upstreamChild)]);
  }
  return {
    options: o,
    maxBufferedBytes: Number(limits.maxBufferedBytes),
    slowClientTimeoutMs: Number(limits.slowClientTimeoutMs),
    maxSessionBodyBytes: 4 * 1024,
    tcpWmem: readText('/proc/sys/net/ipv4/tcp_wmem'),
    tcpRmem: readText('/proc/sys/net/ipv4/tcp_rmem'),
    loadStart,
    loadEnd: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    backgroundCpuCores,
    idleRelayCpuCores: idleCpuCores,
    elapsedS: (performance.now() - started) / 1000,
    sockets,
    bodies,
  };
}
