/**
 * The console's client of the relay's admin API. The browser holds the session cookie (HttpOnly);
 * this keeps the session's CSRF token and sends it on every request that changes something.
 * Every failure becomes an {@link ApiError} with the relay's error code and a message for people.
 */

export const CSRF_HEADER = 'x-voicebot-csrf';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The relay's error code (`bad_request`, `unauthorized`, …), or `network` / `bad_response`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The session ended (expired, signed out elsewhere): the console shows the sign-in form. */
  get signedOut(): boolean {
    return this.status === 401;
  }
}

export interface Bot {
  id: string;
  name?: string;
}

export interface SessionInfo {
  csrf: string;
  expires_at: string;
  bots: Bot[];
  widget_url: string | null;
}

export interface KeyLimits {
  [field: string]: number | undefined;
}

export interface ClientKey {
  id: string;
  label: string;
  hint?: string;
  origins: string[];
  bots: string[];
  created_at: string;
  revoked_at: string | null;
  limits: KeyLimits;
  effective_limits: Record<string, number>;
  open_sessions: number;
}

export interface DayUsage {
  date: string;
  sessions: number;
  turns: number;
  audio_in_minutes: number;
  audio_out_minutes: number;
  llm_tokens: number;
  errors: Record<string, number>;
}

export interface UsageReport {
  days: number;
  totals: DayUsage[];
  keys: { key_id: string; label: string; revoked: boolean; days: DayUsage[] }[];
}

export interface LiveFigures {
  at: string;
  open_sessions: number;
  turns_today: number;
  turns_per_minute: number | null;
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface LatencyReport {
  days: number;
  series: ({ date: string; turns: number } & Record<
    'stt_ms' | 'llm_ttft_ms' | 'first_audio_ms',
    Percentiles
  >)[];
}

export interface TurnMetrics {
  stt_ms?: number;
  llm_ttft_ms?: number;
  first_sentence_ms?: number;
  tts_ttfb_ms?: number;
  first_audio_ms?: number;
  total_ms: number;
}

export interface ConversationSummary {
  id: string;
  key_id: string;
  bot: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  turn_count: number;
  handoff: boolean;
  handoff_detail: { reason?: string; urgency?: string } | null;
  feedback: { up: number; down: number };
  summary: string | null;
  sentiment: string | null;
  urgency: string | null;
  extracted: Record<string, unknown> | null;
  analysis_error: string | null;
}

export interface ConversationTurn {
  session_id: string;
  turn_id: number;
  at: string;
  user: string | null;
  assistant: string | null;
  interrupted: boolean;
  error: string | null;
  metrics: TurnMetrics | null;
  tools: { name: string; ok: boolean; args: unknown; result?: unknown; error?: string }[];
  feedback: { rating: 'up' | 'down'; comment: string | null } | null;
}

export type Conversation = ConversationSummary & { turns: ConversationTurn[] };

export interface ConversationFilter {
  key?: string;
  bot?: string;
  from?: string;
  to?: string;
  sentiment?: string;
  urgency?: string;
  handoff?: string;
  feedback?: string;
}

export interface Collection {
  name: string;
  documents: number;
  chunks: number;
  updated_at: string;
}

export interface KnowledgeDocument {
  id: number;
  source: string;
  url: string | null;
  title: string;
  format: string;
  status: 'ready' | 'failed';
  error: string | null;
  chunk_count: number;
  updated_at: string;
}

export interface IngestReport {
  added: number;
  updated: number;
  unchanged: number;
  failed: number;
  documents: { source?: string; status?: string; error?: string; [field: string]: unknown }[];
}

export interface SearchResult {
  title: string;
  url: string | null;
  source: string;
  heading: string;
  text: string;
  score: number;
  collection: string;
  chunk_id: number;
}

/** Who made an audit-log change (the relay's `AuditActor`). */
export type AuditActor =
  | { kind: 'admin-api'; ip: string }
  | { kind: 'console'; ip: string }
  | { kind: 'cli'; user: string }
  | { kind: 'import'; file: string }
  | { kind: 'code'; name?: string };

export interface AuditEntry {
  id: number;
  at: string;
  actor: AuditActor;
  action: string;
  key_id: string | null;
  detail: Record<string, unknown>;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
export type WebhookEvent = 'conversation.ended' | 'handoff.requested';

export interface Delivery {
  id: string;
  message_id: string;
  event: string;
  bot: string;
  conversation_id: string | null;
  url: string;
  status: DeliveryStatus;
  attempts: number;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_status: number | null;
  last_error: string | null;
  log: { at: string; status?: number; error?: string; ms: number }[];
}

export interface DeliveryFilter {
  status?: DeliveryStatus;
  event?: WebhookEvent;
  conversation?: string;
}

export interface DeliveryPage {
  deliveries: Delivery[];
  next_cursor: string | null;
  /** Whether the relay has any webhook endpoint (older relays leave it out). */
  configured?: boolean;
}

/** The relay's cap on one knowledge request body (`MAX_KNOWLEDGE_BODY_BYTES`, http/admin-knowledge.ts). */
export const MAX_KNOWLEDGE_BODY_BYTES = 32 * 1024 * 1024;
/** Room left in the body for the JSON around the files (names, quotes, commas). */
const JSON_ALLOWANCE_BYTES = 64 * 1024;
/** The most file bytes one upload takes: files go base64 (4 characters per 3 bytes) in JSON. */
export const MAX_UPLOAD_BYTES =
  Math.floor((MAX_KNOWLEDGE_BODY_BYTES - JSON_ALLOWANCE_BYTES) / 4) * 3;

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

const SAFE = new Set(['GET', 'HEAD']);

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A "to" date (`YYYY-MM-DD`) includes that day: the API's bound is exclusive, so the next day's start. */
function inclusive(filter: ConversationFilter): ConversationFilter {
  if (!filter.to || !/^\d{4}-\d{2}-\d{2}$/.test(filter.to)) return filter;
  const next = new Date(Date.parse(`${filter.to}T00:00:00Z`) + 86_400_000);
  return { ...filter, to: next.toISOString().slice(0, 10) };
}

export class ConsoleApi {
  private csrf: string | undefined;
  private readonly fetch: Fetch;

