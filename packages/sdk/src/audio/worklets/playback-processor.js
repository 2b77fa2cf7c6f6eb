// @ts-check
/// <reference lib="es2022" />
/**
 * voice-bot streamed-speech playback AudioWorklet — registered as `'voicebot-playback'`.
 *
 * Served as a file (strict-CSP friendly). Here it imports `./resampler-core.js`; the build inlines
 * that import, so the shipped `dist/audio/worklets/playback-processor.js` is self-contained.
 *
 * The server streams Int16 LE mono PCM at 24 kHz. Pushed chunks go into a preallocated ring buffer
 * (Float32 at the input rate, `capacitySeconds` long, default 60 s = 5.8 MB). Each render quantum
 * pulls just enough input through a Kaiser-windowed-sinc resampler (24000 → `sampleRate`, the same
 * algorithm as capture) to fill the quantum, so the CPU cost is spread evenly and playback starts in
 * the first quantum after data arrives (the filter adds ≈ 1.4 ms look-ahead latency). When the buffer
 * runs dry the filter tail is flushed and the node renders silence until more data arrives.
 *
 * Node options (`new AudioWorkletNode(ctx, 'voicebot-playback', { numberOfInputs: 0, outputChannelCount: [1], processorOptions })`):
 *   `{ inputRate?: number = 24000, capacitySeconds?: number = 60, progressMs?: number = 100,
 *      jitter?: { targetMs?: number = 50, minMs?: number = 40, maxMs?: number = 400 } }`
 *
 * With `jitter`, an adaptive jitter buffer for streams that arrive at about real time: a turn starts
 * playing once `targetMs` have passed since its first audio arrived, or sooner when the stream is
 * ahead: the target plus the turn's largest push is buffered (a chunk that late would still come in
 * time: held audio released at once, a provider faster than real time), or `maxMs` (at least twice
 * the target) is, or the turn is complete. The end of a turn is known from an `end` message
 * (or the next turn's first push): running dry before it is an underrun, counted per turn; playback
 * waits for the target again, and the target grows ×1.5 (up to `maxMs`). While the buffered audio
 * stays above the target for a second of playback, the target shrinks by 10 ms (down to `minMs`).
 * Without `jitter` (the default) every push plays at once and running dry drains the turn.
 *
 * Messages accepted (`node.port.postMessage`):
 *   `{ type: 'push', pcm: ArrayBuffer, turnId: number }`  Int16 LE mono at `inputRate` (transfer it).
 *        When `turnId` differs from the previous push, the per-turn counters restart once playback
 *        reaches the first sample of the new turn.
 *   `{ type: 'stop' }`  the very next render quantum is silent; buffered audio and filter state are
 *        dropped; replies 'stopped'. Counters restart with the next push (even for the same turnId).
 *   `{ type: 'gain', value: number }`  linear output gain, ramped over one quantum (default 1).
 *   `{ type: 'end', turnId: number }`  (with `jitter`) the turn's audio is complete: when the buffer
 *        runs dry it drains, rather than waiting for more.
 *
 * Messages posted (`node.port.onmessage`); all "played" figures count samples actually rendered to
 * the output (not queued), converted to the input rate:
 *   `{ type: 'played', turnId, playedSamples, playedMs, level }` every `progressMs` while playing.
 *        `level` = RMS of the output since the previous report, linear 0..1.
 *   `{ type: 'drained', turnId, playedSamples, playedMs, underruns, targetMs }` when the buffer ran
 *        empty after playing something (the filter tail has been rendered too); with `jitter`, only
 *        once the turn has ended. `underruns`: times the turn ran dry before its end; `targetMs`: the
 *        jitter buffer's target now (0 without `jitter`).
 *   `{ type: 'stopped', turnId, playedSamples, playedMs, silentFromFrame, underruns, targetMs }` reply to 'stop';
 *        `silentFromFrame` is the context frame (cf. `currentFrame`) of the first silent quantum.
 *        `turnId` is -1 if nothing was ever pushed.
 *   `{ type: 'overflow', turnId, droppedSamples, droppedMs }` when a push did not fit: the oldest
 *        buffered audio was dropped.
 */
import { StreamingResampler } from './resampler-core.js';

/** @typedef {{ targetMs?: number, minMs?: number, maxMs?: number }} JitterOptions */
/** @typedef {{ inputRate?: number, capacitySeconds?: number, progressMs?: number, jitter?: JitterOptions }} PlaybackOptions */

/** @param {unknown} value @param {number} fallback */
const msOption = (value, fallback) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;

