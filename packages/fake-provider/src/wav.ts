/**
 * WAV in and out, self-contained (the fake provider depends on nothing of the relay): parsing the
 * uploads of the transcription endpoint, and the header the speech endpoint's `wav` format needs.
 */
import type { WavInfo } from './types.js';

/** Bytes of a canonical RIFF/WAVE header for PCM16. */
const WAV_HEADER_BYTES = 44;

/** Wraps PCM16LE samples in a canonical RIFF/WAVE header (what transcription endpoints expect). */
export function pcm16ToWav(pcm: Uint8Array, sampleRate: number, channels = 1): Uint8Array {
  const out = new Uint8Array(WAV_HEADER_BYTES + pcm.byteLength);
  const view = new DataView(out.buffer, out.byteOffset, WAV_HEADER_BYTES);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) view.setUint8(at + i, text.charCodeAt(i));
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + pcm.byteLength, true);
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
  view.setUint32(40, pcm.byteLength, true);
  out.set(pcm, WAV_HEADER_BYTES);
  return out;
}

/** Parses a RIFF/WAVE file (PCM 8/16/24/32-bit or 32-bit float). Throws on anything malformed. */
export function parseWav(bytes: Uint8Array): WavInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE')
    throw new Error('not a RIFF/WAVE file');
  let fmt:
    { format: number; channels: number; sampleRate: number; bitsPerSample: number } | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.byteLength) throw new Error('truncated fmt chunk');
      let format = view.getUint16(body, true);
      if (format === 0xfffe && size >= 40 && body + 26 <= bytes.byteLength)
        format = view.getUint16(body + 24, true);
      fmt = {
        format,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      const { format, channels, sampleRate, bitsPerSample } = fmt;
      const supported =
        (format === 1 && [8, 16, 24, 32].includes(bitsPerSample)) ||
        (format === 3 && bitsPerSample === 32);
      if (!supported)
        throw new Error(`unsupported WAV encoding (format ${format}, ${bitsPerSample} bits)`);
      if (channels < 1 || sampleRate < 1) throw new Error('invalid channel count or sample rate');
      // Streaming writers put 0 or 0xFFFFFFFF here: take what is there.
      const available = bytes.byteLength - body;
      const width = bitsPerSample / 8;
      const frame = width * channels;
      const dataBytes =
        Math.floor(Math.min(size === 0 ? available : size, available) / frame) * frame;
      const samples = new Int16Array(dataBytes / width);
      for (let i = 0; i < samples.length; i++) {
        const at = body + i * width;
        if (format === 3)
          samples[i] = Math.round(Math.max(-1, Math.min(1, view.getFloat32(at, true))) * 32767);
        else if (width === 1) samples[i] = (view.getUint8(at) - 128) << 8;
        else if (width === 2) samples[i] = view.getInt16(at, true);
        else if (width === 3) samples[i] = view.getInt16(at + 1, true);
        else samples[i] = view.getInt32(at, true) >> 16;
      }
      return {
        sampleRate,
        channels,
        bitsPerSample,
        dataBytes,
        durationMs: (dataBytes / frame / sampleRate) * 1000,
        samples,
      };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(fmt ? 'no data chunk' : 'no fmt chunk');
}
