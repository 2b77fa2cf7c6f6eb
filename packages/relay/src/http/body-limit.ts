import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { RelayError } from './errors.js';

export { MAX_SESSION_REQUEST_BYTES as MAX_SESSION_BODY_BYTES } from '@voice-bot/protocol';

/** Admin API bodies (a key with its origins, bots and limits). */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/**
 * Refuses a request body over `maxBytes` with `413 payload_too_large`: at once when
 * `Content-Length` says so, otherwise as soon as the streamed body passes the limit — before
 * anything is parsed and without buffering more than `maxBytes`. The connection is closed, so the
 * rest of an oversized upload is never read.
 */
export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new RelayError(
        'payload_too_large',
        413,
        `request bodies are limited to ${maxBytes} bytes`,
        { headers: { Connection: 'close' } },
      );
    },
  });
}