class VoicebotPlaybackProcessor extends AudioWorkletProcessor {
  /** @param {{ processorOptions?: PlaybackOptions }} [options] */
  constructor(options) {
    super();
    const po = (options && options.processorOptions) || {};
    const inputRate = po.inputRate ?? 24000;
    /** @private */ this.inputRate = inputRate;
    /** @private */ this.capacity = Math.max(
      inputRate,
      Math.round(inputRate * (po.capacitySeconds ?? 60)),
    );
    /** @private */ this.ring = new Float32Array(this.capacity);
    /** @private absolute count of samples pushed */ this.writeAbs = 0;
    /** @private absolute count of samples fed to the resampler */ this.readAbs = 0;

    /** @private */ this.resampler = new StreamingResampler(inputRate, sampleRate);
    /** @private input samples fed per refill step */
    this.chunkIn = Math.ceil((128 * inputRate) / sampleRate) + 1;
    /** @private */ this.fifo = new Float32Array(
      256 +
        this.resampler.maxOutputLength(this.chunkIn) +
        this.resampler.maxOutputLength(this.resampler.halfTaps + 1),
    );
    /** @private */ this.fifoLen = 0;
    /** @private input samples per output sample */ this.step = inputRate / sampleRate;

    /** @private data or the filter tail is pending */ this.playing = false;
    /** @private the tail of the current segment has been flushed */ this.tailFlushed = false;
    /** @private abs input index rendered so far (advances `step` per rendered output sample) */
    this.playedPos = 0;

    /** @private */ this.turnId = -1;
    /** @private */ this.turnStartAbs = 0;
    /** @private */ this.turnPlayedAny = false;
    /** @private @type {number | null} */ this.lastPushedTurn = null;
    /** @private @type {{ turnId: number, at: number }[]} */ this.boundaries = [];

    /** @private */ this.gain = 1;
    /** @private */ this.targetGain = 1;
    /** @private */ this.progressFrames = Math.max(
      128,
      Math.round(((po.progressMs ?? 100) * sampleRate) / 1000),
    );
    /** @private */ this.sinceProgress = 0;
    /** @private */ this.levelSumSq = 0;
    /** @private */ this.levelCount = 0;
    /** @private */ this.nextQuantumFrame = 0;

    const jitter = po.jitter;
    /** @private */ this.jitter = Boolean(jitter);
    /** @private */ this.minMs = msOption(jitter?.minMs, 50);
    /** @private */ this.maxMs = Math.max(this.minMs, msOption(jitter?.maxMs, 400));
    /** @private */ this.targetMs = Math.min(
      this.maxMs,
      Math.max(this.minMs, msOption(jitter?.targetMs, 50)),
    );
    /** @private waiting for the target before (re)starting */ this.buffering = false;
    /** @private context frame where the current wait started */ this.bufferingSince = 0;
    /** @private ran dry before the turn ended */ this.starved = false;
    /** @private abs input index up to which all pushed audio belongs to ended turns */
    this.endedAbs = 0;
    /** @private underruns of the current turn */ this.underruns = 0;
    /** @private the largest push since the wait began, in input samples */ this.largestPush = 0;
    /** @private lowest buffered audio (ms) in the current shrink window */ this.cushionMin =
      Infinity;
    /** @private output frames in the current shrink window */ this.cushionFrames = 0;

    this.port.onmessage = (/** @type {MessageEvent} */ ev) => this.onMessage(ev.data);
  }

  /** @private @param {unknown} msg */
  onMessage(msg) {
    if (!msg || typeof msg !== 'object') return;
    const m = /** @type {{ type?: unknown, pcm?: unknown, turnId?: unknown, value?: unknown }} */ (
      msg
    );
    if (m.type === 'push' && m.pcm instanceof ArrayBuffer) {
      this.push(m.pcm, typeof m.turnId === 'number' ? m.turnId : 0);
    } else if (m.type === 'end') {
      if (m.turnId === this.lastPushedTurn) {
        this.endedAbs = this.writeAbs;
        this.starved = false;
      }
    } else if (m.type === 'stop') {
      this.stop();
    } else if (m.type === 'gain' && typeof m.value === 'number' && Number.isFinite(m.value)) {
      this.targetGain = Math.max(0, m.value);
    }
  }

