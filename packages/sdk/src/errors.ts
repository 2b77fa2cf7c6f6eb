import type { ErrorCodeOrUnknown } from './protocol/index.js';

/** Errors only the browser can have; the relay's codes (`ErrorCode`) pass through unchanged. */
export type ClientErrorCode =
  | 'mic_permission_denied'
  | 'mic_not_found'
  | 'mic_unavailable'
  | 'audio_blocked'
  | 'audio_unsupported'
  /** A file the SDK loads at run time (an AudioWorklet module) could not be loaded; `error.url` names it. */
  | 'assets_unavailable'
  | 'relay_unreachable'
  | 'connection_lost'
  | 'turn_lost'
  | 'not_connected'
  | 'vad_unavailable'
  /** In-browser speech recognition (`stt: 'browser'`) could not load or run. */
  | 'stt_unavailable'
  /**
   * Not fatal: the open microphone has delivered digital silence (below −90 dBFS) for
   * `MIC_SILENT_MS` while unmuted — a hardware mute switch, a muted input in the system settings,
   * or a virtual device with nothing behind it. A quiet room is well above that floor.
   */
  | 'mic_silent'
  /** `setOutputDevice`: this browser cannot choose the speaker (no `setSinkId`). */
  | 'output_unsupported';

/** Typed as the known codes; a code from a newer relay still arrives, as a plain string. */
export type VoiceBotErrorCode = ClientErrorCode | ErrorCodeOrUnknown;

export interface VoiceBotErrorOptions {
  fatal?: boolean;
  turnId?: number;
  status?: number;
  /** The URL that failed (`assets_unavailable`). */
  url?: string;
  cause?: unknown;
}

export class VoiceBotError extends Error {
  override readonly name = 'VoiceBotError';
  constructor(
    readonly code: VoiceBotErrorCode,
    message: string,
    readonly options: VoiceBotErrorOptions = {},
  ) {
    super(message);
  }

  get fatal(): boolean {
    return this.options.fatal ?? false;
  }

  /** The URL that failed to load, for `assets_unavailable`. */
  get url(): string | undefined {
    return this.options.url;
  }
}

/** Maps a `getUserMedia` failure to something a UI can explain. */
export function micError(error: unknown): VoiceBotError {
  const name =
    error instanceof Error || (typeof DOMException !== 'undefined' && error instanceof DOMException)
      ? (error as Error).name
      : '';
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return new VoiceBotError(
      'mic_permission_denied',
      'Microphone access was blocked. Allow it in the browser’s site settings and try again.',
      { cause: error },
    );
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return new VoiceBotError(
      'mic_not_found',
      'No microphone was found. Connect one and try again.',
      { cause: error },
    );
  if (name === 'NotReadableError' || name === 'AbortError')
    return new VoiceBotError(
      'mic_unavailable',
      'The microphone is in use by another application or could not be started.',
      { cause: error },
    );
  return new VoiceBotError('mic_unavailable', 'The microphone could not be opened.', {
    cause: error,
  });
}

/**
 * Why a file the SDK loads at run time failed: looks at the URL again (a 404, an HTML page in its
 * place — a dev server's fallback for a missing file —, or no answer) and says so, naming the URL.
 */
export async function assetError(
  url: string,
  what: string,
  cause: unknown,
): Promise<VoiceBotError> {
  let reason: string;
  try {
    // (Asserted: Node's RequestInit, which the SDK's Node-run unit tests see, has no `cache`.)
    const response = await fetch(url, {
      credentials: 'same-origin',
      cache: 'no-store',
    } as RequestInit);
    const type = response.headers.get('content-type') ?? '';
    await response.body?.cancel().catch(() => undefined);
    if (!response.ok) reason = `HTTP ${response.status}`;
    else if (/html/i.test(type))
      reason = `it was answered with an HTML page (${type}), not the file — is it missing?`;
    else
      reason = `it was found (${type || 'no content type'}) but could not be loaded: ${cause instanceof Error ? cause.message : String(cause)}`;
  } catch {
    reason = 'it could not be fetched (network, CORS or Content-Security-Policy)';
  }
  return new VoiceBotError(
    'assets_unavailable',
    `The voice assistant could not load ${what} from ${url}: ${reason}. If you bundle the SDK, see "Bundlers" in the @voice-bot/sdk README (or set assetBaseUrl to where its worklets/ and vad/ folders are served).`,
    { url, cause },
  );
}
