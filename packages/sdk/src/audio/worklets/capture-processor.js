// @ts-check
/// <reference lib="es2022" />
/**
 * voice-bot microphone capture AudioWorklet — registered as `'voicebot-capture'`.
 *
 * Served as a file (no blob: URL, so it works under a strict CSP such as `script-src 'self'`). Here
 * it imports `./resampler-core.js` (the tests load it so); the build inlines that import, so the
 * shipped `dist/audio/worklets/capture-processor.js` is one self-contained file that a bundler can
 * copy and rename.
 *
 * Per render quantum it
 *  1. downmixes all input channels to mono (average),
 *  2. resamples `sampleRate` (the AudioWorkletGlobalScope global: 44100 in headless Chromium,
 *     48000 on most hardware, anything else works too; 16000 is a pass-through) to `targetRate`
 *     (default 16000) with a Kaiser-windowed-sinc polyphase low-pass (−6 dB at 7.4 kHz, ≥ 80 dB
 *     design stopband from 8 kHz), carrying filter history and phase across quanta,
 *  3. converts to Int16 (clamped) and, every `frameMs` (default 20 ms = 320 samples at 16 kHz),
 *     transfers a frame to the main thread.
 *
 * Node options (`new AudioWorkletNode(ctx, 'voicebot-capture', { processorOptions })`):
 *   `{ frameMs?: number = 20, targetRate?: number = 16000 }`
 *
 * Messages posted by the processor (`node.port.onmessage`):
 *   `{ type: 'audio', pcm: ArrayBuffer, level: number, refLevel: number, seq: number }`
 *        `pcm` is Int16 little-endian mono at `targetRate`, exactly `frameSamples` long (transferred).
 *        `level` is the RMS of the frame, linear 0..1 (1 = full-scale square wave; a full-scale sine
 *        is 0.707). dBFS = 20·log10(level). `seq` counts emitted frames from 0. `refLevel` is the RMS
 *        of the optional second input (the bot's playback, connected as an echo reference) over the
 *        same render quanta; 0 when nothing is connected there.
 *   `{ type: 'level', level: 0 }` once per frame period while muted (no audio is emitted then),
 *        so a level meter falls to zero.
 *   `{ type: 'flushed', frames: number }` after a flush request was handled (`frames` = 0 or 1
 *        frames emitted by the flush).
 *
 * Messages accepted (`node.port.postMessage`):
 *   `{ type: 'mute', muted: boolean }` while muted no 'audio' frames are emitted (the partial frame
 *        is discarded on mute; the resampler keeps running so unmuting does not click).
 *   `{ type: 'flush' }` drains the resampler tail, emits the pending partial frame zero-padded
 *        to a whole frame (if it has any samples), resets the resampler and replies 'flushed'.
 */
import { StreamingResampler } from './resampler-core.js';

/**
 * @typedef {{ frameMs?: number, targetRate?: number }} CaptureOptions
 */

