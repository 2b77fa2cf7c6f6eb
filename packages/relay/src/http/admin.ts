/**
 * The admin HTTP API, mounted at `/admin` when an admin token is configured:
 *
 *   POST   /admin/keys                 create a key (the secret is in this response only)
 *   GET    /admin/keys                 list keys
 *   GET    /admin/keys/:id             one key, with its effective limits and open sessions
 *   PATCH  /admin/keys/:id             change origins, bots, label, limits
 *   POST   /admin/keys/:id/revoke      revoke (also DELETE /admin/keys/:id); closes its open sessions
 *                                      and ends its conversations now (no resuming them)
 *   GET    /admin/keys/:id/usage       usage per UTC day (?days=1..31)
 *   POST   /admin/keys/:id/visitor-secret  a new visitor secret (signs visitor tokens; shown once);
 *                                          DELETE removes it
 *   GET    /admin/audit                who changed which key, newest first (?limit=1..500, ?key=ID)
 *   …/admin/conversations, …/admin/webhooks/deliveries: records and webhooks (admin-conversations.ts)
 *   …/admin/knowledge/…: the knowledge base's collections, documents, search (admin-knowledge.ts)
 *
 *   GET    /admin/usage, /admin/usage/live, /admin/usage/latency: usage across keys (admin-usage.ts)
 *
 * Every request needs `Authorization: Bearer <admin token>`, compared in constant time, or the
 * admin console's session cookie (and, to change anything, its CSRF header: console.ts).
 */
import { Hono, type Context, type ErrorHandler, type NotFoundHandler } from 'hono';
import { MAX_ADMIN_BODY_BYTES, limitBody } from './body-limit.js';
import { adminAuth, type ConsoleSession, type ConsoleSessions } from './console.js';
import { usageAdmin } from './admin-usage.js';
import type { Schema } from '../store/schema.js';
import type { Kysely } from 'kysely';
import { RelayError } from './errors.js';
import { jsonObject } from './json-body.js';
import type { BotConfig, LimitsConfig } from '../config/config.js';
import type { AuditActor, ClientKeyRecord, KeyPatch, KeyStore } from '../auth/keys.js';
import { MAX_AUDIT_LIMIT, type AuditEntry } from '../store/keys.js';
import { LimitsError, effectiveLimits, parseKeyLimits, type KeyLimits } from '../policy/limits.js';
import type { SessionRegistry } from '../policy/lifecycle.js';
import type { Logger } from '../logger.js';
import { InvalidOriginPattern, parseOriginPattern } from '../auth/origins.js';
import type { SharedState } from '../state/shared-state.js';
import type { DayUsage, UsageStore } from '../policy/usage.js';
import { knowledgeAdmin } from './admin-knowledge.js';
import type { KnowledgeBase } from '../knowledge/knowledge-base.js';
import { conversationsAdmin, type ConversationsAdminDeps } from './admin-conversations.js';

export interface AdminDeps {
  token: string;
  keys: KeyStore;
  /** The audit log the key store writes (`storage.audit`). */
  audit: { list(options: { limit?: number; keyId?: string }): Promise<AuditEntry[]> };
  /** The caller's address, recorded as the actor of key changes. */
  clientIp(c: Context): string;
  usage: UsageStore;
  /** This process's sockets (to close a revoked key's). */
  registry: SessionRegistry;
  /** The whole relay's open sockets and revocations (every worker of a cluster). */
  state: Pick<SharedState, 'slots' | 'announceRevoked' | 'rateLimiter'>;
  bots: readonly BotConfig[];
  limits: LimitsConfig;
  log: Logger;
  /** The relay's error rendering (`errors.ts`), shared so admin errors look like every other. */
  errors: { onError: ErrorHandler; notFound: NotFoundHandler };
  /** The knowledge base (…/admin/knowledge, admin-knowledge.ts). */
  knowledge?: KnowledgeBase;
  /** Conversation records and the webhook outbox. */
  conversations?: ConversationsAdminDeps;
  /** Console sign-ins (http/console.ts): their cookie + CSRF header stand in for the bearer token. */
  console?: {
    sessions: ConsoleSessions;
    /** Records a console change the key store does not record itself. */
    audit(c: Context, session: ConsoleSession): Promise<void>;
  };
  /** The relay's database, for the latency percentiles of GET /admin/usage/latency. */
  db?: () => Promise<Kysely<Schema>>;
}

