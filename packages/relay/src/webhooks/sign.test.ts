import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { signWebhook, verifyWebhookSignature } from './sign.js';
import { DEFAULT_RETRY, retryDelayMs } from './backoff.js';

type Verify = (secret: string, headers: Record<string, string>, rawBody: string) => boolean;

/** The verification snippet of the README's "Webhooks" section, imported as a module. */
async function readmeVerifier(): Promise<Verify> {
  const readme = await readFile(resolve(import.meta.dirname, '../../../../README.md'), 'utf8');
  const match = /<!-- webhook-verify -->\n```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(match?.[1], 'README has the webhook verification snippet');
  const file = join(tmpdir(), `verify-webhook-${process.pid}-${Date.now()}.mjs`);
  await writeFile(file, match[1]);
  try {
    const module = (await import(pathToFileURL(file).href)) as { verifyWebhook: Verify };
    return module.verifyWebhook;
  } finally {
    await rm(file, { force: true });
  }
}

describe('webhook signatures', () => {
  const secret = 'whsec-test-0123456789abcdef';
  const body = JSON.stringify({ type: 'conversation.ended', data: { summary: 'Zürich ✓' } });

  test("the README's snippet accepts the relay's signature and refuses tampering", async () => {
    const verify = await readmeVerifier();
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(secret, 'msg_1', timestamp, body),
    };
    assert.equal(verify(secret, headers, body), true);
    assert.equal(verify(secret, headers, body.replace('Zürich', 'Zurich')), false);
    assert.equal(verify('another-secret-0123456789', headers, body), false);
    assert.equal(verify(secret, { ...headers, 'webhook-id': 'msg_2' }, body), false);
    const old = timestamp - 600;
    assert.equal(
      verify(
        secret,
        {
          ...headers,
          'webhook-timestamp': String(old),
          'webhook-signature': signWebhook(secret, 'msg_1', old, body),
        },
        body,
      ),
      false,
    );
    // Several signatures (a secret being rotated): any one may match.
    assert.equal(
      verify(
        secret,
        { ...headers, 'webhook-signature': `v1,bm9wZQ== ${headers['webhook-signature']}` },
        body,
      ),
      true,
    );
  });

  test('verifyWebhookSignature agrees', () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = signWebhook(secret, 'msg_1', timestamp, body);
    assert.match(signature, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.ok(
      verifyWebhookSignature(
        secret,
        { id: 'msg_1', timestamp: String(timestamp), signature },
        body,
      ),
    );
    assert.ok(
      !verifyWebhookSignature(
        secret,
        { id: 'msg_1', timestamp: String(timestamp), signature },
        `${body} `,
      ),
    );
  });
});

describe('retry schedule', () => {
  test('30 s doubling, capped at an hour, about a day of attempts', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => retryDelayMs(n) / 1000),
      [30, 60, 120, 240, 480, 960, 1920, 3600, 3600],
    );
    let elapsed = 0;
    let attempts = 0;
    while (elapsed + retryDelayMs(attempts + 1) <= DEFAULT_RETRY.giveUpAfterMs) {
      attempts++;
      elapsed += retryDelayMs(attempts);
    }
    assert.ok(attempts >= 25 && attempts <= 35, `${attempts} retries in a day`);
    assert.equal(retryDelayMs(1000), DEFAULT_RETRY.maxMs);
  });
});
