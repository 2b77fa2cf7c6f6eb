/**
 * Mouth to ear (issue #22): the visitor's last speech sample → the first sample of the reply
 * rendered, in headless Chromium (test/support/browser.ts `launchChromium`) with the fake
 * microphone playing a playlist of utterances, the SDK served by the real relay in this process and
 * the scripted fake upstream (STT 300 ms, LLM first token 300 ms then 40 tokens/s, TTS first byte
 * 150 ms, audio paced at real time) behind a proxy that adds network jitter to every TTS chunk.
 *
 * Cases, alternating within each round: speculative turns on (the SDK's and relay's defaults) and
 * `speculation: false` (the turn ends after `vad.redemptionMs`, 700 ms, of silence), per VAD.
 *
 * How the two ends are timed, on the page's audio clock (the SDK's capture and playback worklets
 * run in one AudioContext, so `currentFrame` is one clock for both; bench/pages/mouth.html and
 * mouth-probe-worklet.js stamp the worklets' messages with it):
 * - last speech sample: from the WAV. Each utterance's first and last sample ≥ −40 dBFS are found
 *   in the file; in the page, the first captured sample ≥ −40 dBFS of the utterance (as it reached
 *   the graph) anchors the file's onset, and the last speech sample is that frame plus the file's
 *   onset → last distance. The page's own last loud sample is kept as a cross-check (the
 *   difference is reported: it measures the fake device and Chromium's audio processing, not the
 *   benchmark). Error bound: a capture frame is stamped with the render quantum it was posted in,
 *   so ±64 frames (±1.3 ms at 48 kHz) on the anchor.
 * - first reply sample rendered: the playback worklet's first `played` report of the turn (every
 *   100 ms of playback) says how much of the turn it has rendered by the end of the quantum it was
 *   posted in; the first sample was rendered that much earlier (±1.5 ms: the resampler's look-ahead).
 *   What the `<audio>` element and the sound card add after the worklet, and what a real
 *   microphone adds before the graph, are not included (identical in every case).
 *
 * Per turn, the stages: the end-of-turn wait (last speech → `commit` sent, wall clock), the relay's
 * `done.metrics` (STT, first token, first chunk, TTS first byte, first audio, held), commit → the
 * first audio frame at the page, and that frame → the first sample rendered (the jitter buffer);
 * the SDK's reply metrics (`end_of_turn_silence_ms`, `underruns`, `jitter_buffer_ms`). A false
 * cut-in is a `commit` sent before the utterance's last speech sample reached the page. Discarded
 * speculative turns come from the relay's `voicebot_speculative_turns_total{outcome}`.
 *
 * The scripted STT answers what was heard so far: the upload's first → last loud sample is
 * matched to the utterance's speech segments (the utterance is the one the playlist is at), and
 * the transcript is the text up to that segment (`heard`), punctuated as a transcriber would.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createFakeUpstream, mulberry32 } from '@voice-bot/fake-provider';
import { launchChromium, type Page } from '../test/support/browser.js';
import { startRelay, type RelayHarness } from '../test/support/relay.js';
import {
  FIXTURES,
  LATENCY,
  REPO_ROOT,
  percentile,
  readWavPcm,
  summarize,
  type Summary,
} from './common.js';

/** The reply: its first chunk is a clause (the relay's `firstClause` rule), then the rest of the sentence. */
export const MOUTH_REPLY = "We're open until six on Saturday, see you then.";
/** Each TTS network chunk is delayed by a uniform 0–2×this ms (order kept): ±this around the mean. */
export const TTS_JITTER_MS = 20;
/** A sample at or above −40 dBFS is speech. */
const LEVEL = 0.01 * 32768;
/** Loud runs closer than this are one segment of speech. */
const SEGMENT_GAP_S = 0.12;
const FILE_RATE = 48_000;

export interface UtteranceSpec {
  name: string;
  file: string;
  /** The transcript once the upload ends after speech segment k (0-based) */
  heard: string[];
}

