/**
 * `POST {base}/embeddings`: OpenAI's embeddings wire format (`input` a string or an array of them,
 * `encoding_format` `float` or `base64` — little-endian float32, what the `openai` client asks for
 * by default — optional `dimensions`, usage tokens). The default vectors are a deterministic hashed
 * bag of words ({@link hashedEmbedding}): texts sharing words point the same way, so retrieval
 * tests are exact and the offline demo finds the page a question is about.
 */
import { isFailure, isRecord, str, type Endpoint } from './exchange.js';
import type { EmbeddingsRequest } from './types.js';

/** Default vector length (OpenAI's models: 1536 or 3072; the fake needs fewer for the same job). */
export const FAKE_EMBEDDING_DIMENSIONS = 256;
/** Most inputs per request (OpenAI's limit) and most dimensions the fake makes. */
const MAX_INPUTS = 2048;
const MAX_DIMENSIONS = 4096;

/** Words that say nothing about a text's topic. */
const STOPWORDS = new Set(
  (
    'a an and are as at be but by can do does for from how i if in is it me my of on or our so ' +
    'that the their there this to us was we what when where which who why will with you your'
  ).split(' '),
);

/** Lower-cased words, stop words dropped, a plural `s` taken off (so "prices" finds "price"). */
export function embeddingWords(text: string): string[] {
  const out: string[] = [];
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    let word = match[0];
    if (STOPWORDS.has(word)) continue;
    if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) word = word.slice(0, -1);
    out.push(word);
  }
  return out;
}

/** FNV-1a, 32 bits. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A unit vector: each word adds ±1 at a hashed position (the sign from another bit of the hash,
 * so collisions cancel rather than pile up). Text without words is the zero vector.
 */
export function hashedEmbedding(
  text: string,
  dimensions: number = FAKE_EMBEDDING_DIMENSIONS,
): Float32Array {
  const vector = new Float32Array(dimensions);
  for (const word of embeddingWords(text)) {
    const hash = fnv1a(word);
    vector[hash % dimensions] = (vector[hash % dimensions] ?? 0) + (hash & 0x80000000 ? -1 : 1);
  }
  let norm = 0;
  for (const x of vector) norm += x * x;
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] ?? 0) * scale;
  }
  return vector;
}

function base64OfFloats(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

export function registerEmbeddings({ app, base, options, begin }: Endpoint): void {
  app.post(`${base}/embeddings`, async (c) => {
    const ex = begin(c, 'embeddings');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      ex.received(null);
      return ex.error(400, 'We could not parse the JSON body of your request.');
    }
    ex.received(body);
    if (!isRecord(body)) return ex.error(400, 'The request body must be a JSON object.');
    const model = str(body['model']);
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    const raw = body['input'];
    const input = typeof raw === 'string' ? [raw] : raw;
    if (
      !Array.isArray(input) ||
      input.length === 0 ||
      !input.every((item): item is string => typeof item === 'string')
    )
      return ex.error(
        400,
        "'input' must be a string or a non-empty array of strings (token arrays are not supported by the fake).",
        'input',
      );
    if (input.length > MAX_INPUTS)
      return ex.error(400, `'input' may hold at most ${MAX_INPUTS} items.`, 'input');
    if (input.some((text) => text.length === 0))
      return ex.error(400, "'input' cannot contain an empty string.", 'input');
    const format = body['encoding_format'] ?? 'float';
    if (format !== 'float' && format !== 'base64')
      return ex.error(400, "'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
    const rawDimensions = body['dimensions'];
    if (
      rawDimensions !== undefined &&
      (typeof rawDimensions !== 'number' ||
        !Number.isInteger(rawDimensions) ||
        rawDimensions < 1 ||
        rawDimensions > MAX_DIMENSIONS)
    )
      return ex.error(400, `'dimensions' must be an integer from 1 to ${MAX_DIMENSIONS}.`);
    const dimensions = (rawDimensions as number | undefined) ?? FAKE_EMBEDDING_DIMENSIONS;
    const request: EmbeddingsRequest = { model, input, dimensions };
    const scripted = options.embed ? await options.embed(request) : undefined;
    if (scripted !== undefined && isFailure(scripted))
      return ex.failure(scripted, () => ({ steps: [], contentType: 'application/json' }));
    const vectors = scripted ?? input.map((text) => hashedEmbedding(text, dimensions));
    const tokens = input.reduce((n, text) => n + Math.max(1, Math.ceil(text.length / 4)), 0);
    const data = vectors.map((vector, index) => {
      const floats = vector instanceof Float32Array ? vector : Float32Array.from(vector);
      return {
        object: 'embedding',
        index,
        embedding: format === 'base64' ? base64OfFloats(floats) : Array.from(floats),
      };
    });
    return ex.respond(
      0,
      JSON.stringify({
        object: 'list',
        data,
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }),
      'application/json',
    );
  });
}
