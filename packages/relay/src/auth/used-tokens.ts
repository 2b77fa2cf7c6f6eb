import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** Session token ids already used, each kept until its token expires. */
export interface TokenReplays {
  /** Marks `jti` used until `expiresAt` (Unix seconds): false when it was used before. */
  claim(jti: string, expiresAt: number): boolean;
  close(): void;
}

/** The file beside the key store (`keys.json`). */
export const USED_TOKENS_FILE = 'used-tokens.db';

/** Expired ids are deleted every this many claims. */
const PURGE_EVERY = 256;

/**
 * Used token ids in a SQLite file (`used-tokens.db` beside the key store), so a restarted relay
 * still refuses a token that already opened a socket. One insert per claim; WAL mode lets the
 * processes of one machine share the file.
 */
export class SqliteTokenReplays implements TokenReplays {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, number]>;
  private readonly purge: Database.Statement<[number]>;
  private claims = 0;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS used_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID',
    );
    this.insert = this.db.prepare(
      'INSERT INTO used_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING',
    );
    this.purge = this.db.prepare('DELETE FROM used_tokens WHERE expires_at < ?');
    this.purge.run(Math.floor(Date.now() / 1000));
  }

  claim(jti: string, expiresAt: number): boolean {
    if (++this.claims % PURGE_EVERY === 0) this.purge.run(Math.floor(Date.now() / 1000));
    return this.insert.run(jti, expiresAt).changes === 1;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