export const UTTERANCES: UtteranceSpec[] = [
  {
    name: 'hours',
    file: join(FIXTURES, '48k/hours.wav'),
    heard: ['Hi there.', 'Hi there. What are your opening hours on Saturday?'],
  },
  {
    name: 'weather',
    file: join(FIXTURES, '48k/weather.wav'),
    heard: ['What is the weather like in Paris today?'],
  },
  {
    name: 'book',
    file: join(FIXTURES, '48k/book.wav'),
    heard: [
      'I would like to book an appointment for next Tuesday at ten in the morning,',
      'I would like to book an appointment for next Tuesday at ten in the morning, please.',
    ],
  },
  {
    name: 'stop',
    file: join(FIXTURES, '48k/stop.wav'),
    heard: ['Stop.', 'Stop. Actually,', 'Stop. Actually, never mind.'],
  },
  {
    name: 'book-pause',
    file: join(REPO_ROOT, 'bench/fixtures/book-pause.wav'),
    heard: ['I would like to book...', 'I would like to book an appointment for Tuesday.'],
  },
  {
    name: 'because-pause',
    file: join(REPO_ROOT, 'bench/fixtures/because-pause.wav'),
    heard: [
      'I need to move my appointment because',
      'I need to move my appointment because I have to work on Thursday.',
    ],
  },
];

export type MouthVad = 'silero' | 'energy';

export interface MouthOptions {
  rounds: number;
  vads: MouthVad[];
  /** names from {@link UTTERANCES} (default all) */
  utterances?: string[];
  /** silence before the first utterance (Silero loads meanwhile), s */
  leadS?: number;
  /** silence after each utterance's last speech sample, s (covers the wait, the reply and its playback) */
  gapS?: number;
  log?: (line: string) => void;
}

/** One utterance as the benchmark plays it: speech segments in the file, in samples at 48 kHz. */
export interface UtteranceInfo {
  name: string;
  /** relative to the repository */
  file: string;
  heard: string[];
  /** speech segments (first → last sample ≥ −40 dBFS, gaps ≥ 120 ms split them), s in the file */
  segments: [number, number][];
  /** the longest silence inside the utterance, ms */
  innerPauseMs: number;
  /** made for this benchmark (bench/fixtures), not one of ../shared/fixtures/audio */
  generated: boolean;
}

export interface UtteranceResult {
  name: string;
  vad: MouthVad;
  speculation: boolean;
  round: number;
  /** why the turn could not be measured */
  missing?: string;
  /** the detector that judged the utterance (speech-start) */
  detector?: string;
  /** last speech sample (from the file) → first reply sample rendered, audio clock, ms */
  mouthToEarMs?: number;
  /** the same from the page's own last loud sample (cross-check) */
  mouthToEarPageMs?: number;
  /** page's last loud sample − the file's, ms (the fake device and audio processing) */
  lastSpeechDriftMs?: number;
  /** last speech sample → `commit` sent (wall clock), ms */
  endOfTurnWaitMs?: number;
  /** last speech sample → the `pause` that started the confirmed speculative turn (wall clock), ms */
  lastSpeechToPauseMs?: number;
  /** `commit` sent → the reply's first audio frame at the page, ms */
  commitToFirstAudioMs?: number;
  /** first audio frame at the page → first sample rendered (jitter buffer, worklet), ms */
  firstAudioToRenderedMs?: number;
  relay?: {
    stt_ms?: number;
    llm_ttft_ms?: number;
    first_sentence_ms?: number;
    tts_ttfb_ms?: number;
    first_audio_ms?: number;
    held_ms?: number;
    speculative?: boolean;
  };
  /** the SDK's reply metrics */
  sdk?: { end_of_turn_silence_ms?: number; underruns?: number; jitter_buffer_ms?: number };
  /** `commit`s sent before the utterance's last speech sample */
  cutIns: number;
  pauses: number;
  resumes: number;
  /** the reply was cut short (barge-in) */
  interrupted: boolean;
  turnId?: number;
}

