/**
 * The mouth-to-ear section of docs/benchmarks.md (bench/mouth-to-ear.ts) and its headline rows.
 */
import type { Summary } from './common.js';
import { LATENCY } from './common.js';
import type { BenchResults } from './main.js';
import type { MouthCase, MouthReport, UtteranceResult } from './mouth-to-ear.js';

/** Issue #22's goal for the median, Silero VAD, speculation on, scripted provider. */
export const MOUTH_GOAL_MS = 1150;

const f = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
const p50 = (s: Summary | undefined) => (s && s.n > 0 ? f(s.p50) : '–');
const s2 = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`);
const label = (c: MouthCase) =>
  `${c.vad === 'silero' ? 'Silero' : 'energy'}, ${c.speculation ? 'speculation on' : '`speculation: false`'}`;

function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function medianOf(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 2) - 1];
}

/** Cut-ins on the shared fixtures and on the generated utterances, over every case. */
function cutIns(m: MouthReport, c: MouthCase): { fixtures: number; generated: number } {
  const generated = new Set(m.utterances.filter((u) => u.generated).map((u) => u.name));
  let fixtures = 0;
  let gen = 0;
  for (const u of c.utterances)
    if (generated.has(u.name)) gen += u.cutIns;
    else fixtures += u.cutIns;
  return { fixtures, generated: gen };
}

export function headlineMouth(r: BenchResults): (string | number)[][] {
  const m = r.mouth;
  if (!m) return [];
  const main = m.cases.find((c) => c.vad === 'silero' && c.speculation) ?? m.cases[0];
  if (!main || main.mouthToEar.n === 0) return [];
  const off = m.cases.find((c) => c.vad === main.vad && !c.speculation);
  const ratio = m.ratios.find((x) => x.vad === main.vad);
  const onCuts = cutIns(m, main);
  const underruns = m.cases.reduce((n, c) => n + c.underruns, 0);
  const replies = m.cases.reduce((n, c) => n + c.replies, 0);
  const met = (pass: boolean) => (pass ? '✅ met' : '❌ not met');
  return [
    [
      `#22 mouth to ear: last speech sample → first reply sample rendered, median (Chromium, ${label(main)}, scripted provider)`,
      `≤ ${s2(MOUTH_GOAL_MS)} (was ≈ 1.62 s)`,
      `${s2(main.mouthToEar.p50)}, p90 ${s2(main.mouthToEarP90)} (n=${main.mouthToEar.n}); \`speculation: false\` ${s2(off?.mouthToEar.p50)}${ratio ? `, on ÷ off ${ratio.ratio.toFixed(2)}` : ''}`,
      met(main.mouthToEar.p50 <= MOUTH_GOAL_MS),
    ],
    [
      '#22 false cut-ins (a `commit` inside an utterance), shared fixtures, speculation on',
      '0',
      `${onCuts.fixtures}; generated utterances with a 650 / 750 ms pause: ${onCuts.generated}`,
      met(onCuts.fixtures === 0),
    ],
    [
      '#22 playback underruns per reply (jitter buffer, ±20 ms TTS network jitter), all cases',
      '0',
      `${replies > 0 ? (underruns / replies).toFixed(2) : '–'} (${underruns} in ${replies} replies)`,
      replies > 0 ? met(underruns === 0) : '–',
    ],
    [
      '#22 discarded speculative turns per 100 turns (speculation on)',
      'reported',
      `${f(main.discardedPer100Turns)} (${main.discarded} discarded, ${main.confirmed} confirmed, ${main.turns} turns)`,
      '–',
    ],
  ];
}

