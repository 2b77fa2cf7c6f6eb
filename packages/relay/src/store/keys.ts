import type { Kysely, Selectable } from 'kysely';
import type { DbHandle } from './database.js';
import {
  checkOrigins,
  hashSecret,
  newKeyRecord,
  plausibleSecret,
  type AuditActor,
  type ClientKeyRecord,
  type KeyPatch,
  type KeyStore,
  type NewKey,
} from '../auth/keys.js';
import type { KeyLimits } from '../policy/limits.js';
import type { ClientKeysTable, Schema } from './schema.js';
import { newVisitorSecret } from '../auth/visitor-tokens.js';

const DEFAULT_ACTOR: AuditActor = { kind: 'code' };

/** The most ids one `revokedAmong` query asks about (bound parameters stay well under every engine's cap). */
const IDS_PER_QUERY = 500;

export function recordFromRow(row: Selectable<ClientKeysTable>): ClientKeyRecord {
  const limits = row.limits ? (JSON.parse(row.limits) as KeyLimits) : undefined;
  return {
    id: row.id,
    label: row.label,
    hash: row.hash,
    hint: row.hint,
    origins: JSON.parse(row.origins) as string[],
    bots: JSON.parse(row.bots) as string[],
    ...(limits && Object.keys(limits).length > 0 ? { limits } : {}),
    created_at: row.created_at,
    revoked_at: row.revoked_at,
  };
}

export function rowFromRecord(record: ClientKeyRecord): ClientKeysTable {
  return {
    id: record.id,
    label: record.label,
    hash: record.hash,
    hint: record.hint,
    origins: JSON.stringify(record.origins),
    bots: JSON.stringify(record.bots),
    limits:
      record.limits && Object.keys(record.limits).length > 0 ? JSON.stringify(record.limits) : null,
    created_at: record.created_at,
    revoked_at: record.revoked_at,
  };
}

/** Writes one audit row inside the transaction of the change it records. */
export async function writeAudit(
  trx: Kysely<Schema>,
  actor: AuditActor,
  action: string,
  keyId: string | null,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await trx
    .insertInto('audit_log')
    .values({
      at: new Date().toISOString(),
      actor: JSON.stringify(actor),
      action,
      key_id: keyId,
      detail: JSON.stringify(detail),
    })
    .execute();
}

/** Client keys in the `client_keys` table; every change and its audit row commit together. */
export class DbKeyStore implements KeyStore {
  constructor(private readonly handle: DbHandle) {}

  private db(): Promise<Kysely<Schema>> {
    return this.handle.get();
  }

  async create(
    input: NewKey,
    actor: AuditActor = DEFAULT_ACTOR,
  ): Promise<{ record: ClientKeyRecord; secret: string }> {
    const created = newKeyRecord(input);
    await this.handle.write(async (trx) => {
      await trx.insertInto('client_keys').values(rowFromRecord(created.record)).execute();
      await writeAudit(trx, actor, 'key.create', created.record.id, {
        label: created.record.label,
        origins: created.record.origins,
        bots: created.record.bots,
        ...(created.record.limits ? { limits: created.record.limits } : {}),
      });
    });
    return created;
  }

  async list(): Promise<ClientKeyRecord[]> {
    const db = await this.db();
    const rows = await db
      .selectFrom('client_keys')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(recordFromRow);
  }

