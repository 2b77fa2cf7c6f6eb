/**
 * Barge-in (issue #6), in headless Chromium (test/support/browser.ts `launchChromium`) with the
 * fake microphone looping `../shared/fixtures/audio/48k/barge-in.wav` (the hours question, a
 * 2.8 s pause, then "Stop. Actually, never mind."), the SDK served by a relay with `staticDirs`
 * and the scripted fake upstream in this process (test/support/relay.ts `startRelay`). The first
 * utterance of every loop gets a long reply, the second one interrupts it.
 *
 * Per interruption, from bench/pages/timeline.html and bench/pages/probe-worklet.js:
 * - speech onset: the first captured sample ≥ −40 dBFS after ≥ 300 ms without one, as it reaches
 *   the page's audio graph, in AudioContext frames;
 * - VAD speech-start and the frame that confirmed speech (the client's VAD handler, observed);
 * - the SDK's decision: it posts `stop` to the playback worklet (`confirmSpeech` → `interrupt()`
 *   → `AudioEngine.stopPlayback()`, synchronously);
 * - playback silent: the playback worklet's `stopped` reply, whose `silentFromFrame` is the first
 *   silent render quantum, stamped by the probe when the worklet posted it.
 * onset → silent is measured on the audio clock (silentFromFrame − onset frame); decision → silent
 * on the wall clock (main thread → audio thread, so `Date.now()` in the worklet when it has no
 * `performance`: ±0.5 ms).
 *
 * Relay side (same process, so `performance.now()` is one clock): the relay's debug line
 * `interrupt received` (`received_at_ms`) → the fake upstream recording each in-flight request of
 * the turn as aborted (`endedAt`), for the LLM stream and the TTS requests. The same is measured
 * once more with a protocol client instead of the browser (same reply, `interrupt` ~1 s into the
 * audio), as a control for the CPU the browser takes on this 2-core machine.
 *
 * With `niceness`, this process (relay and fake upstream: the relay has its own server in
 * production) runs at that niceness while it measures; Chromium is started before, at the normal one.
 */
