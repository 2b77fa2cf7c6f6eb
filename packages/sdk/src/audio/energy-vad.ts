/**
 * Energy-based voice activity detector over 16 kHz mono Int16 frames (pure TS, no DOM).
 *
 * Per frame it computes the RMS level in dBFS and compares it with an adaptive noise floor:
 * - a frame *starts* speech when it is `thresholdDb` above the floor AND above `absoluteFloorDb`
 *   (so digital silence and quiet noise never count, however low the floor gets);
 * - while in speech, a frame *continues* speech at the lower `releaseDb` above the floor (hysteresis:
 *   soft word endings do not chop the utterance), still above `absoluteFloorDb − releaseAbsoluteDb`;
 * - the utterance ends after `redemptionMs` of non-speech frames. It is reported as 'speech-end' if it
 *   contained at least `minSpeechMs` of speech frames, else as 'misfire';
 * - with `pauseMs`, `pauseMs` of non-speech frames inside an utterance are reported as a 'pause'
 *   (a tentative end of turn), and a speech frame after it as a 'resume'.
 *
 * The noise floor follows the level of non-speech frames (fast down, slow up) and, during speech,
 * is lifted to the minimum level seen over the last `noiseWindowMs` — real speech has gaps, so this
 * only moves when the background itself got louder (a fan switched on), which then ends the
 * "utterance" instead of leaving the detector stuck in speech.
 *
 * 'speech-start' is emitted on the first speech frame, with `preroll`: copies of the frames that came
 * *before* it (up to `preSpeechPadMs`, oldest first). The frame that triggered the event is the one
 * passed to that `process()` call and is not part of `preroll`.
 */

export interface EnergyVadOptions {
  /** Sample rate of the frames. Default 16000. */
  sampleRate?: number;
  /** dB above the noise floor that starts speech. Default 12. */
  thresholdDb?: number;
  /** dB above the noise floor that keeps speech going once started. Default 6. */
  releaseDb?: number;
  /** Frames below this level (dBFS) never start speech. Default −45. */
  absoluteFloorDb?: number;
  /** While in speech the absolute floor is lowered by this much (hysteresis). Default 10. */
  releaseAbsoluteDb?: number;
  /** Utterances with less speech than this are reported as 'misfire'. Default 250. */
  minSpeechMs?: number;
  /** Silence that ends an utterance. Default 700. */
  redemptionMs?: number;
  /**
   * Silence in speech that is reported as a 'pause' (and speech after it as 'resume'). Default:
   * none (no such events).
   */
  pauseMs?: number;
  /** Audio before the onset handed over in 'speech-start'. Default 300. */
  preSpeechPadMs?: number;
  /** Noise floor before anything has been heard (dBFS). Default −50. */
  initialNoiseFloorDb?: number;
  /** Window of the minimum tracker that lifts the floor during speech. Default 3000. */
  noiseWindowMs?: number;
}

export type VadEvent =
  | {
      type: 'speech-start';
      /** Frames before the onset frame, oldest first (copies). */
      preroll: Int16Array[];
      /** Start of the onset frame, ms since the first frame processed (or the last reset()). */
      startMs: number;
    }
  | {
      type: 'speech-end';
      /** From the start of the onset frame to the end of the last speech frame. */
      durationMs: number;
      /** End of the last speech frame, ms since the first frame processed. */
      endMs: number;
    }
  | { type: 'misfire'; durationMs: number }
  /** `pauseMs` of silence in speech (once per silence); `silenceMs`: the silence so far. */
  | { type: 'pause'; silenceMs: number }
  /** Speech again after a 'pause', before the utterance ended. */
  | { type: 'resume' };

const MIN_DB = -100;

/** RMS level of an Int16 frame in dBFS (full-scale square wave = 0 dBFS), floored at −100. */
export function frameDbfs(frame: Int16Array): number {
  if (frame.length === 0) return MIN_DB;
  let e = 0;
  for (let i = 0; i < frame.length; i++) {
    const v = (frame[i] ?? 0) / 32768;
    e += v * v;
  }
  const ms = e / frame.length;
  return ms > 0 ? Math.max(MIN_DB, 10 * Math.log10(ms)) : MIN_DB;
}

export class EnergyVad {
  private readonly rate: number;
  private readonly thresholdDb: number;
  private readonly releaseDb: number;
  private readonly absoluteFloorDb: number;
  private readonly releaseAbsoluteDb: number;
  private readonly minSpeechMs: number;
  private readonly redemptionMs: number;
  private readonly pauseMs: number | undefined;
  private readonly preSpeechPadMs: number;
  private readonly initialNoiseFloorDb: number;
  private readonly noiseWindowMs: number;

  private floorDb: number;
  private inSpeech = false;
  private lastVoiced = false;
  private timeMs = 0;
  private onsetMs = 0;
  private lastSpeechEndMs = 0;
  private speechMs = 0;
  private silenceRunMs = 0;
  /** A 'pause' was reported for the current silence. */
  private paused = false;
  /** Recent frames (copies) for the pre-roll, with their durations. */
  private pad: { frame: Int16Array; ms: number }[] = [];
  private padMs = 0;
  /** Ring of recent frame levels for the minimum tracker. */
  private levels: { db: number; ms: number }[] = [];
  private levelsMs = 0;

