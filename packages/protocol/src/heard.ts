export interface PlayedSegment {
  text: string;
  /** PCM16 bytes of the segment sent to the client so far. */
  bytes: number;
  /** False while the segment's audio is still streaming (its full length is not known yet). */
  complete?: boolean;
}

/** Speaking rate assumed for a segment whose audio has not fully arrived, when no other segment tells. */
const DEFAULT_MS_PER_CHAR = 65;

/**
 * What the visitor actually heard of a reply that was cut off after `playedMs` of playback:
 * every segment that played in full, plus the share of words of the one playing at the time.
 */
export function heardText(
  segments: readonly PlayedSegment[],
  playedMs: number,
  sampleRate: number,
): string {
  const bytesPerMs = (sampleRate * 2) / 1000;
  const finished = segments.filter((s) => s.complete !== false && s.bytes > 0);
  const finishedChars = finished.reduce((n, s) => n + s.text.length, 0);
  const bytesPerChar =
    finishedChars > 0
      ? finished.reduce((n, s) => n + s.bytes, 0) / finishedChars
      : DEFAULT_MS_PER_CHAR * bytesPerMs;
  let budget = Math.max(0, playedMs * bytesPerMs);
  const parts: string[] = [];
  for (const segment of segments) {
    if (budget <= 0 || segment.bytes === 0) break;
    const length =
      segment.complete === false
        ? Math.max(segment.bytes, segment.text.length * bytesPerChar)
        : segment.bytes;
    if (length <= budget) {
      parts.push(segment.text);
      budget -= length;
      continue;
    }
    const words = segment.text.split(/\s+/).filter(Boolean);
    const heardWords = Math.floor((budget / length) * words.length);
    if (heardWords > 0) parts.push(`${words.slice(0, heardWords).join(' ')}…`);
    break;
  }
  return parts.join(' ');
}