export interface MouthCase {
  vad: MouthVad;
  speculation: boolean;
  /** the relay offered speculation in `ready.features` (on-case) */
  offered: boolean;
  runs: number;
  utterances: UtteranceResult[];
  mouthToEar: Summary;
  mouthToEarP90: number;
  mouthToEarPage: Summary;
  endOfTurnWait: Summary;
  lastSpeechToPause: Summary;
  commitToFirstAudio: Summary;
  firstAudioToRendered: Summary;
  stt: Summary;
  llmTtft: Summary;
  /** first_sentence_ms − stt_ms − llm_ttft_ms: tokens until the first chunk */
  firstChunk: Summary;
  ttsTtfb: Summary;
  firstAudio: Summary;
  held: Summary;
  /** relay time after the commit: first_audio_ms − held_ms (speculative) or first_audio_ms */
  relayAfterCommit: Summary;
  replies: number;
  underruns: number;
  repliesWithUnderruns: number;
  jitterBuffer: Summary;
  cutIns: number;
  /** cut-ins per utterance name */
  cutInsBy: Record<string, number>;
  /** turns committed (every `commit` sent, cut-ins included) */
  turns: number;
  speculativeTurns: number;
  confirmed: number;
  discarded: number;
  discardedPer100Turns: number | undefined;
  pauses: number;
  resumes: number;
  /** pauses the relay did not act on (neither confirmed nor discarded: over the budget, too little audio, one already running) */
  ignoredPauses: number;
  missing: string[];
  clientErrors: Record<string, number>;
}

export interface MouthReport {
  chromium: string;
  reply: string;
  jitterMs: number;
  rounds: number;
  utterances: UtteranceInfo[];
  leadS: number;
  gapS: number;
  cases: MouthCase[];
  /** median on ÷ median off, per VAD */
  ratios: { vad: MouthVad; on: number; off: number; ratio: number }[];
  /** the scripted STT: |upload span − matched segment span|, ms (how well "what was heard" was recognised) */
  sttMatch: Summary;
  sttRequests: number;
  loadStart: string;
  loadEnd: string;
  wallS: number;
}

// ───────────────────────────── audio files ─────────────────────────────

function int16(pcm: Uint8Array): Int16Array {
  const copy = new Uint8Array(pcm.byteLength);
  copy.set(pcm);
  return new Int16Array(copy.buffer);
}

/** Speech segments of mono PCM: [first, last] loud sample index, split at gaps ≥ `gap` samples. */
export function speechSegments(samples: Int16Array, gap: number): [number, number][] {
  const segments: [number, number][] = [];
  let current: [number, number] | undefined;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i] as number;
    if (x < LEVEL && x > -LEVEL) continue;
    if (current && i - current[1] < gap) current[1] = i;
    else {
      current = [i, i];
      segments.push(current);
    }
  }
  return segments;
}

function loadUtterance(spec: UtteranceSpec): UtteranceInfo & { samples: Int16Array } {
  const { sampleRate, channels, pcm } = readWavPcm(spec.file);
  if (sampleRate !== FILE_RATE || channels !== 1)
    throw new Error(`${spec.file}: expected 48 kHz mono, got ${sampleRate} Hz × ${channels}`);
  const samples = int16(pcm);
  const segs = speechSegments(samples, SEGMENT_GAP_S * FILE_RATE);
  if (segs.length !== spec.heard.length)
    throw new Error(
      `${spec.file}: ${segs.length} speech segments, but ${spec.heard.length} transcripts are scripted`,
    );
  const segments = segs.map(([a, b]): [number, number] => [a / FILE_RATE, b / FILE_RATE]);
  let inner = 0;
  for (let k = 1; k < segments.length; k++)
    inner = Math.max(inner, (segments[k]![0] - segments[k - 1]![1]) * 1000);
  return {
    name: spec.name,
    file: spec.file,
    heard: spec.heard,
    segments,
    innerPauseMs: inner,
    generated: !spec.file.startsWith(FIXTURES),
    samples,
  };
}

interface PlaylistItem {
  info: UtteranceInfo;
  /** first and last speech sample in the playlist, s */
  onsetS: number;
  lastS: number;
}

