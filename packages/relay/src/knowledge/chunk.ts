/**
 * Sections → chunks that follow the headings: a chunk never spans two sections, holds whole
 * paragraphs while they fit in {@link MAX_CHUNK_CHARS}, splits a longer paragraph between sentences
 * (a longer sentence between words), and keeps its heading path. The document's title and URL stay
 * with the document row.
 */
import type { ExtractedDocument } from './extract.js';

/** ≈ 250–300 tokens: small enough to be about one thing, big enough to answer from. */
export const MAX_CHUNK_CHARS = 1_200;
/** Most chunks one document becomes (≈ 2.4 M characters; the extractor stops at 2 M). */
export const MAX_CHUNKS_PER_DOCUMENT = 2_000;

export interface Chunk {
  /** 0, 1, 2… in document order. */
  position: number;
  /** The heading path, `Parking › Bicycles` ('' before the first heading). */
  heading: string;
  text: string;
}

export const HEADING_SEPARATOR = ' › ';

/** Pieces of at most `max` characters, cut between sentences, else between words, else anywhere. */
function splitLong(paragraph: string, max: number): string[] {
  if (paragraph.length <= max) return [paragraph];
  const sentences = paragraph.match(/[^.!?]+(?:[.!?]+["')\]]*\s*|$)/g) ?? [paragraph];
  const pieces: string[] = [];
  let current = '';
  const push = () => {
    if (current.trim()) pieces.push(current.trim());
    current = '';
  };
  for (const sentence of sentences) {
    if (current.length + sentence.length <= max) {
      current += sentence;
      continue;
    }
    push();
    if (sentence.length <= max) {
      current = sentence;
      continue;
    }
    for (const word of sentence.split(/(?<=\s)/)) {
      if (current.length + word.length > max) push();
      if (word.length > max) {
        for (let i = 0; i < word.length; i += max) pieces.push(word.slice(i, i + max));
        continue;
      }
      current += word;
    }
  }
  push();
  return pieces;
}

export function chunkDocument(
  document: ExtractedDocument,
  maxChars: number = MAX_CHUNK_CHARS,
): Chunk[] {
  const chunks: Chunk[] = [];
  for (const section of document.sections) {
    const heading = section.headings.join(HEADING_SEPARATOR);
    let current = '';
    const push = () => {
      if (current && chunks.length < MAX_CHUNKS_PER_DOCUMENT)
        chunks.push({ position: chunks.length, heading, text: current });
      current = '';
    };
    for (const paragraph of section.text.split(/\n{2,}/)) {
      for (const piece of splitLong(paragraph.trim(), maxChars)) {
        if (!piece) continue;
        if (current && current.length + 2 + piece.length > maxChars) push();
        current = current ? `${current}\n\n${piece}` : piece;
      }
    }
    push();
  }
  return chunks;
}

/** What is embedded for a chunk: its title and heading path give a short chunk its topic. */
export function embeddingText(title: string, chunk: Pick<Chunk, 'heading' | 'text'>): string {
  return [title, chunk.heading, chunk.text].filter(Boolean).join('\n');
}
