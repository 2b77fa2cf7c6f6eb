/**
 * The conversation record: its id and messages, kept (per relay and bot) in the persistence store
 * so a reload resumes it. The relay is the authority: its `ready` replaces what was kept.
 */
import { indexedDbPersistence, type ConversationPersistence } from '../persistence.js';
import type { HistoryMessage } from '../protocol/index.js';

/** `persistence` as the options give it: `false` none, `true` or nothing IndexedDB, else the owner's store. */
export function resolvePersistence(
  option: boolean | ConversationPersistence | undefined,
): ConversationPersistence | undefined {
  if (option === false) return undefined;
  return option === true || !option ? indexedDbPersistence() : option;
}

/** Conversations are stored per relay and bot. */
export function persistenceScope(relayUrl: string, bot: string | undefined): string {
  return `${relayUrl}|${bot ?? ''}`;
}

export class ConversationRecord {
  id: string | undefined;
  messages: HistoryMessage[] = [];

  constructor(
    private readonly persistence: ConversationPersistence | undefined,
    private readonly scope: string,
  ) {}

  /** Before the first connect: the conversation kept from an earlier page load, if any. */
  async restore(): Promise<void> {
    if (!this.persistence || this.id) return;
    const stored = await this.persistence.load(this.scope).catch(() => undefined);
    if (stored) {
      this.id = stored.conversationId;
      this.messages = stored.messages;
    }
  }

  /** The relay's `ready`: its conversation and history (a conversation it no longer knows starts afresh). */
  replace(id: string, history: readonly HistoryMessage[]): void {
    this.id = id;
    this.messages = [...history];
    this.save();
  }

  /** `first`: before every other message (a greeting that arrived after the visitor's words). */
  push(message: HistoryMessage, first?: boolean): void {
    if (first) this.messages.unshift(message);
    else this.messages.push(message);
    this.save();
  }

  /** Forgets the conversation, here and in the store. */
  async clear(): Promise<void> {
    this.messages = [];
    this.id = undefined;
    await this.persistence?.clear(this.scope).catch(() => undefined);
  }

  private save(): void {
    if (!this.persistence || !this.id) return;
    void this.persistence
      .save(this.scope, { conversationId: this.id, messages: this.messages, updatedAt: Date.now() })
      .catch(() => undefined);
  }
}