function wavFile(samples: Int16Array, sampleRate: number): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** The fake microphone's file: `leadS` of silence, then each utterance (0.5 s before its speech) and `gapS` after its last speech. */
function buildPlaylist(
  utterances: (UtteranceInfo & { samples: Int16Array })[],
  leadS: number,
  gapS: number,
): { samples: Int16Array; items: PlaylistItem[]; durationS: number } {
  const parts: Int16Array[] = [new Int16Array(Math.round(leadS * FILE_RATE))];
  const items: PlaylistItem[] = [];
  let at = parts[0]!.length;
  for (const u of utterances) {
    const first = Math.round(u.segments[0]![0] * FILE_RATE);
    const last = Math.round(u.segments.at(-1)![1] * FILE_RATE);
    const from = Math.max(0, first - Math.round(0.5 * FILE_RATE));
    const to = Math.min(u.samples.length, last + Math.round(0.25 * FILE_RATE));
    const piece = new Int16Array(last - from + Math.round(gapS * FILE_RATE));
    piece.set(u.samples.subarray(from, to));
    parts.push(piece);
    items.push({
      info: u,
      onsetS: (at + first - from) / FILE_RATE,
      lastS: (at + last - from) / FILE_RATE,
    });
    at += piece.length;
  }
  const samples = new Int16Array(at);
  let offset = 0;
  for (const p of parts) {
    samples.set(p, offset);
    offset += p.length;
  }
  return { samples, items, durationS: at / FILE_RATE };
}

// ───────────────────────────── network jitter ─────────────────────────────

/**
 * An HTTP proxy in front of the fake upstream that delays every chunk of a TTS response by a
 * uniform 0–2×`jitterMs` (seeded), keeping their order; other requests pass through. A client that
 * goes away aborts the upstream request.
 */
async function startJitterProxy(
  target: string,
  jitterMs: number,
  seed: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const random = mulberry32(seed);
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (up: IncomingMessage) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (!(req.url ?? '').endsWith('/audio/speech')) {
          up.pipe(res);
          return;
        }
        let due = 0;
        const later = (at: number, fn: () => void) =>
          setTimeout(fn, Math.max(0, at - performance.now()));
        up.on('data', (chunk: Buffer) => {
          due = Math.max(due, performance.now() + random() * 2 * jitterMs);
          later(due, () => res.write(chunk));
        });
        up.on('end', () => later(due, () => res.end()));
        up.on('error', () => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) forward.destroy();
    });
    req.pipe(forward);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

// ───────────────────────────── the page ─────────────────────────────

type Run = [number, number, number, number];
interface PageTimeline {
  sampleRate: number;
  clock: string | undefined;
  runs: Run[];
  sends: { t: number; type: string }[];
  receives: {
    t: number;
    type: string;
    turnId?: number;
    text?: string;
    metrics?: Record<string, number | boolean>;
    features?: string[];
    code?: string;
  }[];
  firstAudio: { t: number; turnId: number }[];
  playback: {
    type: string;
    turnId: number;
    playedMs: number;
    underruns?: number;
    targetMs?: number;
    frame?: number;
    t?: number;
  }[];
  metrics: ({ t: number; turnId: number } & Record<string, number | boolean | undefined>)[];
  vad: { type: string; frame?: number; t?: number; detector: string }[];
  hooked: boolean;
  errors: { t: number; code: string; message: string }[];
}

const num = (x: unknown): number | undefined =>
  typeof x === 'number' && Number.isFinite(x) ? x : undefined;