  /** @private @param {ArrayBuffer} buf @param {number} turnId */
  push(buf, turnId) {
    const n = buf.byteLength >> 1;
    if (n === 0) return;
    const view = new DataView(buf);
    const newTurn = turnId !== this.lastPushedTurn;
    if (newTurn) {
      this.boundaries.push({ turnId, at: this.writeAbs });
      this.lastPushedTurn = turnId;
      this.endedAbs = this.writeAbs; // the turns before it are complete
    }
    if (this.jitter) {
      if (!this.playing || newTurn) {
        this.wait();
      } else if (this.starved) {
        // more of the same turn after running dry: it was a gap, not the end
        this.underruns++;
        this.targetMs = Math.min(this.maxMs, Math.round(this.targetMs * 1.5));
        this.wait();
      }
      this.starved = false;
      if (n > this.largestPush) this.largestPush = n;
    }
    // the resampler is in its reset state if we were idle or its tail has been flushed already
    this.playing = true;
    this.tailFlushed = false;
    const cap = this.capacity;
    let skip = 0;
    if (n > cap) skip = n - cap; // keep only the newest `cap` samples of a huge chunk
    const buffered = this.writeAbs - this.readAbs;
    const excess = buffered + (n - skip) - cap;
    let dropped = skip;
    if (excess > 0) {
      this.readAbs += excess;
      this.playedPos += excess; // the dropped audio is never rendered: skip it in the played count
      dropped += excess;
    }
    let w = this.writeAbs % cap;
    const ring = this.ring;
    for (let i = skip; i < n; i++) {
      ring[w] = view.getInt16(i * 2, true) / 32768;
      if (++w === cap) w = 0;
    }
    this.writeAbs += n - skip; // skipped samples never enter the absolute index space
    if (dropped > 0) {
      this.port.postMessage({
        type: 'overflow',
        turnId,
        droppedSamples: dropped,
        droppedMs: (dropped * 1000) / this.inputRate,
      });
    }
  }

  /** @private (re)starts the wait for the jitter buffer's target */
  wait() {
    this.buffering = true;
    this.bufferingSince = this.nextQuantumFrame;
    this.largestPush = 0;
    this.cushionMin = Infinity;
    this.cushionFrames = 0;
  }

  /** @private whether all audio pushed so far belongs to turns that have ended */
  allEnded() {
    return !this.jitter || this.endedAbs >= this.writeAbs;
  }

  /** @private audio pushed and not yet rendered, in ms */
  bufferedMs() {
    return ((this.writeAbs - this.playedPos) * 1000) / this.inputRate;
  }

  /** @private whether a wait for the target is over */
  waited() {
    const waitedMs = ((this.nextQuantumFrame - this.bufferingSince) * 1000) / sampleRate;
    const buffered = this.bufferedMs();
    return (
      waitedMs >= this.targetMs ||
      buffered >= this.targetMs + (this.largestPush * 1000) / this.inputRate ||
      buffered >= Math.max(2 * this.targetMs, this.maxMs) ||
      this.allEnded()
    );
  }

  /** @private the buffer's low point over each second of playback: the target shrinks while it stays above it */
  trackCushion(/** @type {number} */ frames) {
    const buffered = this.bufferedMs();
    if (buffered < this.cushionMin) this.cushionMin = buffered;
    this.cushionFrames += frames;
    if (this.cushionFrames < sampleRate) return;
    if (this.cushionMin >= this.targetMs) this.targetMs = Math.max(this.minMs, this.targetMs - 10);
    this.cushionMin = Infinity;
    this.cushionFrames = 0;
  }

  /** @private the jitter buffer's figures for a turn's last report */
  jitterReport() {
    return { underruns: this.underruns, targetMs: this.jitter ? this.targetMs : 0 };
  }

  /** @private absolute input index played so far */
  playedAbs() {
    return this.playedPos;
  }

  /** @private */
  turnPlayed() {
    return Math.max(0, Math.round(this.playedAbs() - this.turnStartAbs));
  }

  /** @private */
  stop() {
    this.advanceTurns();
    const played = this.turnPlayed();
    this.readAbs = this.writeAbs;
    this.resampler.reset();
    this.fifoLen = 0;
    this.playing = false;
    this.tailFlushed = false;
    this.playedPos = this.readAbs;
    this.boundaries.length = 0;
    this.lastPushedTurn = null;
    this.turnStartAbs = this.writeAbs;
    this.turnPlayedAny = false;
    this.sinceProgress = 0;
    this.levelSumSq = 0;
    this.levelCount = 0;
    const report = this.jitterReport();
    this.buffering = false;
    this.starved = false;
    this.endedAbs = this.writeAbs;
    this.underruns = 0;
    this.port.postMessage({
      type: 'stopped',
      turnId: this.turnId,
      playedSamples: played,
      playedMs: (played * 1000) / this.inputRate,
      silentFromFrame: this.nextQuantumFrame,
      ...report,
    });
  }

  /** @private switch to the turn(s) whose first sample has been reached */
  advanceTurns() {
    const b = this.boundaries;
    if (b.length === 0) return;
    const pos = this.playedAbs();
    while (b.length > 0 && /** @type {{at:number}} */ (b[0]).at <= pos) {
      const next = /** @type {{ turnId: number, at: number }} */ (b.shift());
      // final progress of the turn that just ended (counted up to its last sample)
      if (this.turnPlayedAny && this.turnId !== next.turnId) this.reportProgress(next.at);
      if (this.turnId !== next.turnId) this.underruns = 0;
      this.turnId = next.turnId;
      this.turnStartAbs = next.at;
      this.turnPlayedAny = false;
    }
  }

