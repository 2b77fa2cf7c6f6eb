/**
 * Turn-taking: when the visitor's utterance ends, and speculative turns (protocol 1.1). With a
 * relay that offers them (`ready.features` has `speculation`) and its STT, a short silence inside
 * confirmed speech sends `pause`: the relay starts the turn on the audio so far and holds its
 * output. The relay's `tentative_transcript` of that audio tells the end-of-turn policy how long to
 * wait; once the silence is that long the turn is committed (the relay confirms the speculative
 * turn and releases what it held). Speech before that sends `resume` (the relay drops the
 * speculative turn) and the utterance goes on.
 *
 * Audio after a `pause` is held back: the relay confirms a speculative turn only if no audio came
 * after its pause. On `resume` the held frames go out (they are part of the utterance); on commit
 * they are dropped (silence after the words).
 *
 * Without speculation the utterance ends after `fallbackMs` of silence, as it always did. No DOM:
 * unit-tested in Node.
 */
import type { EndOfTurnPolicy } from './end-of-turn.js';

/** Capture frames are 20 ms. */
const FRAME_MS = 20;

export interface TurnTakingSettings {
  /** Silence inside speech that sends `pause`. */
  pauseMs: number;
  /** Shortest silence that ends a turn, whatever the policy says. */
  minSilenceMs: number;
  /** Longest: the detector's own end of speech (its `redemptionMs`). */
  maxSilenceMs: number;
  /** The end of a turn without speculation (today's `redemptionMs`). */
  fallbackMs: number;
  policy: EndOfTurnPolicy;
  /** The conversation's language, read when the policy is asked. */
  language(): string | undefined;
}

export interface TurnTakingHooks {
  /** A frame of the utterance for the relay. */
  send(frame: Int16Array): void;
  /** Sends what the uplink holds, then `pause` with `pauseId` (its `tentative_transcript` echoes it). */
  pause(pauseId: number): void;
  /** Sends `resume`. */
  resume(): void;
  /** The turn ends now: commit it. */
  end(): void;
}

export class TurnTaking {
  /** The relay acts on `pause`/`resume` for this session (set from `ready`). */
  speculative = false;
  /** A `pause` was sent and neither `resume` nor `commit` since. */
  private paused = false;
  /** Numbers this client's pauses: a late `tentative_transcript` for an earlier one is not this one's. */
  private pauseId = 0;
  private transcript: string | undefined;
  /** Frames after the pause, held back (bounded: the detector ends speech at `maxSilenceMs`). */
  private held: Int16Array[] = [];
  private readonly maxHeld: number;
  private silence = 0;
  /** The silence when the transcript was read: the turn ends on a silent frame after it. */
  private silenceAtTranscript = 0;

  constructor(
    readonly settings: TurnTakingSettings,
    private readonly hooks: TurnTakingHooks,
  ) {
    const { pauseMs, minSilenceMs, maxSilenceMs, fallbackMs } = settings;
    const durations = { pauseMs, minSilenceMs, maxSilenceMs, fallbackMs };
    if (
      Object.values(durations).some((ms) => !(ms >= 0 && ms < Infinity)) ||
      minSilenceMs > maxSilenceMs
    )
      throw new RangeError(
        `endOfTurn: bad durations (ms ≥ 0, min ≤ max): ${JSON.stringify(durations)}`,
      );
    this.maxHeld = Math.ceil(maxSilenceMs / FRAME_MS) + 5;
  }

  /** Silence after which the current utterance ends, from what is known now. */
  neededMs(): number {
    const { minSilenceMs, maxSilenceMs, fallbackMs, pauseMs, policy } = this.settings;
    if (!this.paused) return Math.min(fallbackMs, maxSilenceMs);
    const wanted = policy.silenceNeededMs({
      transcript: this.transcript,
      pauseMs,
      language: this.settings.language(),
    });
    const needed = Number.isFinite(wanted) ? wanted : fallbackMs;
    return Math.min(maxSilenceMs, Math.max(minSilenceMs, pauseMs, needed));
  }

  /** A frame of confirmed speech (or of the silence inside it). */
  audio(frame: Int16Array): void {
    if (!this.paused) {
      this.hooks.send(frame);
      return;
    }
    this.held.push(frame);
    if (this.held.length > this.maxHeld) this.held.shift();
  }

  /** The detector's `pause`, in confirmed speech. */
  pause(silenceMs: number): void {
    this.silence = silenceMs;
    if (!this.speculative || this.paused) return;
    this.paused = true;
    this.transcript = undefined;
    this.hooks.pause(++this.pauseId);
  }

  /** The detector's `resume`: the visitor goes on. */
  resume(): void {
    this.silence = 0;
    if (!this.paused) return;
    this.paused = false;
    this.transcript = undefined;
    this.hooks.resume();
    const held = this.held;
    this.held = [];
    for (const frame of held) this.hooks.send(frame);
  }

  /**
   * The relay's `tentative_transcript`. Ignored unless a speculative turn is running: one that
   * arrives after `resume` belongs to the speculative turn that was dropped, and so does one whose
   * `pauseId` is an earlier pause's (sent before the relay saw the `resume`, read after the next
   * `pause`). Without `pauseId` (a relay before protocol 1.2) it is taken for the current pause.
   * When the silence is already long enough, the turn ends on the next silent frame, not at once:
   * the visitor may have started again in the frame the detector has not called speech yet.
   */
  tentative(text: string, pauseId?: number): void {
    if (!this.paused || (pauseId !== undefined && pauseId !== this.pauseId)) return;
    this.transcript = text;
    this.silenceAtTranscript = this.silence;
  }

  /** The detector's silence count after a frame of confirmed speech: ends the turn when long enough. */
  silenceAfterFrame(silenceMs: number): void {
    this.silence = silenceMs;
    this.check();
  }

  /**
   * The utterance was committed: what is held is silence after the words (the relay does not want
   * it). Returns the silence waited after the visitor's last speech, by the detector's count.
   */
  committed(): number {
    const silenceMs = this.silence;
    this.clear();
    return silenceMs;
  }

  /**
   * The utterance was abandoned (muted, discarded, socket gone). True when a speculative turn was
   * running: the caller sends `resume` so that the relay drops it.
   */
  abandon(): boolean {
    const running = this.paused;
    this.clear();
    return running;
  }

  private check(): void {
    if (
      this.silence > 0 &&
      this.silence >= this.neededMs() &&
      (this.transcript === undefined || this.silence > this.silenceAtTranscript)
    )
      this.hooks.end();
  }

  private clear(): void {
    this.paused = false;
    this.transcript = undefined;
    this.held = [];
    this.silence = 0;
  }
}
