import { randomBytes } from 'node:crypto';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { HistoryMessage } from '@voice-bot/protocol';

export type MetadataValue = string | number | boolean;

export interface ConversationMessage extends HistoryMessage {
  turnId?: number;
  /** Tool calls and results that led to this reply: shown to the LLM, never to the page. */
  toolExchange?: ChatCompletionMessageParam[];
}

export interface Conversation {
  readonly id: string;
  readonly keyId: string;
  readonly bot: string;
  /** The signed-in visitor's id (a visitor token's `sub`): only that visitor may resume it. */
  readonly userId?: string | undefined;
  messages: ConversationMessage[];
  /** Context the page sent at `start` (untrusted, size-limited). */
  pageMetadata: Record<string, MetadataValue>;
  /** Set by tool response mappings; wins over page metadata. */
  toolMetadata: Record<string, MetadataValue>;
  updatedAt: number;
}

export interface OpenedConversation {
  conversation: Conversation;
  resumed: boolean;
}

/**
 * Where conversations live so a client that reconnects (or reloads the page) can resume with its
 * `conversation_id`. A conversation can only be resumed with the key and bot that created it.
 */
export interface ConversationStore {
  /**
   * Resumes `requestedId` when it exists for this key, bot and signed-in visitor (none for an
   * anonymous one); otherwise starts a new conversation.
   */
  open(
    requestedId: string | undefined,
    keyId: string,
    bot: string,
    userId?: string,
  ): OpenedConversation | Promise<OpenedConversation>;
  /** The conversation changed (a turn ended): keep it, as the most recently used. Never waits for a write. */
  touch(conversation: Conversation): void;
  /** Writes what is waiting to be written (a database store), e.g. before the process exits. */
  flush?(): Promise<void>;
}

/**
 * Conversations in this process's memory, dropped after `ttlMs` unused or beyond `maxConversations`
 * (a relay without a database: tests, embedded use with `localState()` and no stores).
 */
export class MemoryConversationStore implements ConversationStore {
  private readonly byId = new Map<string, Conversation>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxConversations: number,
  ) {}

  open(
    requestedId: string | undefined,
    keyId: string,
    bot: string,
    userId?: string,
  ): OpenedConversation {
    this.sweep();
    const existing = requestedId ? this.byId.get(requestedId) : undefined;
    if (
      existing &&
      existing.keyId === keyId &&
      existing.bot === bot &&
      existing.userId === userId
    ) {
      this.touch(existing);
      return { conversation: existing, resumed: true };
    }
    const conversation: Conversation = {
      id: `conv_${randomBytes(16).toString('base64url')}`,
      keyId,
      bot,
      ...(userId === undefined ? {} : { userId }),
      messages: [],
      pageMetadata: {},
      toolMetadata: {},
      updatedAt: Date.now(),
    };
    this.byId.set(conversation.id, conversation);
    return { conversation, resumed: false };
  }

  /** Marks a conversation as used now (Map order doubles as recency order for the sweep). */
  touch(conversation: Conversation): void {
    conversation.updatedAt = Date.now();
    this.byId.delete(conversation.id);
    this.byId.set(conversation.id, conversation);
  }

  /** Stores a copy made elsewhere (another process), replacing the one with its id. */
  put(conversation: Conversation): void {
    const existing = this.byId.get(conversation.id);
    if (existing && (existing.keyId !== conversation.keyId || existing.bot !== conversation.bot))
      return;
    this.sweep();
    this.touch(conversation);
  }

  get size(): number {
    return this.byId.size;
  }

  private sweep(): void {
    const cutoff = Date.now() - this.ttlMs;
    for (const [id, conversation] of this.byId) {
      if (conversation.updatedAt < cutoff || this.byId.size >= this.maxConversations)
        this.byId.delete(id);
      else break;
    }
  }
}