const badRequest = (message: string) => new RelayError('bad_request', 400, message);

function publicKey(record: ClientKeyRecord, global: LimitsConfig, openSessions: number) {
  const { hash: _hash, ...rest } = record;
  return {
    ...rest,
    limits: record.limits ?? {},
    effective_limits: effectiveLimits(global, record.limits),
    open_sessions: openSessions,
  };
}

function usageView(day: DayUsage) {
  return {
    date: day.date,
    sessions: day.sessions,
    sockets: day.sockets,
    turns: day.turns,
    audio_minutes: Math.round((day.audio_in_ms / 60_000) * 1000) / 1000,
    audio_out_minutes: Math.round((day.audio_out_ms / 60_000) * 1000) / 1000,
    llm_tokens: day.prompt_tokens + day.completion_tokens,
    prompt_tokens: day.prompt_tokens,
    completion_tokens: day.completion_tokens,
    tts_chars: day.tts_chars,
    errors: day.errors,
  };
}

export function createAdminApp(deps: AdminDeps): Hono {
  const { keys, usage, registry, state, log } = deps;
  const openSessions = async (keyId: string) => (await state.slots.count(keyId)).open;
  const app = new Hono();
  const botIds = new Set(deps.bots.map((b) => b.id));

  const notFound = () => new RelayError('not_found', 404, 'no key with that id');
  const actor = (c: Context): AuditActor =>
    deps.console?.sessions.actor(c, deps.clientIp(c)) ?? {
      kind: 'admin-api',
      ip: deps.clientIp(c),
    };

  app.use('*', async (c, next) => {
    c.header('Cache-Control', 'no-store');
    await next();
  });
  app.use(
    '*',
    adminAuth(
      deps.token,
      deps.console?.sessions,
      (c) => log.warn({ method: c.req.method, path: c.req.path }, 'admin request refused'),
      deps.console?.audit,
    ),
  );
  // Mounted before the 64 KiB body limit: uploads have their own (larger) one.
  if (deps.knowledge)
    app.route(
      '/knowledge',
      knowledgeAdmin({ knowledge: deps.knowledge, log, errors: deps.errors }),
    );
  app.use('*', limitBody(MAX_ADMIN_BODY_BYTES));

  function strings(value: unknown, field: string): string[] {
    if (
      !Array.isArray(value) ||
      !value.every((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 300)
    ) {
      throw badRequest(`${field} must be an array of strings`);
    }
    if (value.length > 100) throw badRequest(`${field} has too many entries`);
    return value;
  }

  function origins(value: unknown): string[] {
    const list = strings(value, 'origins');
    if (list.length === 0) throw badRequest('origins must not be empty');
    for (const origin of list) parseOriginPattern(origin);
    return list;
  }

  function bots(value: unknown): string[] {
    const list = strings(value, 'bots');
    const unknown = list.find((id) => !botIds.has(id));
    if (unknown !== undefined) throw badRequest(`there is no bot ${JSON.stringify(unknown)}`);
    return list;
  }

  function label(value: unknown): string {
    if (typeof value !== 'string' || value.length > 200)
      throw badRequest('label must be a string of at most 200 characters');
    return value;
  }

  /** PATCH semantics for limits: fields merge into the current set; `null` removes one (or, for `limits: null`, all). */
  function mergedLimits(current: KeyLimits | undefined, value: unknown): KeyLimits {
    if (value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value))
      throw new LimitsError('limits must be an object');
    const next: Record<string, unknown> = { ...current };
    for (const [field, v] of Object.entries(value)) {
      if (v === null) delete next[field];
      else next[field] = v;
    }
    return parseKeyLimits(next);
  }

  // Input the key store's own parsers refuse is a bad request too; everything renders as the relay's errors do.
  app.onError((error, c) =>
    deps.errors.onError(
      error instanceof LimitsError || error instanceof InvalidOriginPattern
        ? badRequest(error.message)
        : error,
      c,
    ),
  );

  app.post('/keys', async (c) => {
    const input = await jsonObject(c);
    const created = await keys.create(
      {
        origins: origins(input.origins),
        bots: input.bots === undefined ? [] : bots(input.bots),
        label: input.label === undefined ? '' : label(input.label),
        ...(input.limits !== undefined && input.limits !== null
          ? { limits: parseKeyLimits(input.limits) }
          : {}),
      },
      actor(c),
    );
    log.info({ key_id: created.record.id }, 'admin: key created');
    // The only time the secret is ever shown.
    return c.json({ ...publicKey(created.record, deps.limits, 0), key: created.secret }, 201);
  });

  app.get('/keys', async (c) => {
    const list = await keys.list();
    const open = await Promise.all(list.map((k) => openSessions(k.id)));
    return c.json({ keys: list.map((k, i) => publicKey(k, deps.limits, open[i] ?? 0)) });
  });

  app.get('/keys/:id', async (c) => {
    const key = await keys.get(c.req.param('id'));
    if (!key) throw notFound();
    return c.json(publicKey(key, deps.limits, await openSessions(key.id)));
  });

  app.patch('/keys/:id', async (c) => {
    const id = c.req.param('id');
    const current = await keys.get(id);
    if (!current) throw notFound();
    const input = await jsonObject(c);
    const known = new Set(['origins', 'bots', 'label', 'limits']);
    const extra = Object.keys(input).find((field) => !known.has(field));
    if (extra !== undefined)
      throw badRequest(`${extra} cannot be changed (origins, bots, label, limits can)`);
    const patch: KeyPatch = {
      ...(input.origins !== undefined ? { origins: origins(input.origins) } : {}),
      ...(input.bots !== undefined ? { bots: bots(input.bots) } : {}),
      ...(input.label !== undefined ? { label: label(input.label) } : {}),
      ...(input.limits !== undefined ? { limits: mergedLimits(current.limits, input.limits) } : {}),
    };
    const updated = await keys.update(id, patch, actor(c));
    if (!updated) throw notFound();
    log.info({ key_id: id, fields: Object.keys(patch) }, 'admin: key updated');
    return c.json(publicKey(updated, deps.limits, await openSessions(id)));
  });

  const revoke = async (c: Context) => {
    const id = c.req.param('id') ?? '';
    // The revocation poll may close them first; either way these sessions end now.
    const open = await openSessions(id);
    if (!(await keys.revoke(id, actor(c)))) throw notFound();
    state.announceRevoked(id);
    const closed = Math.max(open, registry.closeKey(id));
    // Its conversations waiting to be resumed cannot be: they end now, not after their TTL.
    const ended = (await deps.conversations?.records.endKey(id, Date.now())) ?? 0;
    const key = await keys.get(id);
    log.info(
      { key_id: id, closed_sessions: closed, ended_conversations: ended },
      'admin: key revoked',
    );
    return c.json({ id, revoked_at: key?.revoked_at ?? null, closed_sessions: closed });
  };
  app.post('/keys/:id/revoke', revoke);
  app.delete('/keys/:id', revoke);

  const visitorSecret = (remove: boolean) => async (c: Context) => {
    const id = c.req.param('id') ?? '';
    const set = await keys.setVisitorSecret(id, actor(c), remove);
    if (!set) throw notFound();
    log.info(
      { key_id: id },
      remove ? 'admin: visitor secret removed' : 'admin: visitor secret set',
    );
    return remove ? c.json({ id }) : c.json({ id, visitor_secret: set.secret }, 201);
  };
  app.post('/keys/:id/visitor-secret', visitorSecret(false));
  app.delete('/keys/:id/visitor-secret', visitorSecret(true));

  app.get('/keys/:id/usage', async (c) => {
    const id = c.req.param('id');
    const key = await keys.get(id);
    if (!key) throw notFound();
    const days = Number(c.req.query('days') ?? 1);
    if (!Number.isInteger(days) || days < 1 || days > 31) throw badRequest('days must be 1 to 31');
    const history = await usage.history(id, days);
    return c.json({
      key_id: id,
      open_sessions: await openSessions(id),
      days: history.map(usageView),
    });
  });

  app.get('/audit', async (c) => {
    const limit = Number(c.req.query('limit') ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT)
      throw badRequest(`limit must be 1 to ${MAX_AUDIT_LIMIT}`);
    const key = c.req.query('key');
    if (key !== undefined && (key.length === 0 || key.length > 100))
      throw badRequest('key must be a key id');
    const entries = await deps.audit.list({ limit, ...(key !== undefined ? { keyId: key } : {}) });
    return c.json({ entries });
  });

  if (deps.conversations) app.route('/', conversationsAdmin(deps.conversations));
  app.route('/', usageAdmin({ keys, usage, state, db: deps.db }));
  app.notFound(deps.errors.notFound);
  return app;
}
