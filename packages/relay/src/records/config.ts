/**
 * Checks, at start, what bots say about records, extraction, feedback and webhooks, and reads the
 * webhook secrets from the environment. Every mistake is a ConfigError naming the field.
 */
import type { Ajv } from 'ajv';
import {
  ConfigError,
  type BotConfig,
  type Env,
  type WebhookEndpointConfig,
} from '../config/config.js';
import {
  WEBHOOK_EVENTS,
  type WebhookEndpoint,
  type WebhookEndpoints,
  type WebhookEvent,
} from '../webhooks/outbox.js';
import { createAjv } from '../tools/json-schema.js';

/** Extracted fields a bot may ask for at most. */
export const MAX_EXTRACT_FIELDS = 50;
const REDACT_KINDS = new Set(['email', 'phone', 'card']);

function endpoint(config: WebhookEndpointConfig, field: string, env: Env): WebhookEndpoint {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new ConfigError(`${field}.url is not a URL: ${JSON.stringify(config.url)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError(`${field}.url must be an http(s) URL`);
  if (url.username || url.password)
    throw new ConfigError(`${field}.url must not hold credentials (sign with secretEnv instead)`);
  const events = config.events ?? WEBHOOK_EVENTS;
  const unknown = events.find((e) => !WEBHOOK_EVENTS.includes(e));
  if (unknown !== undefined || events.length === 0)
    throw new ConfigError(`${field}.events must list events among ${WEBHOOK_EVENTS.join(', ')}`);
  if (typeof config.secretEnv !== 'string' || !/^\w{1,128}$/.test(config.secretEnv))
    throw new ConfigError(`${field}.secretEnv must name an environment variable`);
  const secret = env[config.secretEnv];
  if (!secret)
    throw new ConfigError(`${field}.secretEnv names ${config.secretEnv}, which is not set`);
  if (secret.length < 16)
    throw new ConfigError(`${field}.secretEnv: ${config.secretEnv} must be at least 16 characters`);
  return {
    url: url.toString(),
    events: [...new Set<WebhookEvent>(events)],
    secretEnv: config.secretEnv,
    secret,
  };
}

/** The webhook endpoints of every bot and the global ones, secrets read from `env`. */
export function resolveWebhooks(
  bots: readonly BotConfig[],
  global: readonly WebhookEndpointConfig[],
  env: Env,
): WebhookEndpoints {
  return {
    global: global.map((config, i) => endpoint(config, `webhooks[${i}]`, env)),
    byBot: new Map(
      bots.map((bot) => [
        bot.id,
        (bot.webhooks ?? []).map((config, i) =>
          endpoint(config, `bot ${bot.id}: webhooks[${i}]`, env),
        ),
      ]),
    ),
  };
}

/** Checks `records`, `extract` and `feedback` of every bot. */
export function validateRecordsConfig(bots: readonly BotConfig[]): void {
  let ajv: Ajv | undefined;
  for (const bot of bots) {
    const where = `bot ${bot.id}`;
    const records = bot.records;
    if (records !== undefined) {
      if (typeof records.transcripts !== 'boolean')
        throw new ConfigError(`${where}: records.transcripts must be true or false`);
      if (
        typeof records.retentionDays !== 'number' ||
        !(records.retentionDays > 0) ||
        records.retentionDays > 3650
      )
        throw new ConfigError(
          `${where}: records.retentionDays must be a number of days (0 to 3650]`,
        );
      if (
        records.redact !== undefined &&
        (!Array.isArray(records.redact) || !records.redact.every((k) => REDACT_KINDS.has(k)))
      )
        throw new ConfigError(`${where}: records.redact may list email, phone and card`);
    }
    if (bot.feedback === true && records === undefined)
      throw new ConfigError(`${where}: feedback needs records (feedback is stored with them)`);
    if (bot.extract !== undefined) {
      if (records === undefined)
        throw new ConfigError(`${where}: extract needs records (the fields are stored with them)`);
      ajv ??= createAjv({ strict: false });
      checkExtract(bot.extract, `${where}: extract`, ajv);
    }
  }
}

function checkExtract(schema: Record<string, unknown>, field: string, ajv: Ajv): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    throw new ConfigError(`${field} must be a JSON Schema object`);
  if (schema['type'] !== 'object') throw new ConfigError(`${field}.type must be "object"`);
  const properties = schema['properties'];
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties))
    throw new ConfigError(`${field}.properties must be an object of field schemas`);
  const names = Object.keys(properties);
  if (names.length === 0 || names.length > MAX_EXTRACT_FIELDS)
    throw new ConfigError(`${field}.properties must have 1 to ${MAX_EXTRACT_FIELDS} fields`);
  for (const name of names) {
    if (!/^[A-Za-z_][\w-]{0,63}$/.test(name))
      throw new ConfigError(
        `${field}.properties.${name}: a field name is 1-64 letters, digits, _ or -`,
      );
    const property = (properties as Record<string, unknown>)[name];
    if (typeof property !== 'object' || property === null || Array.isArray(property))
      throw new ConfigError(`${field}.properties.${name} must be a JSON Schema object`);
  }
  try {
    ajv.compile(schema);
  } catch (error) {
    throw new ConfigError(`${field} is not a valid JSON Schema: ${(error as Error).message}`);
  }
}
