import type { ErrorCodeOrUnknown } from './protocol/index.js';

/** Errors only the browser can have; the relay's codes (`ErrorCode`) pass through unchanged. */
export type ClientErrorCode =
  | 'mic_permission_denied'
  | 'mic_not_found'
  | 'mic_unavailable'
  | 'audio_blocked'
  | 'audio_unsupported'
  | 'relay_unreachable'
  | 'connection_lost'
  | 'turn_lost'
  | 'not_connected'
  | 'vad_unavailable'
  /** In-browser speech recognition (`stt: 'browser'`) could not load or run. */
  | 'stt_unavailable';

/** Typed as the known codes; a code from a newer relay still arrives, as a plain string. */
export type VoiceBotErrorCode = ClientErrorCode | ErrorCodeOrUnknown;

export class VoiceBotError extends Error {
  override readonly name = 'VoiceBotError';
  constructor(
    readonly code: VoiceBotErrorCode,
    message: string,
    readonly options: { fatal?: boolean; turnId?: number; status?: number; cause?: unknown } = {},
  ) {
    super(message);
  }

  get fatal(): boolean {
    return this.options.fatal ?? false;
  }
}

/** Maps a `getUserMedia` failure to something a UI can explain. */
export function micError(error: unknown): VoiceBotError {
  const name = error instanceof Error || (typeof DOMException !== 'undefined' && error instanceof DOMException) ? (error as Error).name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return new VoiceBotError('mic_permission_denied', 'Microphone access was blocked. Allow it in the browser’s site settings and try again.', { cause: error });
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return new VoiceBotError('mic_not_found', 'No microphone was found. Connect one and try again.', { cause: error });
  if (name === 'NotReadableError' || name === 'AbortError')
    return new VoiceBotError('mic_unavailable', 'The microphone is in use by another application or could not be started.', { cause: error });
  return new VoiceBotError('mic_unavailable', 'The microphone could not be opened.', { cause: error });
}
