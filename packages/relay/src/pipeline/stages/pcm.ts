/**
 * Re-frames a byte stream of PCM16 so every frame holds whole samples: a network chunk can end in
 * the middle of a sample, and that odd byte must lead the next frame.
 */
export class Pcm16Framer {
  private carry: number | undefined;

  push(chunk: Uint8Array): Uint8Array | undefined {
    let bytes = chunk;
    if (this.carry !== undefined) {
      // Every byte is written next: no need to zero-fill.
      bytes = Buffer.allocUnsafe(chunk.byteLength + 1);
      bytes[0] = this.carry;
      bytes.set(chunk, 1);
      this.carry = undefined;
    }
    if (bytes.byteLength % 2 === 1) {
      this.carry = bytes[bytes.byteLength - 1];
      bytes = bytes.subarray(0, bytes.byteLength - 1);
    }
    return bytes.byteLength > 0 ? bytes : undefined;
  }

  /** True when a half sample is left over at the end of the stream (a truncated body). */
  get hasRemainder(): boolean {
    return this.carry !== undefined;
  }
}