  /** @private @param {number} [upTo] absolute input index to count up to (default: played position) */
  reportProgress(upTo) {
    const played =
      upTo === undefined
        ? this.turnPlayed()
        : Math.max(0, Math.round(Math.min(upTo, this.playedAbs()) - this.turnStartAbs));
    const level = this.levelCount > 0 ? Math.sqrt(this.levelSumSq / this.levelCount) : 0;
    this.levelSumSq = 0;
    this.levelCount = 0;
    this.sinceProgress = 0;
    this.port.postMessage({
      type: 'played',
      turnId: this.turnId,
      playedSamples: played,
      playedMs: (played * 1000) / this.inputRate,
      level,
    });
  }

  /** @private fill the FIFO with at least `need` samples if the data allows @param {number} need */
  refill(need) {
    const r = this.resampler;
    const ring = this.ring;
    const cap = this.capacity;
    while (this.fifoLen < need) {
      const avail = this.writeAbs - this.readAbs;
      if (avail <= 0) break;
      const start = this.readAbs % cap;
      const m = Math.min(avail, this.chunkIn, cap - start);
      this.fifoLen += r.processInto(ring, start, start + m, this.fifo, this.fifoLen);
      this.readAbs += m;
    }
    if (
      this.fifoLen < need &&
      this.playing &&
      !this.tailFlushed &&
      this.writeAbs === this.readAbs &&
      this.allEnded()
    ) {
      // buffer ran dry: render the filter tail, then go idle once it has played
      this.fifoLen += r.flushInto(this.fifo, this.fifoLen);
      this.tailFlushed = true;
    }
  }

  /**
   * @param {Float32Array[][]} _inputs
   * @param {Float32Array[][]} outputs
   * @returns {boolean}
   */
  process(_inputs, outputs) {
    const out = outputs[0];
    if (!out || out.length === 0) return true;
    const ch0 = /** @type {Float32Array} */ (out[0]);
    const n = ch0.length;
    this.nextQuantumFrame = currentFrame + n;

    let k = 0;
    if (this.playing && this.buffering && this.waited()) this.buffering = false;
    if (this.playing && !this.buffering) {
      if (this.jitter && !this.starved) this.trackCushion(n);
      this.refill(n);
      k = Math.min(this.fifoLen, n);
      const fifo = this.fifo;
      const g0 = this.gain;
      const dg = (this.targetGain - g0) / n;
      let sumSq = 0;
      for (let i = 0; i < k; i++) {
        const v = /** @type {number} */ (fifo[i]) * (g0 + dg * (i + 1));
        ch0[i] = v;
        sumSq += v * v;
      }
      this.gain = this.targetGain;
      if (k > 0) {
        fifo.copyWithin(0, k, this.fifoLen);
        this.fifoLen -= k;
        // never beyond what was fed: the filter tail after the last sample is not "played input"
        this.playedPos = Math.min(this.readAbs, this.playedPos + k * this.step);
        this.advanceTurns(); // before marking: a turn that starts in this quantum has played now
        this.turnPlayedAny = true;
      }
      this.levelSumSq += sumSq;
      this.levelCount += n;
      // ran dry before the turn's end: a gap (counted once more of the turn arrives)
      if (k < n && !this.tailFlushed && this.writeAbs === this.readAbs && !this.allEnded())
        this.starved = true;
    } else {
      this.gain = this.targetGain;
    }
    for (let i = k; i < n; i++) ch0[i] = 0;
    for (let c = 1; c < out.length; c++) /** @type {Float32Array} */ (out[c]).set(ch0);

    if (this.playing) {
      this.advanceTurns();
      // nothing of a turn waiting for its start is reported (it has not been heard)
      if (this.turnPlayedAny) this.sinceProgress += n;
      if (this.sinceProgress >= this.progressFrames) this.reportProgress();
      if (this.fifoLen === 0 && this.tailFlushed && this.writeAbs === this.readAbs) {
        // everything (including the filter tail) has been rendered
        this.playing = false;
        this.tailFlushed = false;
        this.playedPos = this.readAbs;
        const played = this.turnPlayed();
        const playedAny = this.turnPlayedAny;
        this.turnPlayedAny = false; // reported by 'drained': no further final 'played' for it
        this.sinceProgress = 0;
        this.levelSumSq = 0;
        this.levelCount = 0;
        const report = this.jitterReport();
        this.underruns = 0;
        if (playedAny || played > 0) {
          this.port.postMessage({
            type: 'drained',
            turnId: this.turnId,
            playedSamples: played,
            playedMs: (played * 1000) / this.inputRate,
            ...report,
          });
        }
      }
    }
    return true;
  }
}

registerProcessor('voicebot-playback', VoicebotPlaybackProcessor);
