/**
 * Every string the widget shows or announces, per UI language. `lang="…"` picks a table; the
 * `strings` property overrides any subset (e.g. your own wording, or a language we don't ship).
 */
/**
 * Strings of the parts that load on demand (the handoff card, the feedback buttons, the consent
 * notice, the device menu, the error area): their English lives with them (`extras.ts`), the other
 * languages' tables carry them too.
 */
export interface ExtraStrings {
  /** The handoff card's heading. */
  handoffTitle: string;
  /** Under the heading when the site owner configured no message of their own. */
  handoffText: string;
  /** …when the page offers no way to reach the team (the team was notified instead). */
  handoffNotified: string;
  /** Button: phone call; `{phone}` is replaced. */
  handoffCall: string;
  /** Button: write an email; `{email}` is replaced. */
  handoffEmail: string;
  /** Button: open the site's live chat (in a new tab). */
  handoffChat: string;
  /** Name of the button that hides the card. */
  handoffClose: string;
  /** Names of the rating buttons under a reply. */
  feedbackUp: string;
  feedbackDown: string;
  /** The optional comment after a thumbs down. */
  feedbackComment: string;
  feedbackSend: string;
  /** Shown once the rating was sent. */
  feedbackThanks: string;
  /** After a link that opens in a new tab, for screen readers. */
  newTab: string;
  /** The recording-consent notice (`consent` attribute): its buttons, and its link's default text. */
  consentAccept: string;
  consentDecline: string;
  consentLink: string;
  /** The device menu (while talking): its summary, its two choices, and the system default. */
  devices: string;
  microphone: string;
  speaker: string;
  defaultDevice: string;
  /** `mic_silent`: the microphone delivers only digital silence. */
  micSilent: string;
  // the error area (error-help.ts)
  retry: string;
  typeInstead: string;
  dismiss: string;
  errorCode: string;
  micDeniedTitle: string;
  micDeniedHelp: string;
  micNotFound: string;
  micUnavailable: string;
  unreachable: string;
  notSetUp: string;
  notSetUpHelp: string;
  /** The site's client key was revoked (`key_revoked`): the assistant is off here for now. */
  unavailable: string;
  audioBlocked: string;
  audioUnsupported: string;
  /** A file voice needs (an audio worklet) could not be loaded from the site (`assets_unavailable`). */
  assetsUnavailable: string;
  /** For the site owner, under `assetsUnavailable`. */
  assetsUnavailableHelp: string;
  /** In-browser speech recognition could not load (`stt="browser"` without a relay fallback). */
  sttUnavailable: string;
  turnLost: string;
  upstream: string;
  tooLong: string;
  generic: string;
}

export interface UiStrings extends Partial<ExtraStrings> {
  /** Header title when no `bot-name` is set. */
  title: string;
  /** Launcher button (floating mode). */
  open: string;
  close: string;
  /** The talk toggle's name (its state is `aria-pressed`). */
  talk: string;
  start: string;
  stop: string;
  mute: string;
  unmute: string;
  end: string;
  clear: string;
  inputLabel: string;
  inputPlaceholder: string;
  send: string;
  transcriptLabel: string;
  you: string;
  bot: string;
  interrupted: string;
  /** Shown while the reply is being prepared. */
  typing: string;
  // status line
  idle: string;
  idleText: string;
  connecting: string;
  listening: string;
  userSpeaking: string;
  thinking: string;
  speaking: string;
  replying: string;
  muted: string;
  stateError: string;
  toolRunning: string;
  /** In-browser speech recognition loading (`stt="browser"`); `{percent}` is replaced. */
  preparingStt: string;
}

const en: UiStrings = {
  title: 'Voice assistant',
  open: 'Open voice assistant',
  close: 'Close',
  talk: 'Talk to the assistant',
  start: 'Start talking',
  stop: 'Stop talking',
  mute: 'Mute microphone',
  unmute: 'Unmute microphone',
  end: 'End conversation',
  clear: 'Clear conversation',
  inputLabel: 'Message',
  inputPlaceholder: 'Type a message…',
  send: 'Send',
  transcriptLabel: 'Conversation',
  you: 'You',
  bot: 'Assistant',
  interrupted: 'interrupted',
  typing: 'Preparing a reply',
  idle: 'Press the button to talk',
  idleText: 'Type a message to start',
  connecting: 'Connecting…',
  listening: 'Listening',
  userSpeaking: 'You’re speaking',
  thinking: 'Thinking…',
  speaking: 'Speaking',
  replying: 'Replying…',
  muted: 'Microphone muted',
  stateError: 'Something went wrong',
  toolRunning: 'Looking that up…',
  preparingStt: 'Preparing speech recognition… {percent} %',
};

/** The tables besides English load on demand (a separate chunk each), keeping the first download small. */
const loaders = {
  hi: () => import('./i18n/hi.js'),
  es: () => import('./i18n/es.js'),
} satisfies Record<string, () => Promise<{ strings: UiStrings }>>;

export type UiLanguage = 'en' | keyof typeof loaders;

const loaded = new Map<UiLanguage, UiStrings>([['en', en]]);

const isLanguage = (value: string): value is UiLanguage =>
  value === 'en' || Object.prototype.hasOwnProperty.call(loaders, value);

/** `lang` attribute → its primary subtag if we ship it → the browser's language → English. */
export function resolveLanguage(attribute: string | null | undefined): UiLanguage {
  for (const candidate of [
    attribute,
    typeof navigator === 'undefined' ? undefined : navigator.language,
  ]) {
    const prefix = (candidate ?? '').toLowerCase().split(/[-_]/)[0] ?? '';
    if (isLanguage(prefix)) return prefix;
  }
  return 'en';
}

/** The strings of a language if already loaded (English always is). */
export function loadedStrings(language: UiLanguage): UiStrings | undefined {
  return loaded.get(language);
}

/** Loads a language's strings (English on failure). */
export async function loadStrings(language: UiLanguage): Promise<UiStrings> {
  const known = loaded.get(language);
  if (known) return known;
  const strings =
    language === 'en'
      ? en
      : await loaders[language]().then(
          (m) => m.strings,
          () => en,
        );
  loaded.set(language, strings);
  return strings;
}

export const ENGLISH = en;
