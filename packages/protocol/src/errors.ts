/**
 * Every error the relay reports, as `error.code` on the socket or `error.code` in an HTTP JSON body.
 * `docs/protocol.md` documents each one; keep the two in step.
 */
export const ERROR_CODES = [
  // handshake / HTTP
  'invalid_key',
  'key_revoked',
  'origin_not_allowed',
  'bot_not_allowed',
  'unknown_bot',
  'invalid_token',
  'token_expired',
  'token_reused',
  'missing_origin',
  'bad_request',
  'not_found',
  /** `POST /v1/sessions` with a `visitor_token` that is forged, expired, too long-lived or not for this key. */
  'invalid_visitor_token',
  // protocol
  'bad_json',
  'unknown_type',
  'invalid_message',
  'message_too_large',
  'protocol_version',
  'not_started',
  'already_started',
  'binary_not_expected',
  'bad_audio_frame',
  'empty_utterance',
  'utterance_too_long',
  'text_too_long',
  'stale_turn',
  /** `feedback` in a session whose bot does not take it (no records, or `feedback` off). */
  'feedback_unavailable',
  /** `feedback` names a turn this session has not recorded. */
  'unknown_turn',
  /** `tool_result` names a call that is not awaited (answered already, cancelled, timed out, or never made). */
  'unknown_tool_call',
  // providers
  'upstream_stt',
  'upstream_llm',
  'upstream_tts',
  'upstream_timeout',
  'internal',
  // limits, quotas and lifecycle
  'rate_limited',
  'too_many_sessions',
  'quota_exceeded',
  'idle_timeout',
  'session_too_long',
  'shutting_down',
  'slow_client',
  'payload_too_large',
  /** The relay's database does not answer: new sessions are refused until it does (503, retry). */
  'storage_unavailable',
  // admin API and /metrics
  'unauthorized',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * An error code as received: one of {@link ERROR_CODES} (so editors complete and narrow them), or a
 * code a newer relay added, which clients must tolerate (treat it by its HTTP status or `fatal`).
 */
export type ErrorCodeOrUnknown = ErrorCode | (string & Record<never, never>);

const KNOWN = new Set<string>(ERROR_CODES);

/** True for the codes this version of the protocol defines. */
export function isKnownErrorCode(code: string): code is ErrorCode {
  return KNOWN.has(code);
}

/** WebSocket close codes the relay uses (4000–4999 is the application range). */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  protocolVersion: 4000,
  startTimeout: 4001,
  idleTimeout: 4002,
  keyRevoked: 4003,
  sessionTooLong: 4004,
  quotaExceeded: 4005,
  slowClient: 4006,
} as const;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
