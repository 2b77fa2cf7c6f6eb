import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KeyLimits } from '../policy/limits.js';
import { parseOriginPattern } from './origins.js';

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

interface KeyFile {
  version: 1;
  keys: ClientKeyRecord[];
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function publicView(record: ClientKeyRecord): ClientKeyRecord {
  return {
    ...record,
    origins: [...record.origins],
    bots: [...record.bots],
    ...(record.limits ? { limits: { ...record.limits } } : {}),
  };
}

/** What changes on every write of the file: an atomic rename makes a new inode. */
const fileVersion = (info: { ino: number; mtimeMs: number; size: number }): string =>
  `${info.ino}:${info.mtimeMs}:${info.size}`;

/** A lock file older than this was left by a process that died while holding it. */
const STALE_LOCK_MS = 10_000;

/**
 * Runs `fn` while holding `lockFile` (created exclusively), so processes sharing a file (the
 * workers of a cluster, the CLI, the relay) change it one at a time.
 */
async function withFileLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockFile), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + STALE_LOCK_MS + 5_000;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx', 0o600);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lockFile).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) await unlink(lockFile).catch(() => undefined);
      else if (Date.now() > deadline) throw new Error(`${lockFile} is held by another process`);
      else await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(() => undefined);
  }
}

/**
 * Client keys in one JSON file, written atomically (temp file + rename) under a lock file, so
 * several processes can share it. The file is re-read when it changes on disk, so
 * `voicebot-relay keys revoke` (or another worker of a cluster) takes effect in a running relay.
 */
export class KeyStore {
  private records: ClientKeyRecord[] = [];
  private byHash = new Map<string, ClientKeyRecord>();
  /** inode, mtime and size of the file last read: every atomic write makes a new inode. */
  private loadedVersion = '';

  constructor(readonly file: string) {}

  static inDataDir(dataDir: string): KeyStore {
    return new KeyStore(join(dataDir, 'keys.json'));
  }

  private async refresh(): Promise<void> {
    let version: string;
    try {
      const info = await stat(this.file);
      version = fileVersion(info);
    } catch {
      this.setRecords([]);
      this.loadedVersion = '';
      return;
    }
    if (version === this.loadedVersion) return;
    const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<KeyFile>;
    this.setRecords(Array.isArray(parsed.keys) ? parsed.keys : []);
    this.loadedVersion = version;
  }

  /** Read, change and write the file with no other process in between. */
  private change<T>(fn: () => T | Promise<T>): Promise<T> {
    return withFileLock(`${this.file}.lock`, async () => {
      this.loadedVersion = '';
      await this.refresh();
      return fn();
    });
  }

  private setRecords(records: ClientKeyRecord[]): void {
    this.records = records;
    this.byHash = new Map(records.map((r) => [r.hash, r]));
  }

  private async persist(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const body: KeyFile = { version: 1, keys: this.records };
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
    const info = await stat(this.file);
    this.loadedVersion = fileVersion(info);
  }

  /** Creates a key. The secret is returned once and cannot be recovered later. */
  async create(input: NewKey): Promise<{ record: ClientKeyRecord; secret: string }> {
    if (input.origins.length === 0)
      throw new Error('a client key needs at least one allowed origin');
    for (const origin of input.origins) parseOriginPattern(origin);
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
    await this.change(async () => {
      this.setRecords([...this.records, record]);
      await this.persist();
    });
    return { record: publicView(record), secret };
  }

  async list(): Promise<ClientKeyRecord[]> {
    await this.refresh();
    return this.records.map(publicView);
  }

  async get(id: string): Promise<ClientKeyRecord | undefined> {
    await this.refresh();
    const found = this.records.find((r) => r.id === id);
    return found && publicView(found);
  }

  /** Changes a key's origins, bots, label or limits. Returns undefined when no key has that id. */
  async update(id: string, patch: KeyPatch): Promise<ClientKeyRecord | undefined> {
    if (patch.origins) {
      if (patch.origins.length === 0)
        throw new Error('a client key needs at least one allowed origin');
      for (const origin of patch.origins) parseOriginPattern(origin);
    }
    return this.change(async () => {
      const found = this.records.find((r) => r.id === id);
      if (!found) return undefined;
      if (patch.origins) found.origins = [...patch.origins];
      if (patch.bots) found.bots = [...patch.bots];
      if (patch.label !== undefined) found.label = patch.label;
      if (patch.limits) {
        if (Object.keys(patch.limits).length > 0) found.limits = { ...patch.limits };
        else delete found.limits;
      }
      await this.persist();
      return publicView(found);
    });
  }

  /** Returns false when no key has that id. Revoking twice is harmless. */
  async revoke(id: string): Promise<boolean> {
    return this.change(async () => {
      const found = this.records.find((r) => r.id === id);
      if (!found) return false;
      if (!found.revoked_at) {
        found.revoked_at = new Date().toISOString();
        await this.persist();
      }
      return true;
    });
  }

  /** Looks a presented secret up by its hash (a non-matching secret learns nothing about others). */
  async findBySecret(secret: string): Promise<ClientKeyRecord | undefined> {
    if (!secret.startsWith(CLIENT_KEY_PREFIX) || secret.length > 200) return undefined;
    await this.refresh();
    const found = this.byHash.get(hashSecret(secret));
    return found && publicView(found);
  }
}
