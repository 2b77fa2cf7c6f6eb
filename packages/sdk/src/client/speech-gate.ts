/**
 * The speech gate: turns the detector's frames and events into utterances that count. Speech is
 * held back until it has been voiced for most of a window (`minInterruptionMs`, at least
 * `minSpeechMs`), so a cough, a click or the bot's own echo neither interrupts the bot nor reaches
 * the relay; once confirmed, the held audio (pre-speech pad first) and the rest of the utterance
 * stream out. No DOM: unit-tested in Node.
 */
import type { VadEvent } from '../vad.js';
import type { SpeechStatus } from './status.js';

/** Capture frames are 20 ms of 16 kHz PCM16. */
export const FRAME_MS = 20;
/** Audio held back while deciding whether speech is real: pre-speech pad plus the decision window. */
export const MAX_HELD_FRAMES = 50;
/** Share of voiced frames in the decision window that makes speech real. */
export const VOICED_SHARE = 0.7;

export interface SpeechGateOptions {
  /** Speech shorter than this does not count (default 250 ms). */
  minInterruptionMs?: number;
  /** The detector's own minimum; the window is at least this long. */
  minSpeechMs?: number;
}

/** What the gate decides, in the order it decides it. */
export interface SpeechGateHandlers {
  /** Speech counts from now on: `held` is its audio so far, pre-speech pad first. */
  confirm(held: Int16Array[]): void;
  /** A frame of confirmed speech. */
  audio(frame: Int16Array): void;
  /** Confirmed speech ended: the utterance is complete. */
  end(): void;
  /** Confirmed speech has been silent for the detector's `pauseMs` (`silenceMs` so far): maybe the end. */
  pause?(silenceMs: number): void;
  /** Confirmed speech came back after a `pause`. */
  resume?(): void;
  /** What started did not count; nothing of it was passed on. `misfire`: the detector called it too short. */
  discard(misfire: boolean): void;
}

export class SpeechGate {
  private statusValue: SpeechStatus = 'silent';
  private held: Int16Array[] = [];
  /** Voicing of the frames since speech onset (the last `windowFrames` of them), and how many are voiced. */
  private voicedWindow: boolean[] = [];
  private voicedCount = 0;
  /** Frames in the window that decides whether speech is real. */
  readonly windowFrames: number;

  constructor(
    options: SpeechGateOptions,
    private readonly handlers: SpeechGateHandlers,
  ) {
    this.windowFrames = Math.ceil(
      Math.max(options.minInterruptionMs ?? 250, options.minSpeechMs ?? 0) / FRAME_MS,
    );
  }

  get status(): SpeechStatus {
    return this.statusValue;
  }

  /** One detector frame: its events, then the frame itself. `voiced`: it sounds like the visitor (speech, louder than the bot's echo). */
  process(frame: Int16Array, events: readonly VadEvent[], voiced: boolean): void {
    this.apply(events);
    if (this.statusValue === 'silent') return;
    if (this.statusValue === 'confirmed') {
      this.handlers.audio(frame);
      return;
    }
    this.held.push(frame);
    if (this.held.length > MAX_HELD_FRAMES) this.held.shift();
    // Real speech: most frames of the window voiced (a cough is too short; the bot's echo is not
    // voiced once the echo gate has subtracted it).
    const size = this.windowFrames;
    this.voicedWindow.push(voiced);
    if (voiced) this.voicedCount++;
    if (this.voicedWindow.length > size && this.voicedWindow.shift()) this.voicedCount--;
    if (this.voicedWindow.length === size && this.voicedCount >= Math.ceil(size * VOICED_SHARE)) {
      const held = this.held;
      this.statusValue = 'confirmed';
      this.held = [];
      this.voicedWindow = [];
      this.voicedCount = 0;
      this.handlers.confirm(held);
    }
  }

  /**
   * The detector's events, in order, without a frame (also for the event of an utterance the
   * client ended itself, from `VoiceActivityDetector.endSpeech()`).
   */
  apply(events: readonly VadEvent[]): void {
    for (const event of events) {
      switch (event.type) {
        case 'speech-start':
          this.reset();
          this.statusValue = 'pending';
          this.held = [...event.preroll];
          break;
        case 'misfire':
          this.reset();
          this.handlers.discard(true);
          break;
        case 'speech-end': {
          const confirmed = this.statusValue === 'confirmed';
          this.reset();
          if (confirmed) this.handlers.end();
          else this.handlers.discard(false);
          break;
        }
        case 'pause':
          if (this.statusValue === 'confirmed') this.handlers.pause?.(event.silenceMs);
          break;
        case 'resume':
          if (this.statusValue === 'confirmed') this.handlers.resume?.();
          break;
      }
    }
  }

  /** Forgets the utterance in progress (muted, socket gone, stopped). */
  reset(): void {
    this.statusValue = 'silent';
    this.held = [];
    this.voicedWindow = [];
    this.voicedCount = 0;
  }
}