/** The utterances of one run, from the page's timeline. */
export function analyzeRun(
  tl: PageTimeline,
  items: PlaylistItem[],
  meta: { vad: MouthVad; speculation: boolean; round: number },
): UtteranceResult[] {
  const sr = tl.sampleRate;
  const ratio = sr / FILE_RATE;
  const runs = tl.runs;
  const commits = tl.sends.filter((s) => s.type === 'commit');
  const transcriptTurns: number[] = [];
  for (const r of tl.receives)
    if (r.type === 'transcript' && r.turnId !== undefined && !transcriptTurns.includes(r.turnId))
      transcriptTurns.push(r.turnId);
  const results: UtteranceResult[] = [];
  let offset: number | undefined = runs[0]
    ? runs[0][0] - items[0]!.onsetS * FILE_RATE * ratio
    : undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const base: UtteranceResult = {
      name: item.info.name,
      ...meta,
      cutIns: 0,
      pauses: 0,
      resumes: 0,
      interrupted: false,
    };
    if (offset === undefined) {
      results.push({ ...base, missing: 'no speech reached the page' });
      continue;
    }
    const predicted = offset + item.onsetS * FILE_RATE * ratio;
    const anchor = runs
      .filter((r) => Math.abs(r[0] - predicted) < 0.4 * sr)
      .sort((a, b) => Math.abs(a[0] - predicted) - Math.abs(b[0] - predicted))[0];
    if (!anchor) {
      results.push({ ...base, missing: 'its onset was not found in the captured audio' });
      continue;
    }
    offset = anchor[0] - item.onsetS * FILE_RATE * ratio;
    const spanFrames = (item.lastS - item.onsetS) * FILE_RATE * ratio;
    const lastFrame = anchor[0] + spanFrames;
    const lastT = anchor[1] + (spanFrames / sr) * 1000;
    const pageLast = runs
      .filter((r) => r[0] >= anchor[0] && r[0] <= lastFrame + 0.3 * sr)
      .reduce((m, r) => Math.max(m, r[2]), anchor[2]);
    const next = items[i + 1];
    const endT = next ? anchor[1] + (next.onsetS - item.onsetS) * 1000 - 200 : Infinity;
    const inWindow = (t: number) => t >= anchor[1] && t < endT;
    const mine = tl.sends.filter((s) => inWindow(s.t));
    const speechStart = tl.vad.find(
      (v) =>
        v.type === 'speech-start' && v.t !== undefined && v.t >= anchor[1] - 500 && v.t < lastT,
    );
    const r: UtteranceResult = {
      ...base,
      pauses: mine.filter((s) => s.type === 'pause').length,
      resumes: mine.filter((s) => s.type === 'resume').length,
      cutIns: mine.filter((s) => s.type === 'commit' && s.t < lastT).length,
      lastSpeechDriftMs: ((pageLast - lastFrame) / sr) * 1000,
      ...(speechStart ? { detector: speechStart.detector } : {}),
    };
    const final = commits.find((c) => inWindow(c.t) && c.t >= lastT);
    if (!final) {
      results.push({ ...r, missing: 'no commit after its last speech' });
      continue;
    }
    r.endOfTurnWaitMs = final.t - lastT;
    const turnId = transcriptTurns[commits.indexOf(final)];
    if (turnId === undefined) {
      results.push({ ...r, missing: 'no transcript for its commit' });
      continue;
    }
    r.turnId = turnId;
    const played = tl.playback.find(
      (p) => p.turnId === turnId && p.playedMs > 0 && p.frame !== undefined && p.t !== undefined,
    );
    const ended = tl.playback.find(
      (p) => p.turnId === turnId && (p.type === 'stopped' || p.type === 'drained'),
    );
    r.interrupted = ended?.type === 'stopped';
    const pause = mine.filter((s) => s.type === 'pause' && s.t <= final.t).at(-1);
    if (pause && pause.t >= lastT) r.lastSpeechToPauseMs = pause.t - lastT;
    const metrics = tl.metrics.find((x) => x.turnId === turnId);
    if (metrics) {
      r.relay = {
        stt_ms: num(metrics['stt_ms']),
        llm_ttft_ms: num(metrics['llm_ttft_ms']),
        first_sentence_ms: num(metrics['first_sentence_ms']),
        tts_ttfb_ms: num(metrics['tts_ttfb_ms']),
        first_audio_ms: num(metrics['first_audio_ms']),
        held_ms: num(metrics['held_ms']),
        speculative: metrics['speculative'] === true,
      };
      r.sdk = {
        end_of_turn_silence_ms: num(metrics['end_of_turn_silence_ms']),
        underruns: num(metrics['underruns']),
        jitter_buffer_ms: num(metrics['jitter_buffer_ms']),
      };
    }
    if (!played || played.frame === undefined || played.t === undefined) {
      results.push({ ...r, missing: 'no reply sample was rendered' });
      continue;
    }
    const playedFrames = (played.playedMs / 1000) * sr;
    const firstFrame = played.frame + 128 - playedFrames;
    const firstT = played.t + (128 / sr) * 1000 - played.playedMs;
    r.mouthToEarMs = ((firstFrame - lastFrame) / sr) * 1000;
    r.mouthToEarPageMs = ((firstFrame - pageLast) / sr) * 1000;
    const audio = tl.firstAudio.find((a) => a.turnId === turnId);
    if (audio) {
      r.commitToFirstAudioMs = audio.t - final.t;
      r.firstAudioToRenderedMs = firstT - audio.t;
    }
    results.push(r);
  }
  return results;
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `voicebot_speculative_turns_total` by outcome. */
async function speculativeCounts(
  h: RelayHarness,
): Promise<{ confirmed: number; discarded: number }> {
  const text = await h.relay.metrics.metrics();
  const count = (outcome: string) =>
    Number(
      new RegExp(`^voicebot_speculative_turns_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(
        text,
      )?.[1] ?? 0,
    );
  return { confirmed: count('confirmed'), discarded: count('discarded') };
}

function summarizeCase(
  vad: MouthVad,
  speculation: boolean,
  results: UtteranceResult[],
  counters: {
    confirmed: number;
    discarded: number;
    commits: number;
    runs: number;
    offered: boolean;
  },
  clientErrors: Record<string, number>,
): MouthCase {
  const measured = results.filter((r) => r.mouthToEarMs !== undefined);
  const pick = (f: (r: UtteranceResult) => number | undefined) =>
    summarize(results.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
  const m2e = measured.map((r) => r.mouthToEarMs as number).sort((a, b) => a - b);
  const withSdk = results.filter((r) => r.sdk?.underruns !== undefined);
  const cutInsBy: Record<string, number> = {};
  for (const r of results) if (r.cutIns > 0) cutInsBy[r.name] = (cutInsBy[r.name] ?? 0) + r.cutIns;
  const cutIns = results.reduce((n, r) => n + r.cutIns, 0);
  return {
    vad,
    speculation,
    offered: counters.offered,
    runs: counters.runs,
    utterances: results,
    mouthToEar: summarize(m2e),
    mouthToEarP90: percentile(m2e, 90),
    mouthToEarPage: pick((r) => r.mouthToEarPageMs),
    endOfTurnWait: pick((r) => r.endOfTurnWaitMs),
    lastSpeechToPause: pick((r) => r.lastSpeechToPauseMs),
    commitToFirstAudio: pick((r) => r.commitToFirstAudioMs),
    firstAudioToRendered: pick((r) => r.firstAudioToRenderedMs),
    stt: pick((r) => r.relay?.stt_ms),
    llmTtft: pick((r) => r.relay?.llm_ttft_ms),
    firstChunk: pick((r) =>
      r.relay?.first_sentence_ms !== undefined &&
      r.relay.stt_ms !== undefined &&
      r.relay.llm_ttft_ms !== undefined
        ? r.relay.first_sentence_ms - r.relay.stt_ms - r.relay.llm_ttft_ms
        : undefined,
    ),
    ttsTtfb: pick((r) => r.relay?.tts_ttfb_ms),
    firstAudio: pick((r) => r.relay?.first_audio_ms),
    held: pick((r) => r.relay?.held_ms),
    relayAfterCommit: pick((r) =>
      r.relay?.first_audio_ms !== undefined
        ? r.relay.first_audio_ms - (r.relay.held_ms ?? 0)
        : undefined,
    ),
    replies: withSdk.length,
    underruns: withSdk.reduce((n, r) => n + (r.sdk?.underruns ?? 0), 0),
    repliesWithUnderruns: withSdk.filter((r) => (r.sdk?.underruns ?? 0) > 0).length,
    jitterBuffer: pick((r) => r.sdk?.jitter_buffer_ms),
    cutIns,
    cutInsBy,
    turns: counters.commits,
    speculativeTurns: results.filter((r) => r.relay?.speculative === true).length,
    confirmed: counters.confirmed,
    discarded: counters.discarded,
    discardedPer100Turns:
      counters.commits > 0 ? (counters.discarded / counters.commits) * 100 : undefined,
    pauses: results.reduce((n, r) => n + r.pauses, 0),
    resumes: results.reduce((n, r) => n + r.resumes, 0),
    ignoredPauses: Math.max(
      0,
      results.reduce((n, r) => n + r.pauses, 0) - counters.confirmed - counters.discarded,
    ),
    missing: results
      .filter((r) => r.missing)
      .map((r) => `${r.name} (round ${r.round + 1}): ${r.missing}`),
    clientErrors,
  };
}

// ───────────────────────────── the benchmark ─────────────────────────────

export async function measureMouthToEar(o: MouthOptions): Promise<MouthReport> {
  const log = o.log ?? (() => undefined);
  const started = performance.now();
  const loadStart = load();
  const leadS = o.leadS ?? 3;
  const gapS = o.gapS ?? 4.5;
  const specs = o.utterances
    ? UTTERANCES.filter((u) => o.utterances?.includes(u.name))
    : UTTERANCES;
  const utterances = specs.map(loadUtterance);
  const playlist = buildPlaylist(utterances, leadS, gapS);
  const dir = await mkdtemp(join(tmpdir(), 'voicebot-mouth-'));
  const wav = join(dir, 'playlist.wav');
  await writeFile(wav, wavFile(playlist.samples, FILE_RATE));

  // The scripted STT: the utterance the playlist is at, and how much of it the upload holds.
  let micStartedAt = Number.POSITIVE_INFINITY;
  const sttErrors: number[] = [];
  const transcribe = (samples: Int16Array, rate: number, channels: number): string => {
    const position = (Date.now() - micStartedAt) / 1000;
    const item = playlist.items.filter((it) => it.onsetS <= position + 0.5).at(-1);
    if (!item) return '';
    const mono = channels === 1 ? samples : samples.filter((_, i) => i % channels === 0);
    const segs = speechSegments(mono, SEGMENT_GAP_S * rate);
    if (segs.length === 0) return '';
    const span = (segs.at(-1)![1] - segs[0]![0]) / rate;
    // segments j..k: after a commit inside the utterance, the next upload starts at segment j
    const segments = item.info.segments;
    let best = { j: 0, k: 0, error: Infinity };
    for (let j = 0; j < segments.length; j++)
      for (let k = j; k < segments.length; k++) {
        const error = Math.abs(segments[k]![1] - segments[j]![0] - span);
        if (error < best.error) best = { j, k, error };
      }
    sttErrors.push(best.error * 1000);
    const heard = item.info.heard[best.k] ?? '';
    return best.j === 0 ? heard : heard.slice((item.info.heard[best.j - 1] ?? '').length).trim();
  };
  const upstream = createFakeUpstream({
    latency: LATENCY,
    transcribe: (req) => transcribe(req.wav.samples, req.wav.sampleRate, req.wav.channels),
    chat: () => ({ content: MOUTH_REPLY }),
  });
  const served = await upstream.listen(0);
  const proxy = await startJitterProxy(served.url, TTS_JITTER_MS, 22);
  const stage = { apiKey: 'sk-bench', timeoutMs: 10_000, maxRetries: 0 };
  let h: RelayHarness | undefined;
  const byCase = new Map<
    string,
    {
      results: UtteranceResult[];
      confirmed: number;
      discarded: number;
      commits: number;
      runs: number;
      offered: boolean;
      errors: Record<string, number>;
    }
  >();
  let chromium = '';
  try {
    h = await startRelay({
      relay: {
        providers: {
          stt: { ...stage, baseURL: served.url, model: 'whisper-1' },
          llm: { ...stage, baseURL: served.url, model: 'gpt-4o-mini' },
          tts: { ...stage, baseURL: proxy.url, model: 'gpt-4o-mini-tts', voice: 'alloy' },
        },
        staticDirs: [
          { urlPath: '/sdk/', dir: join(REPO_ROOT, 'packages/sdk/dist/browser') },
          { urlPath: '/', dir: join(REPO_ROOT, 'bench/pages') },
        ],
      },
    });
    const relay = h;
    const key = (await relay.keys.create({ origins: [new URL(relay.url).origin] })).secret;
    for (let round = 0; round < o.rounds; round++) {
      for (const vad of o.vads) {
        const order = round % 2 === 0 ? [true, false] : [false, true];
        for (const speculation of order) {
          const name = `${vad}/${speculation ? 'on' : 'off'}`;
          const before = await speculativeCounts(relay);
          const browser = await launchChromium({ fakeMicWav: wav });
          let tl: PageTimeline;
          try {
            chromium = await browser.version();
            const page: Page = await browser.newPage();
            page.on('pageerror', (error) => console.error('[browser] page error:', error));
            await page.goto(`${relay.url}/mouth.html`);
            micStartedAt = Date.now();
            await page.evaluate(
              async (relayUrl, clientKey, energy, speculation) => {
                const sdk = await import('/sdk/voice-bot-sdk.js' as string);
                const w = window as unknown as {
                  __client: unknown;
                  __mouthAttach(client: unknown): void;
                };
                const client = new sdk.VoiceBotClient({
                  relayUrl,
                  clientKey,
                  assetBaseUrl: '/sdk/',
                  persistence: false,
                  ...(energy ? { vad: { model: 'energy' } } : {}),
                  ...(speculation ? {} : { speculation: false }),
                });
                w.__mouthAttach(client);
                w.__client = client;
                await client.start();
              },
              relay.url,
              key,
              vad === 'energy',
              speculation,
            );
            await sleep(Math.max(0, micStartedAt + playlist.durationS * 1000 - Date.now()));
            // the last reply may still be playing if the microphone started late
            await page
              .waitForFunction(
                () => {
                  const m = (window as unknown as { __mouth: PageTimeline }).__mouth;
                  const turns = new Set(
                    m.receives.filter((r) => r.type === 'transcript').map((r) => r.turnId),
                  );
                  return [...turns].every((id) =>
                    m.playback.some(
                      (p) => p.turnId === id && (p.type === 'drained' || p.type === 'stopped'),
                    ),
                  );
                },
                { timeout: 6000, polling: 250 },
              )
              .catch(() => undefined);
            tl = (await page.evaluate(
              () => (window as unknown as { __mouth: unknown }).__mouth,
            )) as PageTimeline;
            await page
              .evaluate(() =>
                (window as unknown as { __client: { stop(): Promise<void> } }).__client.stop(),
              )
              .catch(() => undefined);
          } finally {
            await browser.close();
          }
          const after = await speculativeCounts(relay);
          const results = analyzeRun(tl, playlist.items, { vad, speculation, round });
          const entry = byCase.get(name) ?? {
            results: [],
            confirmed: 0,
            discarded: 0,
            commits: 0,
            runs: 0,
            offered: false,
            errors: {},
          };
          entry.results.push(...results);
          entry.confirmed += after.confirmed - before.confirmed;
          entry.discarded += after.discarded - before.discarded;
          entry.commits += tl.sends.filter((x) => x.type === 'commit').length;
          entry.runs++;
          entry.offered ||= tl.receives.some(
            (r) => r.type === 'ready' && (r.features ?? []).includes('speculation'),
          );
          for (const e of tl.errors) entry.errors[e.code] = (entry.errors[e.code] ?? 0) + 1;
          byCase.set(name, entry);
          const f = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(0));
          log(
            `  ${name} round ${round + 1}: mouth to ear ${results.map((r) => `${r.name} ${f(r.mouthToEarMs)}${r.cutIns ? ` (${r.cutIns} cut-in)` : ''}`).join(', ')} ms; ` +
              `speculative confirmed/discarded ${after.confirmed - before.confirmed}/${after.discarded - before.discarded}` +
              (tl.errors.length
                ? `; client errors ${tl.errors.map((e) => e.code).join(', ')}`
                : ''),
          );
          for (const r of results) if (r.missing) log(`    ${r.name}: ${r.missing}`);
        }
      }
    }
  } finally {
    await h?.close();
    await proxy.close();
    await served.close();
    await rm(dir, { recursive: true, force: true });
  }
  const cases: MouthCase[] = [];
  for (const vad of o.vads)
    for (const speculation of [true, false]) {
      const entry = byCase.get(`${vad}/${speculation ? 'on' : 'off'}`);
      if (entry) cases.push(summarizeCase(vad, speculation, entry.results, entry, entry.errors));
    }
  const ratios = o.vads.flatMap((vad) => {
    const on = cases.find((c) => c.vad === vad && c.speculation)?.mouthToEar;
    const off = cases.find((c) => c.vad === vad && !c.speculation)?.mouthToEar;
    return on?.n && off?.n ? [{ vad, on: on.p50, off: off.p50, ratio: on.p50 / off.p50 }] : [];
  });
  return {
    chromium,
    reply: MOUTH_REPLY,
    jitterMs: TTS_JITTER_MS,
    rounds: o.rounds,
    utterances: utterances.map((u) => ({
      name: u.name,
      file: relative(REPO_ROOT, u.file),
      heard: u.heard,
      segments: u.segments,
      innerPauseMs: u.innerPauseMs,
      generated: u.generated,
    })),
    leadS,
    gapS,
    cases,
    ratios,
    sttMatch: summarize(sttErrors),
    sttRequests: sttErrors.length,
    loadStart,
    loadEnd: load(),
    wallS: (performance.now() - started) / 1000,
  };
}
