import type { Redis } from 'ioredis';
import { unavailable } from './connection.js';

/**
 * Marks a session token id used until `expiresAt` (Unix seconds), atomically across relays:
 * `SET … NX EXAT`. False when some relay claimed it before.
 */
export async function claimToken(
  client: Redis,
  prefix: string,
  jti: string,
  expiresAt: number,
): Promise<boolean> {
  // An expiry in the past would delete the key at once and let the id be claimed again.
  const exat = Math.max(Math.ceil(expiresAt), Math.floor(Date.now() / 1000) + 1);
  try {
    return (await client.set(`${prefix}jti:${jti}`, '1', 'EXAT', exat, 'NX')) === 'OK';
  } catch (error) {
    throw unavailable(error);
  }
}