  constructor(
    /** The relay's origin ('' in the console page: same origin). */
    private readonly base = '',
    fetchImpl?: Fetch,
  ) {
    this.fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  }

  get signedIn(): boolean {
    return this.csrf !== undefined;
  }

  /** One JSON request; anything but 2xx throws {@link ApiError}. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (!SAFE.has(method) && this.csrf) headers[CSRF_HEADER] = this.csrf;
    let response: Response;
    try {
      response = await this.fetch(`${this.base}${path}`, {
        method,
        headers,
        credentials: 'same-origin',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw new ApiError(
        0,
        'network',
        `the relay did not answer (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (response.status === 401) this.csrf = undefined;
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)
        ?.error;
      throw new ApiError(
        response.status,
        typeof error?.code === 'string' ? error.code : `http_${response.status}`,
        typeof error?.message === 'string'
          ? error.message
          : `the relay answered ${response.status} ${response.statusText}`.trim(),
      );
    }
    if (parsed === undefined && text)
      throw new ApiError(response.status, 'bad_response', 'the relay did not answer JSON');
    return parsed as T;
  }

  // ---- session -------------------------------------------------------------------------------

  async signIn(token: string): Promise<SessionInfo> {
    const session = await this.request<SessionInfo>('POST', '/console/session', { token });
    this.csrf = session.csrf;
    return session;
  }

  /** The session the cookie names (after a reload), or undefined when not signed in. */
  async resume(): Promise<SessionInfo | undefined> {
    try {
      const session = await this.request<SessionInfo>('GET', '/console/session');
      this.csrf = session.csrf;
      return session;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return undefined;
      throw error;
    }
  }

  async signOut(): Promise<void> {
    await this.request('DELETE', '/console/session');
    this.csrf = undefined;
  }

  tryKey(bot: string): Promise<{ bot: string; key_id: string; key: string }> {
    return this.request('POST', '/console/try-key', { bot });
  }

  // ---- keys ----------------------------------------------------------------------------------

  async keys(): Promise<ClientKey[]> {
    return (await this.request<{ keys: ClientKey[] }>('GET', '/admin/keys')).keys;
  }

  key(id: string): Promise<ClientKey> {
    return this.request('GET', `/admin/keys/${encodeURIComponent(id)}`);
  }

  createKey(input: {
    label: string;
    origins: string[];
    bots: string[];
    limits?: KeyLimits;
  }): Promise<ClientKey & { key: string }> {
    return this.request('POST', '/admin/keys', input);
  }

  updateKey(
    id: string,
    patch: {
      label?: string;
      origins?: string[];
      bots?: string[];
      limits?: Record<string, number | null>;
    },
  ): Promise<ClientKey> {
    return this.request('PATCH', `/admin/keys/${encodeURIComponent(id)}`, patch);
  }

