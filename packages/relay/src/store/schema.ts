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
  /**
   * Migration 006: the key's visitor secret (HS256 signing key of visitor tokens), or null. Kept
   * as is: verifying an HMAC needs the secret itself.
   */
  visitor_secret?: string | null;
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
  /** The signed-in visitor's id (migration 007), null for an anonymous visitor. */
  user_id: string | null;
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

/** Migration 004: one row per recorded conversation. Booleans are 0/1 integers. */
export interface ConversationRecordsTable {
  id: string;
  key_id: string;
  bot: string;
  /** Epoch milliseconds. */
  started_at: Count;
  updated_at: Count;
  /** When the conversation ends unless a socket resumes it (its analysis is due then). */
  ends_at: Count;
  /** Retention: deleted from then on. */
  expires_at: Count;
  status: 'open' | 'analysing' | 'ended';
  /** An analysing relay holds the row until then; after it, another may take it over. */
  claimed_until: Count;
  /** Times the conversation was resumed after it had ended (part of its event's idempotency id). */
  generation: number;
  transcripts: number;
  turns: number;
  handoff: number;
  /** JSON `{ reason, urgency }` of the last handoff. */
  handoff_detail: string | null;
  feedback_up: number;
  feedback_down: number;
  ended_at: Count | null;
  summary: string | null;
  sentiment: string | null;
  urgency: string | null;
  /** JSON object of the bot's `extract` fields. */
  extracted: string | null;
  analysis_error: string | null;
}

export interface ConversationRecordTurnsTable {
  seq: Generated<number | string>;
  conversation_id: string;
  /** Turn ids count per socket: (session, turn) names a turn. */
  session_id: string;
  turn_id: number;
  at: Count;
  user_text: string | null;
  assistant_text: string | null;
  interrupted: number;
  /** The turn's error code, when it failed. */
  error: string | null;
  /** JSON `done.metrics`. */
  metrics: string | null;
  /** JSON array of `{ name, ok, args, result?, error? }`. */
  tools: string;
  feedback_rating: string | null;
  feedback_comment: string | null;
  feedback_at: Count | null;
}

/** Migration 005: one row per webhook event and endpoint. */
export interface WebhookOutboxTable {
  id: string;
  /** The `webhook-id` header: the receiver's idempotency key. */
  message_id: string;
  event: string;
  bot: string;
  conversation_id: string | null;
  url: string;
  secret_env: string;
  body: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  created_at: Count;
  next_attempt_at: Count;
  /** A failed attempt after this time is the last (status `failed`). */
  give_up_at: Count;
  locked_until: Count;
  delivered_at: Count | null;
  last_status: number | null;
  last_error: string | null;
  /** JSON array of attempts `{ at, status?, error?, ms }` (the last 20). */
  log: string;
}

/** Migration 003: knowledge base collections (the name is what bots list in `knowledge`). */
export interface KnowledgeCollectionsTable {
  name: string;
  /** ISO times. */
  created_at: string;
  updated_at: string;
  /** Bumped by every change to the collection's documents. */
  version: Count;
}

export interface KnowledgeDocumentsTable {
  id: Generated<number | string>;
  collection: string;
  /** Where it came from: a URL, a file path, or `upload:<file name>`; unique per collection. */
  source: string;
  /** The address results cite (null: none known, e.g. a file added without `--base-url`). */
  url: string | null;
  title: string;
  format: string;
  /** sha256 of the extracted text: unchanged content is not embedded again. */
  content_hash: string;
  status: 'ready' | 'failed';
  /** Why the last ingest of this source failed (its earlier chunks stay searchable). */
  error: string | null;
  chunk_count: number;
  chars: number;
  /** The embeddings model of its chunks. */
  model: string;
  created_at: string;
  updated_at: string;
}

export interface KnowledgeChunksTable {
  id: Generated<number | string>;
  document_id: number | string;
  collection: string;
  position: number;
  title: string;
  heading: string;
  text: string;
  model: string;
  dimensions: number;
  /** Little-endian float32 × dimensions, normalised. */
  vector: Uint8Array;
}

/** Migration 008: console sign-ins (store/console-sessions.ts). */
export interface ConsoleSessionsTable {
  /** SHA-256 (hex) of the session id in the cookie. */
  id_hash: string;
  /** The address that signed in (the actor of what happens when the session ends by itself). */
  ip: string;
  /** Epoch milliseconds. */
  created_at: Count;
  expires_at: Count;
  /** JSON object: bot id → id of the try-out key made for this session. */
  try_keys: ColumnType<string, string | undefined, string>;
}

export interface Schema {
  meta: MetaTable;
  client_keys: ClientKeysTable;
  usage_days: UsageDaysTable;
  conversations: ConversationsTable;
  used_tokens: UsedTokensTable;
  audit_log: AuditLogTable;
  knowledge_collections: KnowledgeCollectionsTable;
  knowledge_documents: KnowledgeDocumentsTable;
  knowledge_chunks: KnowledgeChunksTable;
  conversation_records: ConversationRecordsTable;
  conversation_record_turns: ConversationRecordTurnsTable;
  webhook_outbox: WebhookOutboxTable;
  console_sessions: ConsoleSessionsTable;
}
