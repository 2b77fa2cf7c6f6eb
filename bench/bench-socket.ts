import WebSocket from 'ws';
import { SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, type SessionGrant } from '@voice-bot/protocol';
import { ORIGIN } from './common.js';

/** The generator's own masking cost is not what is measured (the relay still unmasks every frame). */
const zeroMask = (mask: Uint8Array) => mask.fill(0);

/**
 * A benchmark client's session: `POST /v1/sessions` with the key, then the `/v1/talk` socket with
 * the token (returned while it connects). A refused session throws with its status and code.
 */
export async function openBenchSocket(relayUrl: string, key: string): Promise<WebSocket> {
  const res = await fetch(`${relayUrl}/v1/sessions`, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'text/plain' },
    body: JSON.stringify({ key }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as Partial<SessionGrant> & { error?: { code: string } };
  if (res.status !== 201 || !body.token || !body.ws_url)
    throw new Error(`session refused: ${res.status} ${body.error?.code ?? ''}`);
  return new WebSocket(body.ws_url, [SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${body.token}`], {
    origin: ORIGIN,
    perMessageDeflate: false,
    skipUTF8Validation: true,
    generateMask: zeroMask,
    handshakeTimeout: 15_000,
  });
}
