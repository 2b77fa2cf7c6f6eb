/** Tone synthesis: what the speech endpoint says when a script gives it no audio. */

/** Sample rate of the PCM the speech endpoint returns (OpenAI's `pcm` format). */
export const SPEECH_SAMPLE_RATE = 24_000;

/**
 * The default speech signal: a soft two-partial tone, one note per word with a smooth envelope
 * and short gaps, ~60 ms per character (clamped to 0.3–20 s, divided by `speed`). Deterministic.
 * Returns s16le mono PCM at `sampleRate` (default 24 kHz).
 */
export function synthesizeTone(
  text: string,
  sampleRate = SPEECH_SAMPLE_RATE,
  speed = 1,
): Uint8Array {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0) words.push('·');
  const totalMs =
    Math.min(20_000, Math.max(300, text.trim().length * 60)) / (speed > 0 ? speed : 1);
  const total = Math.max(1, Math.round((totalMs / 1000) * sampleRate));
  const weights = words.map((w) => w.length + 1);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const notes = [261.63, 293.66, 329.63, 392.0, 440.0, 523.25]; // C major pentatonic
  const pcm = new Uint8Array(total * 2);
  const view = new DataView(pcm.buffer);
  let start = 0;
  words.forEach((word, w) => {
    const length =
      w === words.length - 1 ? total - start : Math.round((total * (weights[w] ?? 1)) / weightSum);
    let hash = 0;
    for (const ch of word) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
    const freq = notes[hash % notes.length] ?? 440;
    const voiced = Math.max(1, Math.round(length * 0.85)); // the rest is a gap between words
    const ramp = Math.max(1, Math.min(Math.round(sampleRate * 0.02), Math.floor(voiced / 2)));
    for (let i = 0; i < voiced && start + i < total; i++) {
      const edge = Math.min(1, i / ramp, (voiced - 1 - i) / ramp);
      const envelope = 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, edge));
      const t = i / sampleRate;
      const value =
        0.22 *
        envelope *
        (Math.sin(2 * Math.PI * freq * t) + 0.3 * Math.sin(4 * Math.PI * freq * t));
      view.setInt16((start + i) * 2, Math.round(value * 32767), true);
    }
    start += length;
  });
  return pcm;
}
