import type { ErrorCodeOrUnknown } from './errors.js';
import { INPUT_SAMPLE_RATE } from './messages.js';

/** Where a page asks for a session token. */
export const SESSIONS_PATH = '/v1/sessions';
/** The WebSocket endpoint (the `ws_url` of a {@link SessionGrant} points here). */
export const TALK_PATH = '/v1/talk';
/** The largest `POST /v1/sessions` body the relay reads, in bytes. */
export const MAX_SESSION_REQUEST_BYTES = 4 * 1024;
/** Bytes of client → relay audio per millisecond (16 kHz PCM16 mono). */
export const INPUT_BYTES_PER_MS = (INPUT_SAMPLE_RATE * 2) / 1000;

/** `POST /v1/sessions` body (the key may travel in `Authorization: Bearer` instead). */
export interface SessionRequest {
  key?: string;
  bot?: string;
  /**
   * A signed-in visitor: a JWT (HS256) the site's server signed with the key's visitor secret.
   * Its claims reach the bot as trusted `user` context (docs/protocol.md §2, "Signed-in visitors").
   */
  visitor_token?: string;
}

/** `201 Created` answer to `POST /v1/sessions`. */
export interface SessionGrant {
  /** Opaque, single-use session token: goes in the subprotocol list as `bearer.<token>`. */
  token: string;
  /** ISO 8601: the upgrade must happen before this. */
  expires_at: string;
  ws_url: string;
  bot: string;
  /** The trusted visitor claims this session carries (present when a `visitor_token` was accepted). */
  user?: VisitorClaims;
}

/** Trusted claims of a signed-in visitor: flat, short, JSON scalars (`id` is the JWT's `sub`). */
export type VisitorClaims = Record<string, string | number | boolean>;
/** The longest a visitor token may live (`exp - iat`), in seconds. */
export const MAX_VISITOR_TOKEN_TTL_SECONDS = 600;
/** Longest `visitor_token`, in characters. */
export const MAX_VISITOR_TOKEN_CHARS = 2048;

/** Every HTTP error answer (also the `X-Voicebot-Error` header's code). */
export interface ErrorBody {
  error: { code: ErrorCodeOrUnknown; message: string };
}

/**
 * `POST /v1/bot-info?key=vb_pk_…&bot=…` (no body): what a page may show before any session — the
 * bot's name and greeting — under the same key, origin and bot checks as `POST /v1/sessions` (the
 * same errors). A POST because browsers send no `Origin` with a same-origin GET.
 */
export const BOT_INFO_PATH = '/v1/bot-info';

/** `200 OK` answer to `POST /v1/bot-info`. */
export interface BotInfo {
  bot: string;
  /** The bot's `name`. */
  name: string;
  /**
   * The bot's `greeting`, which the relay speaks as turn 1 of a new conversation; absent when the
   * bot has none or it has `{{…}}` placeholders (filled per conversation).
   */
  greeting?: string;
}