class VoicebotCaptureProcessor extends AudioWorkletProcessor {
  /** @param {{ processorOptions?: CaptureOptions }} [options] */
  constructor(options) {
    super();
    const po = (options && options.processorOptions) || {};
    const targetRate = po.targetRate ?? 16000;
    const frameMs = po.frameMs ?? 20;
    /** @private */ this.frameSamples = Math.max(1, Math.round((targetRate * frameMs) / 1000));
    /** @private */ this.resampler = new StreamingResampler(sampleRate, targetRate);
    /** @private */ this.mono = new Float32Array(128);
    /** @private */ this.resampled = new Float32Array(this.resampler.maxOutputLength(128));
    /** @private */ this.tail = new Float32Array(
      this.resampler.maxOutputLength(this.resampler.halfTaps + 1),
    );
    /** @private */ this.frame = new Int16Array(this.frameSamples);
    /** @private */ this.fill = 0;
    /** @private */ this.sumSq = 0;
    /** @private */ this.refSumSq = 0;
    /** @private */ this.refCount = 0;
    /** @private */ this.seq = 0;
    /** @private */ this.muted = false;
    /** @private */ this.flushRequested = false;

    this.port.onmessage = (/** @type {MessageEvent} */ ev) => {
      const msg = ev.data;
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'mute') {
        const muted = Boolean(msg.muted);
        if (muted !== this.muted) {
          // discard the partial frame on mute; start a fresh frame on unmute
          this.fill = 0;
          this.sumSq = 0;
        }
        this.muted = muted;
      } else if (msg.type === 'flush') {
        // handled at the start of the next process() so that it is ordered with audio
        this.flushRequested = true;
      }
    };
  }

  /**
   * Append resampled float samples to the current frame, emitting full frames.
   * @private
   * @param {Float32Array} src
   * @param {number} n
   */
  push(src, n) {
    const fs = this.frameSamples;
    for (let i = 0; i < n; i++) {
      let v = /** @type {number} */ (src[i]);
      if (this.muted) {
        // keep frame timing so 'level' ticks arrive at frame rate
        if (++this.fill >= fs) {
          this.fill = 0;
          this.port.postMessage({ type: 'level', level: 0 });
        }
        continue;
      }
      if (v > 1) v = 1;
      else if (v < -1) v = -1;
      this.sumSq += v * v;
      this.frame[this.fill++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
      if (this.fill >= fs) this.emit();
    }
  }

  /** @private */
  emit() {
    const fs = this.frameSamples;
    for (let i = this.fill; i < fs; i++) this.frame[i] = 0;
    const level = Math.sqrt(this.sumSq / fs);
    const refLevel = this.refCount > 0 ? Math.sqrt(this.refSumSq / this.refCount) : 0;
    this.refSumSq = 0;
    this.refCount = 0;
    const pcm = this.frame.buffer;
    this.port.postMessage({ type: 'audio', pcm, level, refLevel, seq: this.seq++ }, [pcm]);
    this.frame = new Int16Array(fs); // the only per-frame allocation: the transferred buffer
    this.fill = 0;
    this.sumSq = 0;
  }

  /** @private */
  doFlush() {
    this.flushRequested = false;
    const n = this.resampler.flushInto(this.tail, 0);
    const before = this.seq;
    this.push(this.tail, n);
    if (this.fill > 0) {
      if (this.muted) this.fill = 0;
      else this.emit();
    }
    this.port.postMessage({ type: 'flushed', frames: this.seq - before });
  }

  /**
   * @param {Float32Array[][]} inputs
   * @returns {boolean}
   */
  process(inputs) {
    if (this.flushRequested) this.doFlush();
    const reference = inputs[1] && inputs[1][0];
    if (reference) {
      let sq = 0;
      for (let i = 0; i < reference.length; i++)
        sq += /** @type {number} */ (reference[i]) * /** @type {number} */ (reference[i]);
      this.refSumSq += sq;
      this.refCount += reference.length;
    }
    const input = inputs[0];
    const channels = input ? input.length : 0;
    if (channels === 0) return true; // not connected (yet): produce nothing
    const first = /** @type {Float32Array} */ (input[0]);
    const len = first.length;
    if (this.mono.length < len) {
      this.mono = new Float32Array(len);
      this.resampled = new Float32Array(this.resampler.maxOutputLength(len));
    }
    const mono = this.mono;
    if (channels === 1) {
      for (let i = 0; i < len; i++) mono[i] = /** @type {number} */ (first[i]);
    } else {
      const g = 1 / channels;
      for (let i = 0; i < len; i++) {
        let s = 0;
        for (let c = 0; c < channels; c++)
          s += /** @type {number} */ (/** @type {Float32Array} */ (input[c])[i]);
        mono[i] = s * g;
      }
    }
    const n = this.resampler.processInto(mono, 0, len, this.resampled, 0);
    this.push(this.resampled, n);
    return true;
  }
}

registerProcessor('voicebot-capture', VoicebotCaptureProcessor);
