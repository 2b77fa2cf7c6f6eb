import * as v from 'valibot';
import { ProtocolError } from './errors.js';
import {
  CLIENT_MESSAGE_TYPES,
  ClientMessageSchema,
  PROTOCOL_VERSION,
  ServerMessageSchema,
  type ClientMessage,
  type ClientMessageInput,
  type ServerMessage,
} from './messages.js';

/** Largest JSON control message either side accepts by default (bytes of UTF-8). */
export const MAX_JSON_MESSAGE_BYTES = 16 * 1024;

function parseJsonObject(raw: string): { type?: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ProtocolError('bad_json', 'message is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('invalid_message', 'message must be a JSON object');
  }
  return value as { type?: unknown };
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parse and validate one client → relay text frame. Throws `ProtocolError` with a precise code. */
export function parseClientMessage(raw: string): ClientMessage {
  const obj = parseJsonObject(raw);
  if (
    typeof obj.type !== 'string' ||
    !(CLIENT_MESSAGE_TYPES as readonly string[]).includes(obj.type)
  ) {
    throw new ProtocolError(
      'unknown_type',
      `unknown message type ${JSON.stringify(obj.type ?? null).slice(0, 40)}`,
    );
  }
  const result = v.safeParse(ClientMessageSchema, obj);
  if (!result.success)
    throw new ProtocolError(
      'invalid_message',
      `invalid ${obj.type}: ${describeIssues(result.issues)}`,
    );
  return result.output;
}

/** Parse one relay → client text frame. Unknown types are returned as `undefined` (forward compatible). */
export function parseServerMessage(raw: string): ServerMessage | undefined {
  const obj = parseJsonObject(raw);
  const result = v.safeParse(ServerMessageSchema, obj);
  return result.success ? result.output : undefined;
}

export function encodeClientMessage(message: ClientMessageInput): string {
  return JSON.stringify(message);
}

export function encodeServerMessage(message: ServerMessage): string {
  return JSON.stringify(message);
}

export function majorVersion(version: string): number | undefined {
  const match = /^(\d+)\.\d+\.\d+(?:[-+].*)?$/.exec(version);
  return match ? Number(match[1]) : undefined;
}

/** True when a peer speaking `version` can talk to this build. */
export function isCompatibleVersion(version: string, ours: string = PROTOCOL_VERSION): boolean {
  const theirs = majorVersion(version);
  return theirs !== undefined && theirs === majorVersion(ours);
}
