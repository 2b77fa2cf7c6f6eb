import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Hono } from 'hono';
import { createFakeUpstream } from './index.js';

const fake = createFakeUpstream();
let server: { url: string; close(): Promise<void> };
let client: OpenAI;

before(async () => {
  server = await fake.listen();
  client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0, timeout: 3000 });
});
after(async () => {
  await server.close();
});

describe('the composed app', () => {
  test('models list and mounting under another app', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    assert.ok(models.includes('whisper-1'));

    const outer = new Hono();
    outer.route('/_demo', fake.app);
    const res = await outer.request('/_demo/v1/models');
    assert.equal(res.status, 200);
    const missing = await outer.request('/_demo/v1/nope');
    assert.equal(missing.status, 404);
  });
});