  revokeKey(
    id: string,
  ): Promise<{ id: string; revoked_at: string | null; closed_sessions: number }> {
    return this.request('POST', `/admin/keys/${encodeURIComponent(id)}/revoke`);
  }

  // ---- audit log -----------------------------------------------------------------------------

  /** Newest first (the relay caps `limit` at 500). */
  async audit(options: { limit?: number; key?: string } = {}): Promise<AuditEntry[]> {
    return (
      await this.request<{ entries: AuditEntry[] }>(
        'GET',
        `/admin/audit${query({ limit: options.limit, key: options.key })}`,
      )
    ).entries;
  }

  // ---- webhooks ------------------------------------------------------------------------------

  deliveries(filter: DeliveryFilter = {}, cursor?: string): Promise<DeliveryPage> {
    return this.request(
      'GET',
      `/admin/webhooks/deliveries${query({ ...filter, limit: 50, cursor })}`,
    );
  }

  delivery(id: string): Promise<Delivery> {
    return this.request('GET', `/admin/webhooks/deliveries/${encodeURIComponent(id)}`);
  }

  /** Queues the delivery again now (a fresh day of retries); the row as it is afterwards. */
  retryDelivery(id: string): Promise<Delivery> {
    return this.request('POST', `/admin/webhooks/deliveries/${encodeURIComponent(id)}/retry`);
  }

  // ---- usage ---------------------------------------------------------------------------------

  usage(days: number, key?: string): Promise<UsageReport> {
    return this.request('GET', `/admin/usage${query({ days, key })}`);
  }

  live(): Promise<LiveFigures> {
    return this.request('GET', '/admin/usage/live');
  }

  latency(days: number): Promise<LatencyReport> {
    return this.request('GET', `/admin/usage/latency${query({ days })}`);
  }

  // ---- conversations -------------------------------------------------------------------------

  conversations(
    filter: ConversationFilter,
    cursor?: string,
  ): Promise<{ conversations: ConversationSummary[]; next_cursor: string | null }> {
    return this.request(
      'GET',
      `/admin/conversations${query({ ...inclusive(filter), limit: 50, cursor })}`,
    );
  }

  conversation(id: string): Promise<Conversation> {
    return this.request('GET', `/admin/conversations/${encodeURIComponent(id)}`);
  }

  deleteConversation(id: string): Promise<{ deleted: boolean }> {
    return this.request('DELETE', `/admin/conversations/${encodeURIComponent(id)}`);
  }

  /** The export's URL (a GET the browser downloads with the session cookie). */
  exportUrl(filter: ConversationFilter): string {
    return `${this.base}/admin/conversations/export${query({ ...inclusive(filter) })}`;
  }

  // ---- knowledge -----------------------------------------------------------------------------

  async collections(): Promise<Collection[]> {
    return (
      await this.request<{ collections: Collection[] }>('GET', '/admin/knowledge/collections')
    ).collections;
  }

  createCollection(name: string): Promise<Collection> {
    return this.request('POST', '/admin/knowledge/collections', { name });
  }

  deleteCollection(name: string): Promise<{ name: string; deleted: boolean }> {
    return this.request('DELETE', `/admin/knowledge/collections/${encodeURIComponent(name)}`);
  }

  async documents(collection: string): Promise<KnowledgeDocument[]> {
    return (
      await this.request<{ documents: KnowledgeDocument[] }>(
        'GET',
        `/admin/knowledge/collections/${encodeURIComponent(collection)}/documents`,
      )
    ).documents;
  }

  addDocuments(
    collection: string,
    input: { urls?: string[]; files?: { filename: string; content: string }[] },
  ): Promise<IngestReport> {
    return this.request(
      'POST',
      `/admin/knowledge/collections/${encodeURIComponent(collection)}/documents`,
      input,
    );
  }

  removeDocument(collection: string, id: number): Promise<{ id: number; deleted: boolean }> {
    return this.request(
      'DELETE',
      `/admin/knowledge/collections/${encodeURIComponent(collection)}/documents/${id}`,
    );
  }

  reindex(collection: string): Promise<IngestReport> {
    return this.request(
      'POST',
      `/admin/knowledge/collections/${encodeURIComponent(collection)}/reindex`,
      {},
    );
  }

  search(
    q: string,
    collections?: string[],
  ): Promise<{ query: string; took_ms: number; results: SearchResult[] }> {
    return this.request(
      'GET',
      `/admin/knowledge/search${query({ q, limit: 4, collections: collections?.join(',') })}`,
    );
  }
}