  constructor(opts: EnergyVadOptions = {}) {
    this.rate = opts.sampleRate ?? 16000;
    this.thresholdDb = opts.thresholdDb ?? 12;
    this.releaseDb = opts.releaseDb ?? 6;
    this.absoluteFloorDb = opts.absoluteFloorDb ?? -45;
    this.releaseAbsoluteDb = opts.releaseAbsoluteDb ?? 10;
    this.minSpeechMs = opts.minSpeechMs ?? 250;
    this.redemptionMs = opts.redemptionMs ?? 700;
    this.pauseMs = opts.pauseMs;
    this.preSpeechPadMs = opts.preSpeechPadMs ?? 300;
    this.initialNoiseFloorDb = opts.initialNoiseFloorDb ?? -50;
    this.noiseWindowMs = opts.noiseWindowMs ?? 3000;
    this.floorDb = this.initialNoiseFloorDb;
  }

  /** Current noise floor estimate in dBFS. */
  get noiseFloorDb(): number {
    return this.floorDb;
  }

  /** Whether the last frame itself sounded like speech (onset or sustain level). */
  get voiced(): boolean {
    return this.lastVoiced;
  }

  /** True between 'speech-start' and 'speech-end'/'misfire'. */
  get speaking(): boolean {
    return this.inSpeech;
  }

  /** Silence since the last speech frame of the utterance in progress (0 outside one). */
  get silenceMs(): number {
    return this.inSpeech ? this.silenceRunMs : 0;
  }

  /**
   * Ends the utterance in progress as `redemptionMs` of silence would have (the event it would
   * have reported), or undefined outside one.
   */
  endSpeech(): VadEvent | undefined {
    if (!this.inSpeech) return undefined;
    return this.finish();
  }

  /** Forget everything (noise floor, pre-roll, time base). */
  reset(): void {
    this.floorDb = this.initialNoiseFloorDb;
    this.inSpeech = false;
    this.timeMs = 0;
    this.onsetMs = 0;
    this.lastSpeechEndMs = 0;
    this.speechMs = 0;
    this.silenceRunMs = 0;
    this.paused = false;
    this.pad = [];
    this.padMs = 0;
    this.levels = [];
    this.levelsMs = 0;
  }

  /** Feed one frame (any length; 20 ms = 320 samples is typical). Returns 0..2 events. */
  process(frame: Int16Array): VadEvent[] {
    const ms = (frame.length * 1000) / this.rate;
    const level = frameDbfs(frame);
    const events: VadEvent[] = [];
    const start = this.timeMs;
    this.timeMs += ms;
    this.trackMinimum(level, ms);

    if (!this.inSpeech) {
      const onset = level > this.floorDb + this.thresholdDb && level > this.absoluteFloorDb;
      this.lastVoiced = onset;
      if (onset) {
        this.inSpeech = true;
        this.onsetMs = start;
        this.lastSpeechEndMs = this.timeMs;
        this.speechMs = ms;
        this.silenceRunMs = 0;
        this.paused = false;
        events.push({
          type: 'speech-start',
          preroll: this.pad.map((p) => p.frame),
          startMs: start,
        });
        this.pad = [];
        this.padMs = 0;
      } else {
        // follow the background: fast down, slow up
        const alpha = level < this.floorDb ? 0.3 : 0.03;
        this.floorDb += (level - this.floorDb) * alpha;
        this.remember(frame, ms);
      }
      return events;
    }

    // in speech
    const minDb = this.windowMinimum();
    if (minDb !== undefined && minDb > this.floorDb) this.floorDb = minDb;
    const active =
      level > this.floorDb + this.releaseDb &&
      level > this.absoluteFloorDb - this.releaseAbsoluteDb;
    this.lastVoiced = active;
    if (active) {
      this.speechMs += ms;
      this.silenceRunMs = 0;
      this.lastSpeechEndMs = this.timeMs;
      if (this.paused) {
        this.paused = false;
        events.push({ type: 'resume' });
      }
    } else {
      this.silenceRunMs += ms;
      if (this.silenceRunMs >= this.redemptionMs) {
        events.push(this.finish());
      } else if (this.pauseMs !== undefined && !this.paused && this.silenceRunMs >= this.pauseMs) {
        this.paused = true;
        events.push({ type: 'pause', silenceMs: this.silenceRunMs });
      }
      this.remember(frame, ms);
    }
    return events;
  }

  /** The end of the utterance in progress: 'speech-end', or 'misfire' when it had too little speech. */
  private finish(): VadEvent {
    this.inSpeech = false;
    const durationMs = this.lastSpeechEndMs - this.onsetMs;
    const event: VadEvent =
      this.speechMs >= this.minSpeechMs
        ? { type: 'speech-end', durationMs, endMs: this.lastSpeechEndMs }
        : { type: 'misfire', durationMs };
    this.speechMs = 0;
    this.silenceRunMs = 0;
    this.paused = false;
    return event;
  }

  private remember(frame: Int16Array, ms: number): void {
    if (this.preSpeechPadMs <= 0) return;
    this.pad.push({ frame: frame.slice(), ms });
    this.padMs += ms;
    while (this.pad.length > 0 && this.padMs - (this.pad[0]?.ms ?? 0) >= this.preSpeechPadMs) {
      this.padMs -= this.pad.shift()?.ms ?? 0;
    }
  }

  private trackMinimum(db: number, ms: number): void {
    this.levels.push({ db, ms });
    this.levelsMs += ms;
    while (
      this.levels.length > 1 &&
      this.levelsMs - (this.levels[0]?.ms ?? 0) >= this.noiseWindowMs
    ) {
      this.levelsMs -= this.levels.shift()?.ms ?? 0;
    }
  }

  /** Minimum level over a full window, or undefined while the window is not yet full. */
  private windowMinimum(): number | undefined {
    if (this.levelsMs < this.noiseWindowMs - 1e-6) return undefined;
    let min = Infinity;
    for (const l of this.levels) if (l.db < min) min = l.db;
    return min;
  }
}
