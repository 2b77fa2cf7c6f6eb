/**
 * Texts → unit vectors, from any OpenAI-compatible `/v1/embeddings` endpoint (the `embeddings`
 * provider stage), through the relay's own upstream client (its timeout, retries and error types,
 * without loading the `openai` SDK). Requests are batched; vectors come back normalised, so cosine
 * similarity is a dot product.
 */
import { APIError } from 'openai/core/error';
import type { StageConfig } from '../config/config.js';
import { JSON_TYPE, UpstreamClient, readBody, undiciTransport } from '../providers/upstream.js';
import { KnowledgeError } from './errors.js';

/** Inputs per request, and characters per request (a provider's token limit is ≈ 300 k per request). */
const BATCH_INPUTS = 64;
const BATCH_CHARS = 120_000;
/** Characters of one input: a chunk is far smaller; a query the model writes is cut here. */
const MAX_INPUT_CHARS = 8_000;
/** Bytes of one response read at most (64 vectors of 3072 dimensions are ≈ 1 MB of base64). */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

interface EmbeddingsResponse {
  data: { index: number; embedding: unknown }[];
}

export interface Embedder {
  /** The model the vectors come from (stored with each chunk: vectors of two models never mix). */
  readonly model: string;
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** A vector scaled to length 1 (the zero vector stays zero). */
export function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += (vector[i] ?? 0) ** 2;
  if (norm === 0) return vector;
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}

/** One `embedding` of a response: base64 little-endian float32 (asked for), or a JSON array (servers that ignore the format). */
function decode(value: unknown): Float32Array {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'base64');
    const out = new Float32Array(bytes.byteLength >> 2);
    new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
    return out;
  }
  if (Array.isArray(value) && value.every((x) => typeof x === 'number'))
    return Float32Array.from(value);
  throw new KnowledgeError(
    'embeddings_failed',
    'the embeddings provider sent a vector that is not one',
  );
}

function parseResponse(text: string): EmbeddingsResponse {
  if (text.length >= MAX_RESPONSE_BYTES)
    throw new KnowledgeError(
      'embeddings_failed',
      `the embeddings provider sent more than ${MAX_RESPONSE_BYTES} bytes`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const data = (parsed as { data?: unknown } | undefined)?.data;
  if (
    !Array.isArray(data) ||
    !data.every(
      (item: unknown) =>
        typeof item === 'object' &&
        item !== null &&
        typeof (item as { index?: unknown }).index === 'number',
    )
  )
    throw new KnowledgeError(
      'embeddings_failed',
      'the embeddings provider sent a response that is not a list of embeddings',
    );
  return { data: data as EmbeddingsResponse['data'] };
}

function batches(texts: readonly string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const raw of texts) {
    const text = raw.slice(0, MAX_INPUT_CHARS) || ' ';
    if (
      current.length >= BATCH_INPUTS ||
      (current.length > 0 && chars + text.length > BATCH_CHARS)
    ) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(text);
    chars += text.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function createEmbedder(stage: StageConfig): Embedder {
  const client = new UpstreamClient(stage, undiciTransport());
  const unaborted = new AbortController().signal;
  return {
    model: stage.model,
    async embed(texts, signal) {
      const vectors: Float32Array[] = [];
      let dimensions: number | undefined;
      for (const input of batches(texts)) {
        let response: EmbeddingsResponse;
        try {
          const { body } = await client.post(
            '/embeddings',
            JSON.stringify({ model: stage.model, input, encoding_format: 'base64' }),
            JSON_TYPE,
            signal ?? unaborted,
          );
          response = parseResponse(await readBody(body, MAX_RESPONSE_BYTES));
        } catch (error) {
          if (signal?.aborted || error instanceof KnowledgeError) throw error;
          const status = error instanceof APIError && error.status ? ` (HTTP ${error.status})` : '';
          throw new KnowledgeError(
            'embeddings_failed',
            `the embeddings provider failed${status}: ${(error as Error).message}`,
          );
        }
        const byIndex = [...response.data].sort((a, b) => a.index - b.index);
        if (byIndex.length !== input.length)
          throw new KnowledgeError(
            'embeddings_failed',
            `the embeddings provider returned ${byIndex.length} vectors for ${input.length} texts`,
          );
        for (const item of byIndex) {
          const vector = decode(item.embedding);
          dimensions ??= vector.length;
          if (vector.length === 0 || vector.length !== dimensions || !vector.every(Number.isFinite))
            throw new KnowledgeError(
              'embeddings_failed',
              'the embeddings provider returned vectors of different lengths or invalid numbers',
            );
          vectors.push(normalize(vector));
        }
      }
      return vectors;
    },
  };
}
