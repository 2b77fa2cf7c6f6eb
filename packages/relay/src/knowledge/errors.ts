/**
 * Why an ingest, a search or an admin request about the knowledge base failed. `bad_request` and
 * `not_found` are the caller's; the others are about a source (`unreadable`, `fetch_failed`,
 * `refused`: the SSRF guard, `too_large`) or the embeddings provider (`embeddings_failed`).
 * Messages never hold a secret.
 */
export type KnowledgeErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'unreadable'
  | 'unsupported'
  | 'fetch_failed'
  | 'refused'
  | 'too_large'
  | 'embeddings_failed';

export class KnowledgeError extends Error {
  override readonly name = 'KnowledgeError';
  constructor(
    readonly code: KnowledgeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
