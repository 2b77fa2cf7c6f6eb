import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ERROR_HEADER, type ErrorBody, type ErrorCode } from '@voice-bot/protocol';
import type { Logger } from '../logger.js';

/**
 * Every refusal the relay answers over HTTP. Routes and middleware throw it; one `onError`
 * ({@link errorHandler}) renders it as `{"error": {code, message}}` with `X-Voicebot-Error`
 * (and `Retry-After`, extra headers) and counts it.
 */
export class RelayError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    status: ContentfulStatusCode,
    message: string,
    readonly options: { retryAfter?: number; headers?: Record<string, string> } = {},
  ) {
    super(status, { message });
  }
}

function render(c: Context, error: RelayError): Response {
  c.header(ERROR_HEADER, error.code);
  if (error.options.retryAfter !== undefined)
    c.header('Retry-After', String(error.options.retryAfter));
  for (const [name, value] of Object.entries(error.options.headers ?? {})) c.header(name, value);
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  return c.json(body, error.status);
}

/** The app's one error handler: relay errors as their JSON, anything unexpected as `500 internal`. */
export function errorHandler(deps: {
  countError(code: ErrorCode): void;
  log: Logger;
}): ErrorHandler {
  return (error, c) => {
    if (error instanceof RelayError) {
      deps.countError(error.code);
      return render(c, error);
    }
    if (error instanceof HTTPException) return error.getResponse();
    deps.log.error({ err: error.message }, 'request failed');
    deps.countError('internal');
    return render(c, new RelayError('internal', 500, 'internal error'));
  };
}

/** Unknown paths and methods: `404 not_found`, rendered like every other error. */
export function notFoundHandler(deps: { countError(code: ErrorCode): void }): NotFoundHandler {
  return (c) => {
    deps.countError('not_found');
    return render(c, new RelayError('not_found', 404, 'not found'));
  };
}
