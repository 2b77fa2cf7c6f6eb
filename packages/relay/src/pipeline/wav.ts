/** Bytes of a canonical RIFF/WAVE header for PCM16. */
export const WAV_HEADER_BYTES = 44;

/** Writes a canonical PCM16 RIFF/WAVE header for `dataBytes` of samples at `out[offset…offset + 44)`. */
export function writeWavHeader(
  out: Uint8Array,
  offset: number,
  dataBytes: number,
  sampleRate: number,
  channels = 1,
): void {
  const view = new DataView(out.buffer, out.byteOffset + offset, WAV_HEADER_BYTES);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) view.setUint8(at + i, text.charCodeAt(i));
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * 2, true);
  view.setUint16(32, channels * 2, true);
  view.setUint16(34, 16, true);
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
}

/** Wraps PCM16LE samples in a RIFF/WAVE header (what transcription endpoints expect). */
export function pcm16ToWav(pcm: Uint8Array, sampleRate: number, channels = 1): Uint8Array {
  const out = new Uint8Array(WAV_HEADER_BYTES + pcm.byteLength);
  writeWavHeader(out, 0, pcm.byteLength, sampleRate, channels);
  out.set(pcm, WAV_HEADER_BYTES);
  return out;
}

export function pcm16DurationMs(bytes: number, sampleRate: number): number {
  return (bytes / 2 / sampleRate) * 1000;
}
