import type { VoiceBotErrorCode } from '@voice-bot/sdk';
import type { ExtraStrings } from './i18n.js';

/** What the error area says for one error code, and which ways out it offers. */
export interface ErrorHelp {
  kind: 'mic' | 'setup' | 'network' | 'audio' | 'turn' | 'other';
  title?: string;
  text: string;
  help?: string;
  retry: boolean;
  typeInstead: boolean;
  /**
   * A refusal that will not go away by itself (the site's key or setup): the widget offers no
   * talking or typing, and no dismissing, while it stands.
   */
  refused?: boolean;
  /** For the site owner, in the browser's console (English: developers read it there). */
  owner?: string;
}

/**
 * Refusals of the key, origin or bot: asking again cannot help until the site owner acts. Not
 * `unknown_bot`: while a deploy that adds the bot rolls out, an older relay may still answer.
 */
export const REFUSALS: ReadonlySet<string> = new Set([
  'origin_not_allowed',
  'invalid_key',
  'key_revoked',
  'bot_not_allowed',
  'missing_origin',
]);

/** Maps an SDK / relay error code to words a visitor can act on. */
export function describeError(code: VoiceBotErrorCode | string, s: ExtraStrings): ErrorHelp {
  switch (code) {
    case 'mic_permission_denied':
      return {
        kind: 'mic',
        title: s.micDeniedTitle,
        text: s.micDeniedHelp,
        retry: true,
        typeInstead: true,
      };
    case 'mic_not_found':
      return { kind: 'mic', text: s.micNotFound, retry: true, typeInstead: true };
    case 'mic_unavailable':
      return { kind: 'mic', text: s.micUnavailable, retry: true, typeInstead: true };
    case 'mic_silent':
      return { kind: 'mic', text: s.micSilent, retry: false, typeInstead: true };
    case 'relay_unreachable':
    case 'connection_lost':
      return { kind: 'network', text: s.unreachable, retry: true, typeInstead: false };
    // The site owner's problem: the visitor can do nothing but leave; say so plainly.
    case 'key_revoked':
      return {
        kind: 'setup',
        text: s.unavailable,
        retry: false,
        typeInstead: false,
        refused: true,
        owner:
          'the client key in this page was revoked: issue a new one (the console’s Keys screen, or voicebot-relay keys create) and put it in the page',
      };
    case 'unknown_bot':
      return {
        kind: 'setup',
        text: s.generic,
        retry: true,
        typeInstead: false,
        owner:
          'the relay knows no bot named by this page’s bot attribute: check it and the relay’s bots (while a deploy that adds the bot rolls out, an older relay may still answer this; Try again reaches a newer one)',
      };
    case 'origin_not_allowed':
    case 'invalid_key':
    case 'bot_not_allowed':
    case 'missing_origin':
      return {
        kind: 'setup',
        text: s.notSetUp,
        help: s.notSetUpHelp,
        retry: false,
        typeInstead: false,
        refused: true,
      };
    case 'audio_blocked':
      return { kind: 'audio', text: s.audioBlocked, retry: true, typeInstead: true };
    case 'audio_unsupported':
      return { kind: 'audio', text: s.audioUnsupported, retry: false, typeInstead: true };
    // The site's files are incomplete (its owner's problem); typing still works.
    case 'assets_unavailable':
      return {
        kind: 'setup',
        text: s.assetsUnavailable,
        help: s.assetsUnavailableHelp,
        retry: true,
        typeInstead: true,
      };
    case 'stt_unavailable':
      return { kind: 'audio', text: s.sttUnavailable, retry: true, typeInstead: true };
    case 'turn_lost':
      return { kind: 'turn', text: s.turnLost, retry: false, typeInstead: false };
    case 'upstream_stt':
    case 'upstream_llm':
    case 'upstream_tts':
    case 'upstream_timeout':
    case 'internal':
      return { kind: 'turn', text: s.upstream, retry: false, typeInstead: false };
    case 'text_too_long':
    case 'utterance_too_long':
    case 'message_too_large':
      return { kind: 'turn', text: s.tooLong, retry: false, typeInstead: false };
    default:
      return { kind: 'other', text: s.generic, retry: true, typeInstead: false };
  }
}
