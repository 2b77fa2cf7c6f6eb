import type { VoiceBotEvents } from '@voice-bot/sdk';
import { VoiceBotElement } from './voice-bot-element.js';

export {
  VoiceBotElement,
  type WidgetMode,
  type WidgetPosition,
  type WidgetTheme,
} from './voice-bot-element.js';
export { VoiceBotController, SDK_EVENTS, type SessionConfig } from './controller.js';
export { ENGLISH, loadStrings, resolveLanguage, type UiLanguage, type UiStrings } from './i18n.js';
export { describeError, type ErrorHelp } from './error-help.js';
/** For `stt="browser"` in a bundled app: `setWhisperLoader(() => import('@voice-bot/stt-whisper'))`. */
export { setWhisperLoader } from '@voice-bot/sdk';
export type {
  AudioDevices,
  ClientMetrics,
  HandoffEvent,
  HistoryMessage,
  ToolEvent,
  VoiceBotClient,
  VoiceBotError,
  VoiceBotErrorCode,
  VoiceBotEvents,
  VoiceBotOptions,
  VoiceBotState,
} from '@voice-bot/sdk';

/** The DOM events `<voice-bot>` dispatches: every SDK event as `voice-bot:<name>`, payload in `detail`. */
export type VoiceBotElementEventMap = {
  [K in keyof VoiceBotEvents as `voice-bot:${K}`]: CustomEvent<VoiceBotEvents[K]>;
};

declare global {
  interface HTMLElementTagNameMap {
    'voice-bot': VoiceBotElement;
  }
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface HTMLElementEventMap extends VoiceBotElementEventMap {}
}

if (typeof customElements !== 'undefined' && !customElements.get('voice-bot')) {
  customElements.define('voice-bot', VoiceBotElement);
}
