import type { HistoryMessage } from './protocol/index.js';

export interface StoredConversation {
  conversationId: string;
  messages: HistoryMessage[];
  updatedAt: number;
}

/** Where the client keeps the conversation between page loads. */
export interface ConversationPersistence {
  load(scope: string): Promise<StoredConversation | undefined>;
  save(scope: string, conversation: StoredConversation): Promise<void>;
  clear(scope: string): Promise<void>;
}

const DB_NAME = 'voice-bot';
const STORE = 'conversations';
/** Older than this, a stored conversation is not resumed (the relay forgets it after 30 min anyway). */
const MAX_AGE_MS = 24 * 60 * 60_000;

/** IndexedDB through `idb`, imported lazily so importing the SDK touches no browser API. */
export function indexedDbPersistence(): ConversationPersistence {
  const db = async () => {
    const { openDB } = await import('idb');
    return openDB(DB_NAME, 1, {
      upgrade(database) {
        database.createObjectStore(STORE);
      },
    });
  };
  return {
    async load(scope) {
      const found = (await (await db()).get(STORE, scope)) as StoredConversation | undefined;
      if (!found || Date.now() - found.updatedAt > MAX_AGE_MS) return undefined;
      return found;
    },
    async save(scope, conversation) {
      await (await db()).put(STORE, conversation, scope);
    },
    async clear(scope) {
      await (await db()).delete(STORE, scope);
    },
  };
}
