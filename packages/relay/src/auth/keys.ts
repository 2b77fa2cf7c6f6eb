import { createHash, randomBytes } from 'node:crypto';
import type { KeyLimits } from '../policy/limits.js';
import { parseOriginPattern } from './origins.js';
import { openDataDirKeys } from '../store/storage.js';

/** Publishable client keys start with this, so a leaked key is recognisable (secret scanners, logs). */
export const CLIENT_KEY_PREFIX = 'vb_pk_';

export interface ClientKeyRecord {
  id: string;
  label: string;
  /** SHA-256 (hex) of the key secret; the secret itself is never stored. */
  hash: string;
  /** The last four characters of the secret, to tell keys apart in listings. */
  hint: string;
  /** Allowed page origins: exact `scheme://host[:port]` or `https://*.example.com`. */
  origins: string[];
  /** Allowed bot ids; empty means every bot. */
  bots: string[];
  /** Per-key overrides of the relay's limits (see `limits.ts`); absent fields use the global value. */
  limits?: KeyLimits;
  created_at: string;
  revoked_at: string | null;
}

export interface NewKey {
  origins: readonly string[];
  bots?: readonly string[];
  label?: string;
  limits?: KeyLimits;
}

/** What `KeyStore.update` may change. */
export interface KeyPatch {
  origins?: readonly string[];
  bots?: readonly string[];
  label?: string;
  /** Replaces the whole override set; `{}` clears it. */
  limits?: KeyLimits;
}

/** Who changed a key: written to the audit log with the change. */
export type AuditActor =
  | { kind: 'admin-api'; ip: string }
  /** The admin console (a signed-in browser session). */
  | { kind: 'console'; ip: string }
  | { kind: 'cli'; user: string }
  | { kind: 'import'; file: string }
  /** A program calling the store itself (`relay.keys.create(…)`, the demo). */
  | { kind: 'code'; name?: string };

/**
 * Client keys. Every change is written with its audit-log row in one transaction; `actor`
 * defaults to `{ kind: 'code' }`.
 */
export interface KeyStore {
  /** Creates a key. The secret is returned once and cannot be recovered later. */
  create(input: NewKey, actor?: AuditActor): Promise<{ record: ClientKeyRecord; secret: string }>;
  list(): Promise<ClientKeyRecord[]>;
  get(id: string): Promise<ClientKeyRecord | undefined>;
  /** Changes a key's origins, bots, label or limits. Returns undefined when no key has that id. */
  update(id: string, patch: KeyPatch, actor?: AuditActor): Promise<ClientKeyRecord | undefined>;
  /** Returns false when no key has that id. Revoking twice is harmless. */
  revoke(id: string, actor?: AuditActor): Promise<boolean>;
  /** Looks a presented secret up by its hash (a non-matching secret learns nothing about others). */
  findBySecret(secret: string): Promise<ClientKeyRecord | undefined>;
  /** Which of these key ids are revoked (or gone): what running relays poll to close sockets. */
  revokedAmong(ids: readonly string[]): Promise<string[]>;
  /**
   * Gives the key a new visitor secret (replacing any earlier one, which stops working at once) and
   * returns it, or removes it (`remove`). Undefined when no key has that id.
   */
  setVisitorSecret(
    id: string,
    actor?: AuditActor,
    remove?: boolean,
  ): Promise<{ secret: string | undefined } | undefined>;
  /** The key's visitor secret, if it has one (server-side only: never sent to a page). */
  visitorSecret(id: string): Promise<string | undefined>;
}

/**
 * @deprecated Open a storage instead (`openStorage({ dataDir })`, then `storage.keys`). Kept so
 * code written for the `keys.json` store keeps working: the keys of the SQLite database in
 * `dataDir`, migrated on first use; a relay given these keys uses that database for everything.
 */
export const KeyStore = {
  inDataDir(dataDir: string): KeyStore {
    return openDataDirKeys(dataDir);
  },
};

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Throws when a key would have no origin or an invalid one. */
export function checkOrigins(origins: readonly string[]): void {
  if (origins.length === 0) throw new Error('a client key needs at least one allowed origin');
  for (const origin of origins) parseOriginPattern(origin);
}

/** A new key's record and its secret (shown once). */
export function newKeyRecord(input: NewKey): { record: ClientKeyRecord; secret: string } {
  checkOrigins(input.origins);
  const secret = CLIENT_KEY_PREFIX + randomBytes(24).toString('base64url');
  const record: ClientKeyRecord = {
    id: `key_${randomBytes(8).toString('hex')}`,
    label: input.label ?? '',
    hash: hashSecret(secret),
    hint: secret.slice(-4),
    origins: [...input.origins],
    bots: [...(input.bots ?? [])],
    ...(input.limits && Object.keys(input.limits).length > 0
      ? { limits: { ...input.limits } }
      : {}),
    created_at: new Date().toISOString(),
    revoked_at: null,
  };
  return { record, secret };
}

/** A presented secret worth looking up (prefix and length), before any database query. */
export function plausibleSecret(secret: string): boolean {
  return secret.startsWith(CLIENT_KEY_PREFIX) && secret.length <= 200;
}
