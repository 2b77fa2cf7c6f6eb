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
 *   `{ inputRate?: number = 24000, capacitySeconds?: number = 60, progressMs?: number = 100 }`
 *
 * Messages accepted (`node.port.postMessage`):
 *   `{ type: 'push', pcm: ArrayBuffer, turnId: number }`  Int16 LE mono at `inputRate` (transfer it).
 *        When `turnId` differs from the previous push, the per-turn counters restart once playback
 *        reaches the first sample of the new turn.
 *   `{ type: 'stop' }`  the very next render quantum is silent; buffered audio and filter state are
 *        dropped; replies 'stopped'. Counters restart with the next push (even for the same turnId).
 *   `{ type: 'gain', value: number }`  linear output gain, ramped over one quantum (default 1).
 *
 * Messages posted (`node.port.onmessage`); all "played" figures count samples actually rendered to
 * the output (not queued), converted to the input rate:
 *   `{ type: 'played', turnId, playedSamples, playedMs, level }` every `progressMs` while playing.
 *        `level` = RMS of the output since the previous report, linear 0..1.
 *   `{ type: 'drained', turnId, playedSamples, playedMs }` when the buffer ran empty after playing
 *        something (the filter tail has been rendered too).
 *   `{ type: 'stopped', turnId, playedSamples, playedMs, silentFromFrame }` reply to 'stop';
 *        `silentFromFrame` is the context frame (cf. `currentFrame`) of the first silent quantum.
 *        `turnId` is -1 if nothing was ever pushed.
 *   `{ type: 'overflow', turnId, droppedSamples, droppedMs }` when a push did not fit: the oldest
 *        buffered audio was dropped.
 */
import { StreamingResampler } from './resampler-core.js';

/** @typedef {{ inputRate?: number, capacitySeconds?: number, progressMs?: number }} PlaybackOptions */

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
    if (turnId !== this.lastPushedTurn) {
      this.boundaries.push({ turnId, at: this.writeAbs });
      this.lastPushedTurn = turnId;
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
    this.port.postMessage({
      type: 'stopped',
      turnId: this.turnId,
      playedSamples: played,
      playedMs: (played * 1000) / this.inputRate,
      silentFromFrame: this.nextQuantumFrame,
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
      this.writeAbs === this.readAbs
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
    if (this.playing) {
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
    } else {
      this.gain = this.targetGain;
    }
    for (let i = k; i < n; i++) ch0[i] = 0;
    for (let c = 1; c < out.length; c++) /** @type {Float32Array} */ (out[c]).set(ch0);

    if (this.playing) {
      this.advanceTurns();
      this.sinceProgress += n;
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
        if (playedAny || played > 0) {
          this.port.postMessage({
            type: 'drained',
            turnId: this.turnId,
            playedSamples: played,
            playedMs: (played * 1000) / this.inputRate,
          });
        }
      }
    }
    return true;
  }
}

registerProcessor('voicebot-playback', VoicebotPlaybackProcessor);
