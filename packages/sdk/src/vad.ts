/** What a voice activity detector reports, frame by frame (16 kHz PCM16, 20 ms frames). */
export type VadEvent =
  /** Speech began; `preroll` holds the frames from just before it (so the first syllable is kept). */
  | { type: 'speech-start'; preroll: Int16Array[] }
  /** Speech ended after the configured silence (redemption) time. */
  | { type: 'speech-end'; durationMs: number }
  /** What looked like speech was shorter than `minSpeechMs` (a cough, a click). */
  | { type: 'misfire' };

export interface VoiceActivityDetector {
  process(frame: Int16Array): VadEvent[] | Promise<VadEvent[]>;
  /** Whether the last frame processed sounded like speech (not just "inside an utterance"). */
  readonly voiced: boolean;
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
  /** Silence that ends an utterance (default 700 ms). */
  redemptionMs?: number;
  /** Audio kept from before speech onset (default 300 ms). */
  preSpeechPadMs?: number;
  /** Shorter speech is a misfire and is never sent (default 250 ms). */
  minSpeechMs?: number;
}
