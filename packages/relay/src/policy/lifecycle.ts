import { CLOSE_CODES } from '@voice-bot/protocol';
import type { KeyStore } from '../auth/keys.js';
import type { SessionGuard } from './guard.js';
import type { Logger } from '../logger.js';
import type { TalkSession } from '../conversation/session.js';

export interface OpenSession {
  id: string;
  keyId: string;
  session: TalkSession;
  guard: SessionGuard;
}

/**
 * The relay's open sockets by key: concurrency counts, closing a revoked key's sessions (revoked
 * through the admin API at once; through the CLI, another process or another relay on the same
 * database, seen by a poll of the open sessions' keys every `revocationCheckMs`), and graceful
 * shutdown.
 */
export class SessionRegistry {
  private readonly byId = new Map<string, OpenSession>();
  private readonly countByKey = new Map<string, number>();
  private watchTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  draining = false;

  add(entry: OpenSession): void {
    this.byId.set(entry.id, entry);
    this.countByKey.set(entry.keyId, (this.countByKey.get(entry.keyId) ?? 0) + 1);
  }

  delete(id: string): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    this.byId.delete(id);
    const left = (this.countByKey.get(entry.keyId) ?? 1) - 1;
    if (left > 0) this.countByKey.set(entry.keyId, left);
    else this.countByKey.delete(entry.keyId);
  }

  get(id: string): OpenSession | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  countFor(keyId: string): number {
    return this.countByKey.get(keyId) ?? 0;
  }

  all(): OpenSession[] {
    return [...this.byId.values()];
  }

  /** Closes every open session of a key with `key_revoked` + 4003. Returns how many. */
  closeKey(keyId: string): number {
    let closed = 0;
    for (const entry of this.all()) {
      if (entry.keyId !== keyId) continue;
      entry.session.reject('key_revoked', 'this client key has been revoked', {
        code: CLOSE_CODES.keyRevoked,
        reason: 'key revoked',
      });
      closed++;
    }
    return closed;
  }

  /** Checks the keys of open sessions against the store: one query for all of them. */
  async sweepRevoked(keys: KeyStore, log: Logger): Promise<void> {
    if (this.sweeping || this.byId.size === 0) return;
    this.sweeping = true;
    try {
      for (const keyId of await keys.revokedAmong([...this.countByKey.keys()])) {
        const closed = this.closeKey(keyId);
        if (closed > 0)
          log.info({ key_id: keyId, sessions: closed }, 'key revoked: open sessions closed');
      }
    } catch (error) {
      log.warn({ err: String(error) }, 'revocation check failed');
    } finally {
      this.sweeping = false;
    }
  }

  watchRevocations(keys: KeyStore, log: Logger, intervalMs: number): void {
    if (intervalMs <= 0 || this.watchTimer) return;
    this.watchTimer = setInterval(() => void this.sweepRevoked(keys, log), intervalMs);
    this.watchTimer.unref();
  }

  stopWatching(): void {
    clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /**
   * Graceful shutdown, step 2 (step 1 — refusing new sessions — is `draining = true`): waits for
   * turns in flight (at most `graceMs`), then closes every socket with `shutting_down` + 1001.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.all().map((entry) => entry.session.settled())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, graceMs));
      }),
    ]);
    clearTimeout(timer);
    for (const entry of this.all()) {
      entry.session.reject(
        'shutting_down',
        'the relay is shutting down; please reconnect in a moment',
        {
          code: CLOSE_CODES.goingAway,
          reason: 'relay shutting down',
        },
      );
    }
  }
}
