import type { TokenReplays } from '../state/shared-state.js';
import type { DbHandle } from './database.js';

/**
 * Used session-token ids in the `used_tokens` table: one `insert … on conflict do nothing` per
 * claim, atomic on both engines, so relays sharing a database never open two sockets with one
 * token, and a restarted relay still refuses a used one. Expired ids are purged by the storage.
 */
export class DbTokenReplays implements TokenReplays {
  constructor(private readonly handle: DbHandle) {}

  async claim(jti: string, expiresAt: number): Promise<boolean> {
    const result = await this.handle.writeOne((db) =>
      db
        .insertInto('used_tokens')
        .values({ jti, expires_at: Math.floor(expiresAt) })
        .onConflict((oc) => oc.column('jti').doNothing())
        .executeTakeFirst(),
    );
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Deletes ids whose tokens expired; returns how many. */
  async purge(nowSeconds = Math.floor(Date.now() / 1000)): Promise<number> {
    const db = await this.handle.get();
    const result = await db
      .deleteFrom('used_tokens')
      .where('expires_at', '<', nowSeconds)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The storage owns the connection. */
  close(): void {}
}
