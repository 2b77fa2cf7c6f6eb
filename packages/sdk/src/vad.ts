/** What a voice activity detector reports, frame by frame (16 kHz PCM16, 20 ms frames). */
export type VadEvent =
  /** Speech began; `preroll` holds the frames from just before it (so the first syllable is kept). */
  | { type: 'speech-start'; preroll: Int16Array[] }
  /** Speech ended after the configured silence (redemption) time. */
  | { type: 'speech-end'; durationMs: number }
  /** What looked like speech was shorter than `minSpeechMs` (a cough, a click). */
  | { type: 'misfire' }
  /**
   * Speech has been silent for `pauseMs` (only when the detector was given `pauseMs`): a
   * tentative end of turn. Once per silence; `silenceMs` is the silence so far.
   */
  | { type: 'pause'; silenceMs: number }
  /** Speech came back after a `pause`, before the utterance ended. */
  | { type: 'resume' };

export interface VoiceActivityDetector {
  process(frame: Int16Array): VadEvent[] | Promise<VadEvent[]>;
  /** Whether the last frame processed sounded like speech (not just "inside an utterance"). */
  readonly voiced: boolean;
  /** Silence since the last speech frame of the utterance in progress, as the detector counts it (0 outside one). */
  readonly silenceMs: number;
  /**
   * Ends the utterance in progress now, as `redemptionMs` of silence would have: returns the event
   * that would have said so (`speech-end`, or `misfire` when it was too short), or undefined when
   * there is none. The next speech frame starts a new utterance.
   */
  endSpeech(): VadEvent | undefined;
  dispose?(): void;
}

export interface VadSettings {
  /** `silero` (default; loaded lazily, energy VAD until it is ready or if it fails) or `energy`. */
  model?: 'silero' | 'energy';
  /** Silero: speech probability that starts speech (default 0.5). */
  positiveSpeechThreshold?: number;
  /** Silero: probability below which a frame counts as silence (default 0.35). */
  negativeSpeechThreshold?: number;
  /** Energy VAD: dB above the noise floor that counts as speech. */
  energyThresholdDb?: number;
  /**
   * Silence that ends an utterance (default 700 ms). With speculative turns (the default, when the
   * relay offers them) it is the longest wait: default `endOfTurn.maxSilenceMs` (1200 ms).
   */
  redemptionMs?: number;
  /** Audio kept from before speech onset (default 300 ms). */
  preSpeechPadMs?: number;
  /** Shorter speech is a misfire and is never sent (default 250 ms). */
  minSpeechMs?: number;
}
