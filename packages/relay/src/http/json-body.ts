import type { Context } from 'hono';
import { RelayError } from './errors.js';

/** A request body that must be a JSON object; an empty one is `{}`. Anything else is a 400. */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RelayError('bad_request', 400, 'request body must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new RelayError('bad_request', 400, 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** The request's body through {@link parseJsonObject}. */
export async function jsonObject(c: Context): Promise<Record<string, unknown>> {
  return parseJsonObject(await c.req.text());
}
