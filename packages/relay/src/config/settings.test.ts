import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigError } from './config.js';
import { parseConfigFile, relayEnv, serveEnv } from './settings.js';

const parse = (value: unknown) =>
  parseConfigFile(JSON.stringify(value), 'site/voicebot.config.json');

test('the demo config and an empty one are valid', async () => {
  const demo = await readFile(
    new URL('../../../../demo/voicebot.config.json', import.meta.url),
    'utf8',
  );
  assert.ok(parseConfigFile(demo, 'demo/voicebot.config.json').bots?.length);
  assert.deepEqual(parse({}), {});
});

test('a mistake names the field and the file', () => {
  const cases: [unknown, RegExp][] = [
    [
      { bots: [{ id: 'a', systemPrompt: 42 }] },
      /site\/voicebot\.config\.json[\s\S]*bots\[0\]\.systemPrompt/,
    ],
    [{ limits: { maxTextChars: -1 } }, /limits\.maxTextChars: must be ≥ 0/],
    [{ limits: { maxTextCharz: 5 } }, /limits\.maxTextCharz/],
    [{ publicUrl: 'relay.example.com' }, /publicUrl: must be a URL/],
    [
      {
        tools: [
          {
            name: 't',
            description: 'd',
            parameters: {},
            http: { url: 'https://x.example/', method: 'FETCH' },
          },
        ],
      },
      /tools\[0\]\.http\.method/,
    ],
    [{ providers: { llm: { apiKey: 'sk-secret-in-a-file' } } }, /providers\.llm\.apiKey/],
    [{ botz: [] }, /botz/],
  ];
  for (const [value, message] of cases)
    assert.throws(
      () => parse(value),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(value),
    );
  assert.throws(() => parseConfigFile('{ not json', 'x.json'), /x\.json is not valid JSON/);
});

test('environment variables are checked once, naming the variable', () => {
  assert.deepEqual(relayEnv({}), {
    adminToken: undefined,
    metricsToken: undefined,
    metrics: true,
    trustProxy: false,
    databaseUrl: undefined,
    redisUrl: undefined,
    publicUrl: undefined,
    logLevel: 'info',
  });
  assert.equal(relayEnv({ VOICEBOT_METRICS: 'public' }).metrics, 'public');
  assert.equal(relayEnv({ VOICEBOT_METRICS: 'off' }).metrics, false);
  assert.throws(() => relayEnv({ VOICEBOT_METRICS: 'yes' }), /VOICEBOT_METRICS=yes/);
  assert.throws(() => relayEnv({ VOICEBOT_LOG_LEVEL: 'loud' }), /VOICEBOT_LOG_LEVEL=loud/);
  assert.equal(
    relayEnv({ DATABASE_URL: 'postgresql://u:p@db:5432/vb' }).databaseUrl,
    'postgresql://u:p@db:5432/vb',
  );
  assert.throws(
    () => relayEnv({ DATABASE_URL: 'mysql://u:hunter2@db/vb' }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /DATABASE_URL/.test(error.message) &&
      !error.message.includes('hunter2'),
  );
  assert.equal(
    relayEnv({ REDIS_URL: 'redis://:pw@cache:6379/1' }).redisUrl,
    'redis://:pw@cache:6379/1',
  );
  assert.throws(
    () => relayEnv({ REDIS_URL: 'cache:6379' }),
    (error: unknown) => error instanceof ConfigError && /REDIS_URL/.test(error.message),
  );
  assert.equal(
    relayEnv({ VOICEBOT_PUBLIC_URL: 'https://relay.example.com' }).publicUrl,
    'https://relay.example.com',
  );
  assert.throws(
    () => relayEnv({ VOICEBOT_PUBLIC_URL: 'relay.example.com' }),
    /VOICEBOT_PUBLIC_URL/,
  );
  assert.equal(serveEnv({ PORT: '9000' }).port, 9000);
  assert.throws(() => serveEnv({ PORT: '99999' }), /PORT=99999/);
  assert.throws(
    () => serveEnv({ VOICEBOT_SHUTDOWN_GRACE_MS: 'soon' }),
    /VOICEBOT_SHUTDOWN_GRACE_MS=soon/,
  );
});
