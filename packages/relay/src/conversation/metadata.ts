import type { Conversation, MetadataValue } from './conversations.js';

export const METADATA_LIMITS = { maxKeys: 32, maxKeyLength: 64, maxValueLength: 500 } as const;

export class MetadataError extends Error {
  override readonly name = 'MetadataError';
}

/** Checks metadata from the page (untrusted): few short keys, short values. Throws `MetadataError`. */
export function validatePageMetadata(
  metadata: Record<string, MetadataValue>,
): Record<string, MetadataValue> {
  const entries = Object.entries(metadata);
  if (entries.length > METADATA_LIMITS.maxKeys)
    throw new MetadataError(`metadata may hold at most ${METADATA_LIMITS.maxKeys} keys`);
  for (const [key, value] of entries) {
    if (!/^[\w.-]+$/.test(key) || key.length > METADATA_LIMITS.maxKeyLength)
      throw new MetadataError(
        `metadata key ${JSON.stringify(key.slice(0, 70))} must be ≤ ${METADATA_LIMITS.maxKeyLength} letters, digits, _ . or -`,
      );
    if (typeof value === 'string' && value.length > METADATA_LIMITS.maxValueLength)
      throw new MetadataError(
        `metadata value of ${key} is longer than ${METADATA_LIMITS.maxValueLength} characters`,
      );
  }
  return { ...metadata };
}

/** What tools and templates see: page metadata overlaid with what tools have set. */
export function metadataView(conversation: Conversation): Readonly<Record<string, MetadataValue>> {
  return { ...conversation.pageMetadata, ...conversation.toolMetadata };
}

export function setToolMetadata(
  conversation: Conversation,
  values: Record<string, MetadataValue>,
): void {
  for (const [key, value] of Object.entries(values)) {
    if (
      Object.keys(conversation.toolMetadata).length >= METADATA_LIMITS.maxKeys &&
      !(key in conversation.toolMetadata)
    )
      break;
    conversation.toolMetadata[key] =
      typeof value === 'string' ? value.slice(0, METADATA_LIMITS.maxValueLength) : value;
  }
}

/**
 * Data for `{{…}}` in prompts and greetings: `{{customer.first_name}}` or
 * `{{metadata.customer.first_name}}`, and a signed-in visitor's trusted claims as `{{user.name}}`.
 * `user` is reserved for those: metadata keys `user` and `user.*` are only under `metadata.`.
 */
export function templateData(
  conversation: Conversation,
  user?: Readonly<Record<string, MetadataValue>>,
): Record<string, unknown> {
  const view = metadataView(conversation);
  const top = Object.fromEntries(
    Object.entries(view).filter(([key]) => key !== 'user' && !key.startsWith('user.')),
  );
  return { ...top, metadata: view, user: user ?? {} };
}