  async get(id: string): Promise<ClientKeyRecord | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('client_keys')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && recordFromRow(row);
  }

  async update(
    id: string,
    patch: KeyPatch,
    actor: AuditActor = DEFAULT_ACTOR,
  ): Promise<ClientKeyRecord | undefined> {
    if (patch.origins) checkOrigins(patch.origins);
    return this.handle.write(async (trx) => {
      const row = await trx
        .selectFrom('client_keys')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      const record = recordFromRow(row);
      if (patch.origins) record.origins = [...patch.origins];
      if (patch.bots) record.bots = [...patch.bots];
      if (patch.label !== undefined) record.label = patch.label;
      if (patch.limits) {
        if (Object.keys(patch.limits).length > 0) record.limits = { ...patch.limits };
        else delete record.limits;
      }
      const { origins, bots, label, limits } = rowFromRecord(record);
      await trx
        .updateTable('client_keys')
        .set({ origins, bots, label, limits })
        .where('id', '=', id)
        .execute();
      await writeAudit(trx, actor, 'key.update', id, { fields: Object.keys(patch), ...patch });
      return record;
    });
  }

  async revoke(id: string, actor: AuditActor = DEFAULT_ACTOR): Promise<boolean> {
    return this.handle.write(async (trx) => {
      const changed = await trx
        .updateTable('client_keys')
        .set({ revoked_at: new Date().toISOString() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) > 0) {
        await writeAudit(trx, actor, 'key.revoke', id);
        return true;
      }
      const exists = await trx
        .selectFrom('client_keys')
        .select('id')
        .where('id', '=', id)
        .executeTakeFirst();
      return exists !== undefined;
    });
  }

  async findBySecret(secret: string): Promise<ClientKeyRecord | undefined> {
    if (!plausibleSecret(secret)) return undefined;
    const db = await this.db();
    const row = await db
      .selectFrom('client_keys')
      .selectAll()
      .where('hash', '=', hashSecret(secret))
      .executeTakeFirst();
    return row && recordFromRow(row);
  }

  async setVisitorSecret(
    id: string,
    actor: AuditActor = DEFAULT_ACTOR,
    remove = false,
  ): Promise<{ secret: string | undefined } | undefined> {
    const secret = remove ? undefined : newVisitorSecret();
    return this.handle.write(async (trx) => {
      const changed = await trx
        .updateTable('client_keys')
        .set({ visitor_secret: secret ?? null })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) === 0) return undefined;
      await writeAudit(
        trx,
        actor,
        remove ? 'key.visitor_secret.remove' : 'key.visitor_secret.set',
        id,
      );
      return { secret };
    });
  }

  async visitorSecret(id: string): Promise<string | undefined> {
    const db = await this.db();
    const row = await db
      .selectFrom('client_keys')
      .select('visitor_secret')
      .where('id', '=', id)
      .executeTakeFirst();
    return row?.visitor_secret ?? undefined;
  }

  async revokedAmong(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const db = await this.db();
    const out: string[] = [];
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const chunk = ids.slice(i, i + IDS_PER_QUERY);
      const live = await db
        .selectFrom('client_keys')
        .select('id')
        .where('id', 'in', chunk)
        .where('revoked_at', 'is', null)
        .execute();
      const active = new Set(live.map((r) => r.id));
      out.push(...chunk.filter((id) => !active.has(id)));
    }
    return out;
  }
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: AuditActor;
  action: string;
  key_id: string | null;
  detail: Record<string, unknown>;
}

/** The most entries one `GET /admin/audit` returns. */
export const MAX_AUDIT_LIMIT = 500;

/** Reading the audit log (its rows are written by the key store, in the same transactions). */
export class AuditLog {
  constructor(private readonly handle: DbHandle) {}

  /** Newest first; at most {@link MAX_AUDIT_LIMIT}. */
  async list(options: { limit?: number; keyId?: string } = {}): Promise<AuditEntry[]> {
    const limit = Math.max(1, Math.min(MAX_AUDIT_LIMIT, Math.floor(options.limit ?? 100)));
    const db = await this.handle.get();
    let query = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit);
    if (options.keyId !== undefined) query = query.where('key_id', '=', options.keyId);
    const rows = await query.execute();
    return rows.map((row) => ({
      id: Number(row.id),
      at: row.at,
      actor: JSON.parse(row.actor) as AuditActor,
      action: row.action,
      key_id: row.key_id,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
    }));
  }
}
