import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashedEmbedding } from './embeddings.js';
import { servedFake } from './served.fixture.js';

const served = servedFake();
const fake = served.fake;

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] ?? 0) * (b[i] ?? 0);
  return dot;
};

describe('embeddings', () => {
  test('the openai client (base64 by default) gets the same unit vectors as float JSON', async () => {
    const input = ['Free parking behind the clinic', 'Our prices for a check-up'];
    const viaClient = await served.client().embeddings.create({ model: 'emb', input });
    assert.equal(viaClient.data.length, 2);
    const recorded = await fake.waitForRequest('embeddings');
    assert.equal((recorded.body as { encoding_format?: string }).encoding_format, 'base64');
    const res = await fetch(`${served.url()}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'emb', input, encoding_format: 'float' }),
    });
    const json = (await res.json()) as {
      data: { index: number; embedding: number[] }[];
      usage: { prompt_tokens: number; total_tokens: number };
    };
    for (const [i, item] of json.data.entries()) {
      assert.equal(item.index, i);
      assert.equal(item.embedding.length, 256);
      assert.deepEqual(Array.from(viaClient.data[i]?.embedding ?? []), item.embedding);
      assert.ok(Math.abs(cosine(item.embedding, item.embedding) - 1) < 1e-5);
    }
    assert.ok(json.usage.prompt_tokens > 0);
    assert.equal(json.usage.total_tokens, json.usage.prompt_tokens);
  });

  test('texts sharing words are closer than texts that do not; plurals and stop words do not matter', () => {
    const question = hashedEmbedding('Where can I park?');
    const parking = hashedEmbedding('You can park for free behind the clinic.');
    const prices = hashedEmbedding('A check-up costs 80 dollars.');
    assert.ok(cosine(question, parking) > cosine(question, prices));
    assert.ok(Math.abs(cosine(hashedEmbedding('the prices'), hashedEmbedding('price')) - 1) < 1e-6);
    assert.deepEqual(hashedEmbedding('Parking!'), hashedEmbedding('parking'));
    assert.ok(hashedEmbedding('the of and').every((x) => x === 0));
  });

  test('dimensions are honoured; bad input is a 400 like OpenAI', async () => {
    const small = await served
      .client()
      .embeddings.create({ model: 'emb', input: 'hello world', dimensions: 8 });
    assert.equal(small.data[0]?.embedding.length, 8);
    for (const body of [
      { model: 'emb' },
      { model: 'emb', input: [] },
      { model: 'emb', input: [[1, 2]] },
      { model: 'emb', input: 'x', encoding_format: 'int8' },
      { model: 'emb', input: 'x', dimensions: 0 },
      { input: 'x' },
    ]) {
      const res = await fetch(`${served.url()}/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = (await res.json()) as { error: { type: string } };
      assert.equal(json.error.type, 'invalid_request_error');
    }
  });
});
