import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { servedFake } from './served.fixture.js';

const served = servedFake();
const fake = served.fake;

describe('the composed app', () => {
  test('models list and mounting under another app', async () => {
    const models = [];
    for await (const model of served.client().models.list()) models.push(model.id);
    assert.ok(models.includes('whisper-1'));

    const outer = new Hono();
    outer.route('/_demo', fake.app);
    const res = await outer.request('/_demo/v1/models');
    assert.equal(res.status, 200);
    const missing = await outer.request('/_demo/v1/nope');
    assert.equal(missing.status, 404);
  });
});
