import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { HTTPException } from 'hono/http-exception';
import { ConfigError } from '../config/config.js';
import { RelayError } from './errors.js';

/** Admin and metrics tokens must be at least this long. */
export const MIN_TOKEN_LENGTH = 16;
/** RFC 6750's token68: what may follow `Bearer ` in a header. */
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;

/** Checks a configured bearer token once, at start. */
export function checkBearerToken(name: string, token: string | undefined): void {
  if (token === undefined) return;
  if (token.length < MIN_TOKEN_LENGTH)
    throw new ConfigError(`the ${name} token must be at least ${MIN_TOKEN_LENGTH} characters`);
  if (!TOKEN68.test(token))
    throw new ConfigError(
      `the ${name} token may only use letters, digits and . _ ~ + / - (it travels in an Authorization header)`,
    );
}

/**
 * Hono's `bearerAuth` (constant-time comparison of hashes), with every refusal — no header, a
 * malformed one, a wrong token — answered as the relay's typed `401 unauthorized`.
 */
export function requireBearer(
  token: string,
  realm: string,
  onRefused?: (c: Context) => void,
): MiddlewareHandler {
  const auth = bearerAuth({ token, realm });
  return async (c, next) => {
    try {
      await auth(c, next);
    } catch (error) {
      // Errors from the routes behind it pass through; only the check's own become 401.
      if (!(error instanceof HTTPException) || error instanceof RelayError) throw error;
      onRefused?.(c);
      throw new RelayError(
        'unauthorized',
        401,
        'a valid bearer token is required (Authorization: Bearer …)',
        {
          headers: { 'WWW-Authenticate': `Bearer realm="${realm}"` },
        },
      );
    }
  };
}
