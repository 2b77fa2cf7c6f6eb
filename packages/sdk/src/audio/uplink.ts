/** 16 kHz PCM16 samples per millisecond. */
const SAMPLES_PER_MS = 16;

/** Default audio per WebSocket message (see {@link UplinkBatcher}). */
export const DEFAULT_UPLINK_FRAME_MS = 100;

/**
 * Packs the utterance's 20 ms capture frames into larger WebSocket messages of `frameMs` of audio.
 * The relay transcribes an utterance only once it is committed, so bigger messages cost the turn no
 * latency as long as the last partial one is flushed before `commit`; they cost the relay, the
 * network and the page a fifth of the per-message work at 100 ms.
 */
export class UplinkBatcher {
  private readonly buffer: Int16Array;
  private filled = 0;

  constructor(
    private readonly send: (pcm: Int16Array) => void,
    frameMs = DEFAULT_UPLINK_FRAME_MS,
  ) {
    if (!Number.isFinite(frameMs) || frameMs < 20 || frameMs > 1000)
      throw new RangeError(`uplinkFrameMs must be 20–1000 ms, got ${frameMs}`);
    this.buffer = new Int16Array(Math.round(frameMs * SAMPLES_PER_MS));
  }

  push(frame: Int16Array): void {
    let offset = 0;
    while (offset < frame.length) {
      const take = Math.min(frame.length - offset, this.buffer.length - this.filled);
      this.buffer.set(frame.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.buffer.length) this.flush();
    }
  }

  /** Sends what is held (before `commit`). */
  flush(): void {
    if (this.filled === 0) return;
    this.send(this.buffer.slice(0, this.filled));
    this.filled = 0;
  }

  /** Drops what is held (the utterance was abandoned or the socket is gone). */
  discard(): void {
    this.filled = 0;
  }
}
