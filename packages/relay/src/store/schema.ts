/**
 * The tables of the relay's database, as Kysely sees them. The same schema runs on SQLite and
 * PostgreSQL: JSON is kept as text, times as ISO text (keys, audit) or epoch numbers (expiries).
 * PostgreSQL returns `bigint` columns as strings, hence `Count` (read with `Number()`).
 */
import type { ColumnType, Generated } from 'kysely';

/** A `bigint` column: a number going in, a number or (PostgreSQL) a decimal string coming out. */
export type Count = ColumnType<number | string, number, number>;

export interface MetaTable {
  key: string;
  value: string;
}

export interface ClientKeysTable {
  id: string;
  label: string;
  hash: string;
  hint: string;
  /** JSON array of origin patterns. */
  origins: string;
  /** JSON array of bot ids. */
  bots: string;
  /** JSON object of per-key limits, or null. */
  limits: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface UsageDaysTable {
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  key_id: string;
  sessions: Count;
  sockets: Count;
  turns: Count;
  /** Visitor audio in bytes of 16 kHz PCM16, exactly (the API shows ms = bytes / 32). */
  audio_in_bytes: Count;
  audio_out_ms: Count;
  prompt_tokens: Count;
  completion_tokens: Count;
  tts_chars: Count;
  /** Added by migration 002. */
  speculative_confirmed: Count;
  speculative_discarded: Count;
  /** JSON object: error code → count. */
  errors: string;
}

export interface ConversationsTable {
  id: string;
  key_id: string;
  bot: string;
  /** JSON array of messages. */
  messages: string;
  page_metadata: string;
  tool_metadata: string;
  /** Epoch milliseconds. */
  created_at: Count;
  updated_at: Count;
  expires_at: Count;
}

export interface UsedTokensTable {
  jti: string;
  /** Unix seconds. */
  expires_at: Count;
}

export interface AuditLogTable {
  id: Generated<number | string>;
  /** ISO time. */
  at: string;
  /** JSON: who did it (`{ kind: 'admin-api', ip }`, `{ kind: 'cli', user }`, …). */
  actor: string;
  action: string;
  key_id: string | null;
  /** JSON. */
  detail: string;
}

export interface Schema {
  meta: MetaTable;
  client_keys: ClientKeysTable;
  usage_days: UsageDaysTable;
  conversations: ConversationsTable;
  used_tokens: UsedTokensTable;
  audit_log: AuditLogTable;
}
