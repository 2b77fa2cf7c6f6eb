import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, type BotConfig } from '../config/config.js';
import { parseConfigFile } from '../config/settings.js';
import { resolveWebhooks, validateRecordsConfig } from './config.js';

const bot = (extra: Partial<BotConfig>): BotConfig => ({
  id: 'desk',
  name: 'Desk',
  systemPrompt: 'Hi.',
  ...extra,
});
const records = { transcripts: true, retentionDays: 30 };

describe('records and webhooks configuration', () => {
  test('a bad extract schema, or feedback/extract without records, names the field', () => {
    const cases: [Partial<BotConfig>, RegExp][] = [
      [{ records, extract: { type: 'array' } }, /bot desk: extract\.type must be "object"/],
      [
        { records, extract: { type: 'object', properties: {} } },
        /extract\.properties must have 1 to 50/,
      ],
      [
        { records, extract: { type: 'object', properties: { name: { type: 'strng' } } } },
        /bot desk: extract is not a valid JSON Schema/,
      ],
      [
        { records, extract: { type: 'object', properties: { 'a b': { type: 'string' } } } },
        /extract\.properties\.a b/,
      ],
      [{ feedback: true }, /bot desk: feedback needs records/],
      [
        { extract: { type: 'object', properties: { name: { type: 'string' } } } },
        /extract needs records/,
      ],
      [{ records: { transcripts: true, retentionDays: 0 } }, /records\.retentionDays/],
    ];
    for (const [extra, message] of cases)
      assert.throws(
        () => validateRecordsConfig([bot(extra)]),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
        String(message),
      );
    validateRecordsConfig([
      bot({
        records,
        feedback: true,
        extract: { type: 'object', properties: { name: { type: 'string' } } },
      }),
    ]);
  });

  test('webhook secrets come from the named variable; a missing or short one is refused', () => {
    const endpoint = { url: 'https://crm.example.com/hook', secretEnv: 'CRM_SECRET' };
    const resolved = resolveWebhooks([bot({ webhooks: [endpoint] })], [endpoint], {
      CRM_SECRET: 'a-long-enough-secret',
    });
    assert.equal(resolved.global[0]?.secret, 'a-long-enough-secret');
    assert.deepEqual(resolved.byBot.get('desk')?.[0]?.events, [
      'conversation.ended',
      'handoff.requested',
    ]);
    assert.throws(
      () => resolveWebhooks([], [endpoint], {}),
      /webhooks\[0\]\.secretEnv names CRM_SECRET, which is not set/,
    );
    assert.throws(() => resolveWebhooks([], [endpoint], { CRM_SECRET: 'short' }), /at least 16/);
    assert.throws(
      () =>
        resolveWebhooks([bot({ webhooks: [{ ...endpoint, url: 'ftp://x' }] })], [], {
          CRM_SECRET: 'a-long-enough-secret',
        }),
      /bot desk: webhooks\[0\]\.url must be an http\(s\) URL/,
    );
  });

  test('the config file schema checks records, feedback and webhooks', () => {
    const file = (value: unknown) => JSON.stringify(value);
    assert.throws(
      () =>
        parseConfigFile(
          file({
            bots: [
              { id: 'a', systemPrompt: '', records: { transcripts: true, retentionDays: -1 } },
            ],
          }),
          'c.json',
        ),
      /bots\[0\]\.records\.retentionDays/,
    );
    assert.throws(
      () =>
        parseConfigFile(
          file({ webhooks: [{ url: 'https://x.example', secretEnv: 'A B' }] }),
          'c.json',
        ),
      /webhooks\[0\]\.secretEnv/,
    );
    const parsed = parseConfigFile(
      file({
        bots: [
          { id: 'a', systemPrompt: '', records: { ...records, redact: ['email'] }, feedback: true },
        ],
        webhooks: [{ url: 'https://x.example/h', events: ['handoff.requested'], secretEnv: 'X' }],
      }),
      'c.json',
    );
    assert.equal(parsed.webhooks?.[0]?.events?.[0], 'handoff.requested');
  });
});