export function renderMouth(r: BenchResults, measuredBy: string | undefined): string[] {
  const m = r.mouth;
  if (!m) return [];
  const out: string[] = [];
  out.push('\n## 11. Mouth to ear (issue #22)\n');
  if (measuredBy) out.push(measuredBy, '');
  out.push(
    `Headless Chromium ${m.chromium} with the fake microphone playing a playlist of utterances (${m.leadS} s of silence first, then each utterance and ${m.gapS} s of silence after it), the SDK from the relay's \`/sdk/\`, the real relay in the benchmark process and the fake provider scripted at STT ${LATENCY.sttMs} ms, first token ${LATENCY.llmTtftMs} ms then ${LATENCY.tokensPerSecond} tokens/s, TTS first byte ${LATENCY.ttsTtfbMs} ms with audio paced at real time; a proxy in front of the TTS endpoint delays each of its network chunks by 0–${2 * m.jitterMs} ms (±${m.jitterMs} ms, order kept). ` +
      `Reply: "${m.reply}" (its first chunk is the clause before the comma). ` +
      `Cases alternate within each round (${m.rounds} round${m.rounds === 1 ? '' : 's'}): speculative turns on (the SDK's and relay's defaults) and \`speculation: false\` (the turn ends after \`vad.redemptionMs\`, 700 ms of silence); a fresh browser per case and round. Times in ms unless marked.`,
  );
  out.push('');
  out.push(
    "**How it is timed.** Both ends are on the page's audio clock (the SDK's capture and playback worklets share one AudioContext; a probe worklet stamps their messages with `currentFrame`). " +
      "*Last speech sample*: the last sample ≥ −40 dBFS of the utterance in the WAV, placed on the audio clock by the utterance's first sample ≥ −40 dBFS as it reached the capture worklet (±1.3 ms: the render quantum a capture frame is posted in). " +
      "*First reply sample rendered*: the playback worklet's first `played` report of the turn, minus what it says it has played (±1.5 ms: the resampler's look-ahead). " +
      'Not included, the same in every case: the microphone before the audio graph and the `<audio>` element and sound card after the worklet. ' +
      `Cross-check: the page's own last loud sample came ${f(summaryOf(m, (u) => u.lastSpeechDriftMs)?.p50, 1)} ms (median; max ${f(summaryOf(m, (u) => u.lastSpeechDriftMs)?.max, 1)}) after the file's (Chromium's audio processing and resampling smear the tail). ` +
      `The stages come from the relay's \`done.metrics\`, the SDK's reply metrics and the page's WebSocket (\`pause\`, \`commit\` sent; first audio frame of the turn received). The scripted STT answers what was heard so far: the upload's first → last loud sample matched to the utterance's speech segments (median error ${f(m.sttMatch.p50, 0)} ms over ${m.sttRequests} uploads).`,
  );
  out.push('');
  out.push(
    table(
      [
        'utterance',
        'said',
        'inner pause',
        'transcript at the pause (what the end-of-turn policy reads)',
      ],
      m.utterances.map((u) => [
        `${u.name}${u.generated ? ' (generated, bench/fixtures)' : ''}`,
        `"${u.heard.at(-1)}"`,
        u.segments.length > 1 ? `${f(u.innerPauseMs)} ms` : '–',
        u.segments.length > 1
          ? u.heard
              .slice(0, -1)
              .map((t) => `"${t}"`)
              .join(', ')
          : '–',
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      [
        'case',
        'n',
        'mouth to ear p50 / p90 (min – max)',
        'end-of-turn wait (last speech → commit)',
        'last speech → pause',
        'commit → first audio at the page',
        'first audio → first sample rendered',
        'underruns (replies with any)',
        'false cut-ins',
        'speculative: confirmed / discarded (per 100 turns) / pauses ignored',
      ],
      m.cases.map((c) => [
        label(c),
        c.mouthToEar.n,
        c.mouthToEar.n
          ? `**${f(c.mouthToEar.p50)}** / ${f(c.mouthToEarP90)} (${f(c.mouthToEar.min)} – ${f(c.mouthToEar.max)})`
          : '–',
        p50(c.endOfTurnWait),
        p50(c.lastSpeechToPause),
        p50(c.commitToFirstAudio),
        p50(c.firstAudioToRendered),
        `${c.underruns} (${c.repliesWithUnderruns} of ${c.replies})`,
        c.cutIns > 0
          ? `${c.cutIns}: ${Object.entries(c.cutInsBy)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`
          : '0',
        c.speculation
          ? `${c.confirmed} / ${c.discarded} (${f(c.discardedPer100Turns)}) / ${c.ignoredPauses}`
          : '–',
      ]),
    ),
  );
  out.push('');
  out.push(
    "Stages (medians): the relay times its turn from `commit`, or from the `pause` for a speculative turn (then `held` is pause → commit and the relay's work after the commit is first audio − held). " +
      'First chunk = first sentence − STT − first token: the tokens until the chunker can cut the first clause.',
  );
  out.push('');
  out.push(
    table(
      [
        'case',
        'end-of-turn wait',
        'SDK `end_of_turn_silence_ms`',
        'STT',
        'first token',
        'first chunk',
        'TTS first byte',
        'relay t₀ → first audio sent',
        'held',
        'relay after commit',
        'wire (commit → first audio at the page − relay after commit)',
        'playback start (jitter buffer)',
        'jitter buffer target after the reply',
      ],
      m.cases.map((c) => {
        const wire = medianOf(
          c.utterances
            .filter(
              (u) => u.commitToFirstAudioMs !== undefined && u.relay?.first_audio_ms !== undefined,
            )
            .map(
              (u) =>
                (u.commitToFirstAudioMs as number) -
                Math.max(0, (u.relay?.first_audio_ms as number) - (u.relay?.held_ms ?? 0)),
            ),
        );
        return [
          label(c),
          p50(c.endOfTurnWait),
          f(medianOf(defined(c.utterances.map((u) => u.sdk?.end_of_turn_silence_ms)))),
          p50(c.stt),
          p50(c.llmTtft),
          p50(c.firstChunk),
          p50(c.ttsTtfb),
          p50(c.firstAudio),
          p50(c.held),
          p50(c.relayAfterCommit),
          f(wire),
          p50(c.firstAudioToRendered),
          p50(c.jitterBuffer),
        ];
      }),
    ),
  );
  for (const c of m.cases.filter((x) => x.speculation && x.lastSpeechToPause.n > 0)) {
    const scripted =
      LATENCY.sttMs +
      LATENCY.llmTtftMs +
      (c.firstChunk.n ? c.firstChunk.p50 : 0) +
      LATENCY.ttsTtfbMs;
    out.push('');
    out.push(
      `Critical path, ${label(c)} (medians): last speech → \`pause\` ${p50(c.lastSpeechToPause)} + the relay from the pause to its first audio frame ${p50(c.firstAudio)} ` +
        `(the scripted provider's share: STT ${LATENCY.sttMs} + first token ${LATENCY.llmTtftMs} + tokens until the first clause ${p50(c.firstChunk)} + TTS first byte ${LATENCY.ttsTtfbMs} = ${f(scripted)}; the rest is the TTS jitter and the relay) ` +
        `+ the page's jitter buffer ${p50(c.firstAudioToRendered)} ≈ ${f(c.lastSpeechToPause.p50 + c.firstAudio.p50 + c.firstAudioToRendered.p50)} ms. ` +
        `The \`commit\` (${p50(c.endOfTurnWait)} ms after the last speech) is not on it: the held turn still had ${p50(c.relayAfterCommit)} ms to go when it came.`,
    );
  }
  out.push('');
  out.push(
    "**What the page and the relay add to it** (the SDK's defaults). Last speech → `pause`: the Silero frame the last word ends in (32 ms frames: half of one on average), one more frame the model still calls speech, then `endOfTurn.pauseMs` 128 ms (four frames) of silence. " +
      'The first clause goes to TTS as soon as its comma arrives (the token after it, with the space, is not waited for). ' +
      "The jitter buffer starts a reply 50 ms after its first audio: the proxy delays chunks by up to 40 ms, so 10 ms are left for the machine's own delays; on a loaded machine a reply can run dry, after which the target grows ×1.5. " +
      'A `tentative_transcript` that arrives when the silence is already long enough commits on the next silent frame, and carries the `pause_id` of the `pause` it answers.',
  );
  out.push('');
  const names = m.utterances.map((u) => u.name);
  out.push('Per utterance: mouth to ear median (false cut-ins over all rounds).');
  out.push('');
  out.push(
    table(
      ['case', ...names],
      m.cases.map((c) => [
        label(c),
        ...names.map((name) => {
          const mine = c.utterances.filter((u) => u.name === name);
          const cuts = mine.reduce((n, u) => n + u.cutIns, 0);
          const med = medianOf(defined(mine.map((u) => u.mouthToEarMs)));
          return `${f(med)}${cuts ? ` (${cuts} cut-in${cuts === 1 ? '' : 's'})` : ''}`;
        }),
      ]),
    ),
  );
  if (m.ratios.length > 0) {
    out.push('');
    out.push(
      `On ÷ off (medians): ${m.ratios.map((x) => `${x.vad} ${x.ratio.toFixed(2)} (${f(x.on)} vs ${f(x.off)} ms)`).join('; ')}.`,
    );
  }
  const missing = m.cases.flatMap((c) => c.missing.map((x) => `${label(c)}: ${x}`));
  if (missing.length > 0) out.push('', `Not measured: ${missing.join('; ')}.`);
  const errors = m.cases.flatMap((c) =>
    Object.entries(c.clientErrors).map(([code, n]) => `${label(c)}: ${code} × ${n}`),
  );
  if (errors.length > 0) out.push('', `Client errors: ${errors.join('; ')}.`);
  out.push(
    '',
    `Load average at start / end ${m.loadStart} / ${m.loadEnd}; the part took ${f(m.wallS)} s.`,
  );
  return out;
}

function defined(xs: (number | undefined)[]): number[] {
  return xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
}

function summaryOf(
  m: MouthReport,
  pick: (u: UtteranceResult) => number | undefined,
): { p50: number; max: number } | undefined {
  const values = defined(m.cases.flatMap((c) => c.utterances.map(pick)));
  if (values.length === 0) return undefined;
  return { p50: medianOf(values) as number, max: Math.max(...values) };
}
