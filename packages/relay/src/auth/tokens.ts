import { randomBytes } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { VisitorClaims } from '@voice-bot/protocol';
import { ReplaySet } from '../state/shared-state.js';

export const TOKEN_ISSUER = 'voicebot-relay';
export const TOKEN_AUDIENCE = 'voicebot-talk';

export interface SessionClaims {
  keyId: string;
  origin: string;
  bot: string;
  jti: string;
  expiresAt: number;
  /** A signed-in visitor's trusted claims (from the site's visitor token). */
  user?: VisitorClaims;
}

export type TokenFailure = 'invalid_token' | 'token_expired' | 'token_reused';

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(
    readonly code: TokenFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Marks a token id used until `expiresAt` (Unix seconds): false when it was used before. */
export type TokenClaimer = (jti: string, expiresAt: number) => Promise<boolean>;

/**
 * Short-lived HS256 session tokens that bind a WebSocket upgrade to one key, origin and bot.
 * Each token opens at most one socket: its `jti` is remembered until it expires (in this process,
 * or by `claim`, which a cluster's workers share).
 */
export class SessionTokens {
  private readonly key: Uint8Array;
  private readonly claim: TokenClaimer;

  constructor(
    secret: string | Uint8Array,
    readonly ttlSeconds = 600,
    claim?: TokenClaimer,
  ) {
    if (claim) this.claim = claim;
    else {
      const used = new ReplaySet();
      this.claim = async (jti, expiresAt) => used.claim(jti, expiresAt);
    }
    this.key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
    if (this.key.byteLength < 32)
      throw new Error('the session token secret must be at least 32 bytes');
  }

  async issue(claims: {
    keyId: string;
    origin: string;
    bot: string;
    user?: VisitorClaims | undefined;
  }): Promise<{ token: string; expiresAt: number }> {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const expiresAt = nowSeconds + this.ttlSeconds;
    const token = await new SignJWT({
      origin: claims.origin,
      bot: claims.bot,
      ...(claims.user ? { user: claims.user } : {}),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(claims.keyId)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt(nowSeconds)
      .setExpirationTime(expiresAt)
      .sign(this.key);
    return { token, expiresAt };
  }

  async verify(token: string): Promise<SessionClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'jti', 'exp'],
      });
      const { sub, jti, exp, origin, bot, user } = payload;
      if (typeof sub !== 'string' || typeof jti !== 'string' || typeof exp !== 'number')
        throw new TokenError('invalid_token', 'token claims are incomplete');
      if (typeof origin !== 'string' || typeof bot !== 'string')
        throw new TokenError('invalid_token', 'token claims are incomplete');
      if (user !== undefined && (typeof user !== 'object' || user === null || Array.isArray(user)))
        throw new TokenError('invalid_token', 'token claims are incomplete');
      return {
        keyId: sub,
        origin,
        bot,
        jti,
        expiresAt: exp,
        ...(user ? { user: user as VisitorClaims } : {}),
      };
    } catch (error) {
      if (error instanceof TokenError) throw error;
      if (error instanceof joseErrors.JWTExpired)
        throw new TokenError('token_expired', 'session token expired; request a new one');
      throw new TokenError('invalid_token', 'session token is invalid');
    }
  }

  /** Marks any one-time id (prefixed by its kind) used until `expiresAt`: false when it was before. */
  claimOnce(id: string, expiresAt: number): Promise<boolean> {
    return this.claim(id, expiresAt);
  }

  /** Marks a token used. Throws `token_reused` when it was used before. */
  async consume(claims: SessionClaims): Promise<void> {
    if (!(await this.claim(claims.jti, claims.expiresAt)))
      throw new TokenError('token_reused', 'session token was already used; request a new one');
  }
}