import { getPriority, loadavg, setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import { lastUser, openStartedTalk, type RelayHarness } from '../test/support/relay.js';
import { startPageRelay, withBenchPage } from './bench-page.js';
import { FIXTURES, LATENCY, machineBusyMs, readWavPcm, summarize, type Summary } from './common.js';

/** SDK defaults the barge-in decision depends on (packages/sdk/src/client.ts). */
export const MIN_INTERRUPTION_MS = 250;
const FRAME_MS = 20;
/** Frames in the decision window, counting the frame that started speech. */
export const WINDOW_FRAMES = Math.ceil(MIN_INTERRUPTION_MS / FRAME_MS);
/** The window ends this long after the end of the speech-start frame when every frame is voiced. */
export const DESIGNED_WINDOW_MS = (WINDOW_FRAMES - 1) * FRAME_MS;

const FIXTURE = '48k/barge-in.wav';
const QUESTION = 'What are your opening hours?';
const STOP = 'Stop. Actually, never mind.';
/** ~120 words: at 40 tokens/s the LLM is still streaming when the visitor interrupts. */
const LONG_REPLY =
  'Our opening hours are nine to five on weekdays. On Saturday we open at ten and close at two. ' +
  'On Sunday the clinic is closed, but our emergency line is answered all day. ' +
  'You can also book online at any time, and we will confirm by email within the hour. ' +
  'If you need a late appointment, Thursday evenings are available until seven by arrangement. ' +
  'Parking is free behind the building, and the entrance is step-free for wheelchairs and prams. ' +
  'Please bring your insurance card and arrive ten minutes early for your first visit, so we can complete the forms. ' +
  'Is there anything else I can help you with today?';

export interface Interruption {
  /** The VAD that judged the interrupting speech. */
  detector: 'energy' | 'silero' | 'unknown';
  /** speech onset → first silent render quantum (audio clock) */
  onsetToSilentMs: number;
  /** the same on the wall clock (cross-check: onset sample's capture stamp → worklet's `stopped` stamp) */
  onsetToSilentWallMs: number | undefined;
  /** onset → end of the 20 ms frame on which the VAD reported speech-start (audio clock) */
  onsetToSpeechStartMs: number | undefined;
  /** speech-start frame → the frame that confirmed speech: the minimum-interruption window (audio clock) */
  windowMs: number | undefined;
  /** confirming frame posted by the capture worklet → the SDK posts `stop` (VAD queue + main thread) */
  confirmToDecisionMs: number | undefined;
  /** the SDK posts `stop` → the playback worklet has silenced the next quantum */
  decisionToSilentMs: number;
  /** the SDK posts `stop` → the worklet's `stopped` reply is back on the main thread (then `interrupt` is sent) */
  decisionToReplyMs: number;
  playedMs: number;
}

/** Event-loop delay of this process (the relay's) while measuring, ms: how long ready work waited for the CPU or the loop. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** Starts watching this process's event-loop delay; the returned function stops and reads it. */
function watchLoop(): () => LoopDelay {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return () => {
    histogram.disable();
    return {
      p50: histogram.percentile(50) / 1e6,
      p99: histogram.percentile(99) / 1e6,
      max: histogram.max / 1e6,
    };
  };
}

export interface RelayInterrupt {
  /** aborted upstream requests: ms from `interrupt received` to the fake upstream seeing the abort */
  aborts: { kind: string; ms: number }[];
}

export interface BargeInConfigResult {
  name: 'energy' | 'silero';
  interruptions: Interruption[];
  /** interruptions left out (judged by the energy VAD before Silero had loaded, or not paired) */
  skipped: number;
  /** decisions to barge in seen in the page */
  decisions: number;
  onsetToSilent: Summary;
  onsetToSilentWall: Summary;
  onsetToSpeechStart: Summary;
  window: Summary;
  confirmToDecision: Summary;
  decisionToSilent: Summary;
  decisionToReply: Summary;
  /** onset → silent minus the minimum-interruption window: what is not designed delay */
  reaction: Summary;
  relay: {
    loopDelay?: LoopDelay;
    interrupts: RelayInterrupt[];
    /** interrupt received → the last in-flight upstream request aborted */
    allAborted: Summary;
    llm: Summary;
    tts: Summary;
  };
  sampleRate: number;
  baseLatencyMs: number | undefined;
  outputLatencyMs: number | undefined;
  clock: string | undefined;
  hooked: boolean;
  loadStart: string;
  loadEnd: string;
  /** CPU cores busy on the whole machine during the run (this benchmark's Chromium and relay included) */
  machineBusyCores: number | undefined;
  wallS: number;
  /** errors the client reported (code × count) */
  clientErrors: Record<string, number>;
}

export interface BargeInReport {
  chromium: string;
  fixture: string;
  /** where "Stop" begins in the file (first sample ≥ −40 dBFS after the pause), s */
  stopOnsetInFileS: number;
  loopS: number;
  minInterruptionMs: number;
  windowFrames: number;
  designedWindowMs: number;
  replyWords: number;
  configs: BargeInConfigResult[];
  /** the relay with a protocol client instead of the browser: interrupt received → aborts */
  relayAlone?: BargeInConfigResult['relay'] &
    Pick<BargeInConfigResult, 'loadStart' | 'loadEnd' | 'machineBusyCores'> & {
      /** floor: this process aborting a plain `fetch` of a streaming TTS and chat request → the fake upstream sees it */
      fetchFloor?: Summary;
    };
  /** niceness of the benchmark process (relay, fake upstream) while measuring, if it could be set; Chromium ran at the normal one */
  niceness?: number;
}

type Onset = { frame: number; t: number };
interface Timeline {
  sampleRate: number;
  baseLatency: number | undefined;
  outputLatency: number | undefined;
  clock: string | undefined;
  hooked: boolean;
  onsets: Onset[];
  speechStarts: { frame: number; t: number; detector: 'energy' | 'silero' }[];
  decisions: { t: number; vadFrame: { frame: number; t: number } | undefined }[];
  stopped: {
    silentFromFrame: number;
    frame: number | undefined;
    t: number | undefined;
    received: number;
    playedMs: number;
  }[];
  interrupts: number[];
  errors: { code: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Sets this process's niceness; returns how to restore it, or undefined if not permitted (or not asked). */
function renice(value: number | undefined): (() => void) | undefined {
  if (value === undefined) return undefined;
  try {
    const previous = getPriority();
    setPriority(value);
    return () => {
      try {
        setPriority(previous);
      } catch {
        // raising niceness back is always permitted
      }
    };
  } catch {
    return undefined;
  }
}

/** interrupt received → the last aborted request, per interrupt that aborted any (optionally of one kind). */
function lastAborts(interrupts: RelayInterrupt[], kind?: string): number[] {
  return interrupts
    .map((i) => i.aborts.filter((a) => kind === undefined || a.kind === kind).map((a) => a.ms))
    .filter((xs) => xs.length > 0)
    .map((xs) => Math.max(...xs));
}

/**
 * The floor under the relay's figure: a plain `fetch` of a streaming TTS and a streaming chat
 * request from this process, aborted 400 ms in → the (separate, fresh) fake upstream seeing both
 * aborted. The first round warms up and is not counted.
 */
async function fetchAbortFloor(runs: number): Promise<Summary> {
  const upstream = createFakeUpstream({
    latency: { ttsRealtime: true, tokensPerSecond: LATENCY.tokensPerSecond },
    chat: () => ({ content: LONG_REPLY }),
  });
  const served = await upstream.listen(0);
  const values: number[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      const controller = new AbortController();
      const mark = upstream.requests.length;
      const post = (path: string, body: unknown) =>
        fetch(`${served.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: controller.signal,
        });
      const responses = await Promise.all([
        post('/audio/speech', {
          model: 'tts',
          input: LONG_REPLY.slice(0, 200),
          voice: 'alloy',
          response_format: 'pcm',
        }),
        post('/chat/completions', {
          model: 'llm',
          stream: true,
          messages: [{ role: 'user', content: QUESTION }],
        }),
      ]);
      for (const response of responses)
        void response.body?.pipeTo(new WritableStream()).catch(() => undefined);
      await sleep(400);
      const at = performance.now();
      controller.abort();
      await sleep(200);
      const ends = upstream.requests
        .slice(mark)
        .filter((r) => r.aborted && r.endedAt !== undefined)
        .map((r) => (r.endedAt as number) - at);
      if (i > 0 && ends.length === 2) values.push(Math.max(...ends));
    }
  } finally {
    await served.close();
  }
  return summarize(values);
}

/** A measurement window's figures: the relay's interrupts and event loop, and the machine's load. */
type WindowFigures = Pick<
  BargeInConfigResult,
  'relay' | 'loadStart' | 'loadEnd' | 'machineBusyCores'
> & { wallMs: number };

/** Opens a measurement window on `h` and this machine; the returned function closes it and reads its figures. */
function measureWindow(h: RelayHarness): () => WindowFigures {
  const loadStart = load();
  const busyStart = machineBusyMs();
  const started = performance.now();
  const logMark = h.logs.length;
  const requestMark = h.upstream.requests.length;
  const loop = watchLoop();
  return () => {
    const interrupts = relayInterrupts(h, logMark, requestMark);
    const loopDelay = loop();
    const busyEnd = machineBusyMs();
    const wallMs = performance.now() - started;
    return {
      relay: {
        loopDelay,
        interrupts,
        allAborted: summarize(lastAborts(interrupts)),
        llm: summarize(lastAborts(interrupts, 'chat')),
        tts: summarize(lastAborts(interrupts, 'speech')),
      },
      loadStart,
      loadEnd: load(),
      machineBusyCores:
        busyStart !== undefined && busyEnd !== undefined
          ? (busyEnd - busyStart) / wallMs
          : undefined,
      wallMs,
    };
  };
}

/** The relay without a browser: a protocol client asks by text and interrupts ~1 s into the reply audio. */
async function measureRelayAlone(
  h: RelayHarness,
  runs: number,
): Promise<NonNullable<BargeInReport['relayAlone']>> {
  const closeWindow = measureWindow(h);
  for (let i = 0; i < runs; i++) {
    const talk = await openStartedTalk(h, { input: 'text' });
    try {
      talk.send({ type: 'text', text: QUESTION });
      const segment = await talk.next('audio_segment', () => true, { timeoutMs: 15_000 });
      await sleep(1000);
      talk.send({ type: 'interrupt', turn_id: segment.turn_id, played_ms: 900 });
      await talk.next('done', (m) => m.turn_id === segment.turn_id, { timeoutMs: 15_000 });
      await sleep(300);
    } finally {
      talk.close();
    }
  }
  const { relay, loadStart, loadEnd, machineBusyCores } = closeWindow();
  const fetchFloor = await fetchAbortFloor(runs);
  return { fetchFloor, ...relay, loadStart, loadEnd, machineBusyCores };
}

/** Start of the second speech segment of the fixture: first sample ≥ −40 dBFS after ≥ 300 ms below it, after the first 3 s. */
function stopOnset(): { onsetS: number; loopS: number } {
  const { sampleRate, pcm } = readWavPcm(join(FIXTURES, FIXTURE));
  const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 2);
  const level = 0.01 * 32768;
  let last = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i] as number) < level) continue;
    if (i > 3 * sampleRate && i - last > 0.3 * sampleRate)
      return { onsetS: i / sampleRate, loopS: samples.length / sampleRate };
    last = i;
  }
  return { onsetS: Number.NaN, loopS: samples.length / sampleRate };
}

/** Pairs the page's events into interruptions. */
export function pairInterruptions(
  tl: Timeline,
  wanted: 'energy' | 'silero',
): { interruptions: Interruption[]; skipped: number } {
  const sr = tl.sampleRate;
  const interruptions: Interruption[] = [];
  let skipped = 0;
  for (const decision of tl.decisions) {
    const stopped = tl.stopped.find((s) => s.received >= decision.t);
    const confirm = decision.vadFrame;
    const start = confirm
      ? tl.speechStarts.filter((s) => s.frame <= confirm.frame).at(-1)
      : undefined;
    // the onset belongs to this speech: at or before the frame that started it (≤ 2 s earlier)
    const ref = start?.frame ?? confirm?.frame;
    const onset =
      ref !== undefined
        ? tl.onsets.filter((o) => o.frame <= ref && ref - o.frame < 2 * sr).at(-1)
        : undefined;
    const detector = start?.detector ?? 'unknown';
    if (!stopped || !onset || (wanted === 'silero' && detector !== 'silero')) {
      skipped++;
      continue;
    }
    const audioMs = (frames: number) => (frames / sr) * 1000;
    interruptions.push({
      detector,
      onsetToSilentMs: audioMs(stopped.silentFromFrame - onset.frame),
      onsetToSilentWallMs: stopped.t !== undefined ? stopped.t - onset.t : undefined,
      onsetToSpeechStartMs: start ? audioMs(start.frame - onset.frame) : undefined,
      windowMs: start && confirm ? audioMs(confirm.frame - start.frame) : undefined,
      confirmToDecisionMs: confirm ? decision.t - confirm.t : undefined,
      decisionToSilentMs: (stopped.t ?? stopped.received) - decision.t,
      decisionToReplyMs: stopped.received - decision.t,
      playedMs: stopped.playedMs,
    });
  }
  return { interruptions, skipped };
}

/**
 * The relay's `interrupt received` lines since `logMark`, each with the upstream requests that were
 * in flight when it arrived and were aborted after it. (A speculative turn started by the visitor's
 * next pause, and dropped when they go on speaking, is aborted later but was not in flight.)
 */
function relayInterrupts(h: RelayHarness, logMark: number, requestMark: number): RelayInterrupt[] {
  const received: number[] = [];
  for (const line of h.logs.slice(logMark)) {
    const entry = JSON.parse(line) as { msg?: string; received_at_ms?: number };
    if (entry.msg === 'interrupt received' && typeof entry.received_at_ms === 'number')
      received.push(entry.received_at_ms);
  }
  const requests = h.upstream.requests.slice(requestMark);
  return received.map((at, i) => {
    const next = received[i + 1] ?? Infinity;
    const aborts = requests
      .filter(
        (r) =>
          r.aborted &&
          r.startedAt < at &&
          r.endedAt !== undefined &&
          r.endedAt >= at &&
          r.endedAt < Math.min(next, at + 2000),
      )
      .map((r) => ({ kind: r.kind, ms: (r.endedAt as number) - at }));
    return { aborts };
  });
}

export async function measureBargeIn(options: {
  runs: number;
  configs: ('energy' | 'silero')[];
  relayRuns: number;
  niceness?: number | undefined;
}): Promise<BargeInReport> {
  const { onsetS, loopS } = stopOnset();
  const { h, key } = await startPageRelay({
    latency: LATENCY,
    // A speculative turn's audio ends at its pause (no trailing silence): about 2.9 s for
    // "Stop…", 3.5 s for the question (as in test/browser/barge-in.test.ts).
    transcribe: (request) => (request.wav.durationMs < 3_200 ? STOP : QUESTION),
    chat: (request) => ({ content: lastUser(request).startsWith('Stop') ? 'Okay.' : LONG_REPLY }),
  });
  const configs: BargeInConfigResult[] = [];
  let chromium = '';
  let relayAlone: BargeInReport['relayAlone'];
  let reniced = false;
  try {
    for (const name of options.configs) {
      let restore: (() => void) | undefined;
      const closeWindow = measureWindow(h);
      try {
        await withBenchPage(
          `${h.url}/timeline.html`,
          join(FIXTURES, FIXTURE),
          async (page, version) => {
            restore = renice(options.niceness); // after the launch: Chromium keeps the normal niceness
            reniced ||= restore !== undefined;
            chromium = version;
            await page.evaluate(
              async (relayUrl, clientKey, vad) => {
                const sdk = await import('/sdk/voice-bot-sdk.js' as string);
                const w = window as unknown as {
                  __client: unknown;
                  __timelineAttach(client: unknown): void;
                };
                const client = new sdk.VoiceBotClient({
                  relayUrl,
                  clientKey,
                  assetBaseUrl: '/sdk/',
                  persistence: false,
                  ...(vad ? { vad } : {}),
                });
                w.__timelineAttach(client);
                w.__client = client;
                await client.start();
              },
              h.url,
              key,
              name === 'energy' ? { model: 'energy' } : null,
            );
            // One interruption per loop of the file; Silero may judge only from the second one on.
            const deadline =
              performance.now() +
              (options.runs + (name === 'silero' ? 1 : 0)) * loopS * 1000 +
              15_000;
            for (;;) {
              const tl = (await page.evaluate(
                () => (window as unknown as { __timeline: unknown }).__timeline,
              )) as Timeline;
              const counted = pairInterruptions(tl, name).interruptions.length;
              if (counted >= options.runs || performance.now() > deadline) break;
              await sleep(500);
            }
            await sleep(1500); // the last `interrupt` reaches the relay, the upstream sees its aborts
            const tl = (await page.evaluate(
              () => (window as unknown as { __timeline: unknown }).__timeline,
            )) as Timeline;
            await page
              .evaluate(() =>
                (window as unknown as { __client: { stop(): Promise<void> } }).__client.stop(),
              )
              .catch(() => undefined);
            const { interruptions, skipped } = pairInterruptions(tl, name);
            const { relay, loadStart, loadEnd, machineBusyCores, wallMs } = closeWindow();
            const clientErrors: Record<string, number> = {};
            for (const e of tl.errors) clientErrors[e.code] = (clientErrors[e.code] ?? 0) + 1;
            const defined = (xs: (number | undefined)[]) =>
              xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
            configs.push({
              name,
              interruptions,
              skipped,
              decisions: tl.decisions.length,
              onsetToSilent: summarize(interruptions.map((i) => i.onsetToSilentMs)),
              onsetToSilentWall: summarize(
                defined(interruptions.map((i) => i.onsetToSilentWallMs)),
              ),
              onsetToSpeechStart: summarize(
                defined(interruptions.map((i) => i.onsetToSpeechStartMs)),
              ),
              window: summarize(defined(interruptions.map((i) => i.windowMs))),
              confirmToDecision: summarize(
                defined(interruptions.map((i) => i.confirmToDecisionMs)),
              ),
              decisionToSilent: summarize(interruptions.map((i) => i.decisionToSilentMs)),
              decisionToReply: summarize(interruptions.map((i) => i.decisionToReplyMs)),
              reaction: summarize(
                defined(
                  interruptions.map((i) =>
                    i.windowMs !== undefined ? i.onsetToSilentMs - i.windowMs : undefined,
                  ),
                ),
              ),
              relay,
              sampleRate: tl.sampleRate,
              baseLatencyMs: tl.baseLatency !== undefined ? tl.baseLatency * 1000 : undefined,
              outputLatencyMs: tl.outputLatency !== undefined ? tl.outputLatency * 1000 : undefined,
              clock: tl.clock,
              hooked: tl.hooked,
              loadStart,
              loadEnd,
              machineBusyCores,
              wallS: wallMs / 1000,
              clientErrors,
            });
          },
        );
      } finally {
        restore?.();
      }
    }
    if (options.relayRuns > 0) {
      const restore = renice(options.niceness);
      try {
        relayAlone = await measureRelayAlone(h, options.relayRuns);
      } finally {
        restore?.();
      }
    }
  } finally {
    await h.close();
  }
  return {
    chromium,
    fixture: FIXTURE,
    stopOnsetInFileS: onsetS,
    loopS,
    minInterruptionMs: MIN_INTERRUPTION_MS,
    windowFrames: WINDOW_FRAMES,
    designedWindowMs: DESIGNED_WINDOW_MS,
    replyWords: LONG_REPLY.split(/\s+/).length,
    configs,
    ...(relayAlone ? { relayAlone } : {}),
    ...(reniced && options.niceness !== undefined ? { niceness: options.niceness } : {}),
  };
}
