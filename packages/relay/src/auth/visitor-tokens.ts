import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify } from 'jose';
import {
  MAX_VISITOR_TOKEN_CHARS,
  MAX_VISITOR_TOKEN_TTL_SECONDS,
  type VisitorClaims,
} from '@voice-bot/protocol';
import { RelayError } from '../http/errors.js';

/** A key's visitor secret (server-side only) starts with this, so a leaked one is recognisable. */
export const VISITOR_SECRET_PREFIX = 'vb_vs_';

export const VISITOR_CLAIM_LIMITS = {
  maxClaims: 16,
  maxKeyLength: 64,
  maxValueLength: 256,
} as const;

/** JWT registered claims: checked, never handed on as visitor claims. */
const REGISTERED = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);
/** Seconds a site's clock may run ahead of the relay's. */
const CLOCK_TOLERANCE_SECONDS = 30;

export function newVisitorSecret(): string {
  return VISITOR_SECRET_PREFIX + randomBytes(32).toString('base64url');
}

function refuse(message: string): RelayError {
  return new RelayError('invalid_visitor_token', 401, message);
}

/** A verified visitor token: its claims (`id` = `sub`), and its `jti` when it has one. */
export interface VerifiedVisitor {
  claims: VisitorClaims;
  jti?: string;
  expiresAt: number;
}

/**
 * Verifies a visitor token a site's server signed (HS256) with the key's visitor secret: signature,
 * `sub`, `iat` and `exp` (at most {@link MAX_VISITOR_TOKEN_TTL_SECONDS} apart), and flat, short
 * claims. Throws a `RelayError` `invalid_visitor_token` (401) saying what is wrong.
 */
export async function verifyVisitorToken(
  token: string,
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<VerifiedVisitor> {
  if (token.length > MAX_VISITOR_TOKEN_CHARS)
    throw refuse(`the visitor token is longer than ${MAX_VISITOR_TOKEN_CHARS} characters`);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'iat', 'exp'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(nowSeconds * 1000),
    }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw refuse('the visitor token has expired');
    if (error instanceof joseErrors.JWTClaimValidationFailed)
      throw refuse(`the visitor token's ${error.claim} claim is missing or invalid`);
    throw refuse('the visitor token is not signed with this key’s visitor secret (HS256)');
  }
  const { sub, iat, exp, jti } = payload;
  if (typeof sub !== 'string' || !sub || sub.length > VISITOR_CLAIM_LIMITS.maxValueLength)
    throw refuse(
      `sub must be the visitor's id (1-${VISITOR_CLAIM_LIMITS.maxValueLength} characters)`,
    );
  if (typeof iat !== 'number' || typeof exp !== 'number')
    throw refuse('iat and exp must be numbers');
  if (iat > nowSeconds + CLOCK_TOLERANCE_SECONDS)
    throw refuse('the visitor token was issued in the future');
  if (exp - iat > MAX_VISITOR_TOKEN_TTL_SECONDS)
    throw refuse(`a visitor token may live at most ${MAX_VISITOR_TOKEN_TTL_SECONDS} s (exp - iat)`);
  if (jti !== undefined && (typeof jti !== 'string' || !jti || jti.length > 128))
    throw refuse('jti must be a string of 1-128 characters');
  const claims: VisitorClaims = {};
  const extra = Object.entries(payload).filter(([key]) => !REGISTERED.has(key) && key !== 'id');
  if (extra.length > VISITOR_CLAIM_LIMITS.maxClaims)
    throw refuse(`a visitor token may carry at most ${VISITOR_CLAIM_LIMITS.maxClaims} claims`);
  for (const [key, value] of extra) {
    if (!/^[A-Za-z_][\w-]*$/.test(key) || key.length > VISITOR_CLAIM_LIMITS.maxKeyLength)
      throw refuse(`claim ${JSON.stringify(key.slice(0, 70))} must be a short identifier`);
    if (typeof value === 'string') {
      if (value.length > VISITOR_CLAIM_LIMITS.maxValueLength)
        throw refuse(
          `claim ${key} is longer than ${VISITOR_CLAIM_LIMITS.maxValueLength} characters`,
        );
    } else if (typeof value !== 'number' && typeof value !== 'boolean')
      throw refuse(`claim ${key} must be a string, number or boolean`);
    claims[key] = value;
  }
  claims.id = sub;
  return { claims, ...(typeof jti === 'string' ? { jti } : {}), expiresAt: exp };
}
