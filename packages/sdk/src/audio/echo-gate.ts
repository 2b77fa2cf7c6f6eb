export interface EchoGateOptions {
  /**
   * How much louder than the expected echo (power ratio) the microphone must be for a frame to
   * count as the visitor talking over the bot. Default 2 (3 dB).
   */
  marginPower?: number;
  /**
   * Echo coupling (mic amplitude / playback amplitude) assumed before any has been measured.
   * Default 2 (+6 dB, a loud laptop): cautious at first; it falls within a few frames of bot-only audio.
   */
  initialCoupling?: number;
  /** Playback RMS below which the bot counts as silent and nothing is gated. Default 0.003 (-50 dBFS). */
  activeReference?: number;
}

/**
 * Keeps the bot's own voice, picked up again by the microphone, from being taken for the visitor
 * interrupting. Chrome's echo canceller does not see audio played through Web Audio, so on laptop
 * speakers the reply leaks back into the mic.
 *
 * Per 20 ms frame it gets the mic level and the playback (reference) level measured in the same
 * render quanta. While only the bot talks, it learns the speaker→mic coupling; during playback a
 * frame passes to the VAD only when the mic power exceeds the expected echo power by a margin
 * (power adds for uncorrelated signals, so real speech over the echo shows up as excess power).
 */
export class EchoGate {
  private coupling: number;
  private readonly margin: number;
  private readonly activeReference: number;
  /** The echo of a frame's playback can arrive in the next frame (resampler and acoustic delay). */
  private previousReference = 0;

  constructor(options: EchoGateOptions = {}) {
    this.coupling = options.initialCoupling ?? 2;
    this.margin = options.marginPower ?? 2;
    this.activeReference = options.activeReference ?? 0.003;
  }

  /** The current estimate of mic amplitude per unit of playback amplitude. */
  get estimatedCoupling(): number {
    return this.coupling;
  }

  /**
   * True when the frame may be the visitor (pass it to the VAD); false when it is explained by
   * the echo of what is playing. `userTalking` tells the gate not to learn from this frame.
   */
  admit(micLevel: number, currentReference: number, userTalking: boolean): boolean {
    const previous = this.previousReference;
    const referenceLevel = Math.max(currentReference, previous);
    this.previousReference = currentReference;
    if (referenceLevel < this.activeReference) return true;
    // Learn only from steady playback: at word edges the echo lags the reference and the ratio lies.
    const steady =
      Math.min(currentReference, previous) > 0.7 * referenceLevel &&
      currentReference > 3 * this.activeReference;
    if (!userTalking && steady) {
      // Down faster than up: the coupling settles on the echo alone, and a burst of the visitor's
      // voice (not yet recognised as speech) cannot teach it that speech is echo.
      const ratio = micLevel / currentReference;
      const rate = ratio < this.coupling ? 0.15 : 0.01;
      this.coupling += (ratio - this.coupling) * rate;
    }
    const expectedEcho = this.coupling * referenceLevel;
    return micLevel * micLevel > this.margin * expectedEcho * expectedEcho;
  }
}
