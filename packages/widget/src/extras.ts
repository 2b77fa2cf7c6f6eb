/**
 * The parts of `<voice-bot>` that most conversations never need, in a chunk of their own (the
 * script tag's first download has a hard budget): the handoff card, the feedback buttons under
 * replies, links in replies, the recording-consent notice and the audio device menu. The element
 * imports this module the first time it needs one.
 */
import {
  adoptStyles,
  css,
  html,
  nothing,
  supportsAdoptingStyleSheets,
  svg,
  type TemplateResult,
} from 'lit';
import {
  VoiceBotError,
  type AudioDevices,
  type BotInfo,
  type HandoffEvent,
  type HistoryMessage,
  type VoiceBotEvents,
} from '@voice-bot/sdk';
import type { VoiceBotController } from './controller.js';
import type { ExtraStrings, UiStrings } from './i18n.js';
import { REFUSALS, describeError } from './error-help.js';
import { icons } from './icons.js';
import { linkify } from './links.js';

/** What this module uses of the element. */
export interface ExtrasHost extends HTMLElement {
  readonly ui: UiStrings;
  readonly controller: VoiceBotController;
  requestUpdate(): void;
  readonly updateComplete: Promise<boolean>;
  /** Set by {@link install}. */
  extrasApi: Extras | undefined;
  /** The `greeting` and `bot-name` attributes (filled from the relay when the page gives none). */
  greeting: string;
  botName: string;
}

/** What the element renders with this module. */
export interface Extras {
  card(host: ExtrasHost, handoff: HandoffEvent): TemplateResult;
  reply(host: ExtrasHost, message: HistoryMessage): TemplateResult;
  error(host: ExtrasHost, error: VoiceBotError, actions: ErrorActions): TemplateResult;
  /**
   * Before the microphone opens: true when the site asks no consent (`consent` attribute) or the
   * visitor gave it; otherwise shows the notice and returns false (its Accept button starts).
   */
  consented(host: ExtrasHost): boolean;
  /** Above the controls: the consent notice while it is shown, and the device menu while talking. */
  panel(host: ExtrasHost): TemplateResult;
}

/** The element's handlers for the error's buttons (retry must run inside the click: it may open the mic). */
export interface ErrorActions {
  retry(): void;
  typeInstead(): void;
  dismiss(): void;
}

const en: ExtraStrings = {
  handoffTitle: 'Talk to a person',
  handoffText: 'Our team can help. Choose how to reach us:',
  handoffNotified: 'Our team has been told and will get back to you.',
  handoffCall: 'Call {phone}',
  handoffEmail: 'Email {email}',
  handoffChat: 'Open live chat',
  handoffClose: 'Hide',
  feedbackUp: 'Helpful answer',
  feedbackDown: 'Not helpful',
  feedbackComment: 'What was missing? (optional)',
  feedbackSend: 'Send',
  feedbackThanks: 'Thanks for your feedback',
  newTab: '(opens in a new tab)',
  consentAccept: 'Accept and talk',
  consentDecline: 'Not now',
  consentLink: 'Privacy notice',
  devices: 'Audio devices',
  microphone: 'Microphone',
  speaker: 'Speaker',
  defaultDevice: 'System default',
  micSilent:
    'Your microphone is on but sends only silence. Check its mute switch or your system’s sound settings, or choose another microphone.',
  retry: 'Try again',
  typeInstead: 'Type instead',
  dismiss: 'Dismiss',
  errorCode: 'Error code',
  micDeniedTitle: 'Microphone access is blocked',
  micDeniedHelp:
    'To talk, click the lock or camera icon in the address bar, allow the microphone for this site, then press Try again. You can also type your question instead.',
  micNotFound: 'No microphone was found. Connect one and try again, or type your question instead.',
  micUnavailable:
    'The microphone is being used by another app or could not start. Close that app and try again, or type instead.',
  unreachable: 'The assistant can’t be reached right now. Please try again later.',
  notSetUp: 'This assistant isn’t set up for this website.',
  notSetUpHelp:
    'If you own this site, check that the assistant’s client key allows this website’s address.',
  unavailable: 'This assistant isn’t available on this website right now.',
  audioBlocked: 'Your browser blocked sound. Press the talk button again to allow it.',
  audioUnsupported: 'This browser can’t use voice here. You can type your question instead.',
  assetsUnavailable:
    'Voice isn’t working on this site right now: some of its files could not be loaded. You can type your question instead.',
  assetsUnavailableHelp:
    'If you own this site, the browser console and the error code below name the file that is missing.',
  sttUnavailable:
    'Speech recognition isn’t working in this browser right now. Try again, or type your question instead.',
  turnLost: 'The connection dropped before the answer arrived. Please ask again.',
  upstream: 'The assistant had trouble answering. Please try again in a moment.',
  tooLong: 'That was too long. Please keep it shorter.',
  generic: 'Something went wrong. Please try again.',
};

export const EXTRA_STRINGS_EN = en;

const strings = (host: ExtrasHost): ExtraStrings => ({ ...en, ...definedOnly(host.ui) });

function definedOnly(ui: UiStrings): Partial<ExtraStrings> {
  const out: Partial<Record<keyof ExtraStrings, string>> = {};
  for (const key of Object.keys(en) as (keyof ExtraStrings)[]) {
    const value = ui[key];
    if (typeof value === 'string') out[key] = value;
  }
  return out;
}

interface Feedback {
  turnId: number;
  step: 'ask' | 'comment' | 'sent';
}

/** Replies of this page's sessions that can be rated: the stored message → its turn. */
const feedbackOf = new WeakMap<HistoryMessage, Feedback>();
const installed = new WeakSet<ExtrasHost>();
/** Errors whose hint for the site owner was written to the browser's console. */
const warned = new WeakSet<VoiceBotError>();

interface PanelState {
  /** The consent notice is shown. */
  asking: boolean;
  /** Consent given where the page cannot store it (storage blocked): for this page load. */
  given: Set<string>;
  devices: AudioDevices | undefined;
  /** The device list is being read for the current voice session. */
  listed: boolean;
  input: string;
  output: string;
  /** The key `botInfo` asked about (the relay's answer names the bot, or refuses the key). */
  askedInfo: string;
  /** The relay refused the key, origin or bot before any session: shown until the page changes them. */
  refused: VoiceBotError | undefined;
  /** The page heard of `refused` (a `voice-bot:error` from here or from the session). */
  reported: boolean;
  /** The bot name and greeting `botInfo` put in the element ('' for none): the page's own stay. */
  filled: { botName: string; greeting: string };
}
const panels = new WeakMap<ExtrasHost, PanelState>();
const panelOf = (host: ExtrasHost): PanelState => {
  let state = panels.get(host);
  if (!state) {
    state = {
      asking: false,
      given: new Set(),
      devices: undefined,
      listed: false,
      input: '',
      output: '',
      askedInfo: '',
      refused: undefined,
      reported: false,
      filled: { botName: '', greeting: '' },
    };
    panels.set(host, state);
  }
  return state;
};

/** A thumb up; the "down" button turns it over (CSS). */
const thumb = svg`<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M7 10v11H4V10zM7 10l4-7a2 2 0 0 1 3 2l-1 5h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 17.6 21H7"/></svg>`;

const styles = css`
  /* Refused key, origin or bot: nothing to press that could work. */
  .panel:has(> [data-refused]) > :is(.controls, form) {
    display: none;
  }
  .msg a {
    color: inherit;
    text-decoration: underline;
    text-underline-offset: 2px;
  }
  .msg a:focus-visible {
    outline: 2px solid var(--_focus);
    outline-offset: 1px;
  }
  .feedback {
    display: flex;
    flex-wrap: wrap;
    align-items: center;
    gap: 2px;
    margin: 4px -6px -4px;
    white-space: normal;
    color: var(--_muted);
    font-size: 0.85em;
  }
  .feedback button {
    width: 30px;
    height: 30px;
    border-radius: 50%;
    display: grid;
    place-items: center;
  }
  .feedback button:hover {
    background: var(--voice-bot-feedback-hover-bg, var(--_bg));
    color: var(--_fg);
  }
  .feedback .thumb-down svg {
    transform: rotate(180deg);
  }
  .feedback form {
    display: flex;
    gap: 6px;
    width: 100%;
    padding: 0 6px;
  }
  .feedback textarea {
    flex: 1;
    min-width: 0;
    resize: none;
    padding: 6px 10px;
    border: 1px solid var(--_border);
    border-radius: 10px;
    background: var(--_bg);
    color: var(--_fg);
    font: inherit;
  }
  .feedback form button {
    width: auto;
    height: auto;
    padding: 6px 12px;
    border-radius: 999px;
    background: var(--_accent);
    color: var(--_accent-fg);
  }
  .feedback small {
    padding: 4px 6px;
  }
  .consent {
    margin: 0 12px 8px;
    padding: 10px 12px;
    border: 1px solid var(--_border);
    border-radius: 14px;
    background: var(--_surface);
  }
  .consent p {
    margin: 0 0 8px;
  }
  .consent a {
    color: inherit;
    text-decoration: underline;
  }
  .devices {
    margin: 0 12px 6px;
    color: var(--_muted);
    font-size: 0.85em;
  }
  .devices summary {
    cursor: pointer;
    width: fit-content;
  }
  .devices label {
    display: flex;
    flex-direction: column;
    gap: 2px;
    margin-top: 6px;
  }
  .devices select {
    font: inherit;
    color: var(--_fg);
    background: var(--_bg);
    border: 1px solid var(--_border);
    border-radius: 8px;
    padding: 4px 6px;
  }
  .handoff {
    --_handoff-accent: var(--voice-bot-handoff-accent, var(--_accent));
    margin: 0 12px 8px;
    padding: 10px 12px 12px 14px;
    border: 1px solid var(--_border);
    border-left: 4px solid var(--_handoff-accent);
    border-radius: 14px;
    background: var(--voice-bot-handoff-bg, var(--_surface));
    color: var(--voice-bot-handoff-fg, var(--_fg));
  }
  .handoff[data-urgency='high'] {
    --_handoff-accent: var(--voice-bot-handoff-urgent-accent, var(--_danger));
  }
  .handoff-head {
    display: flex;
    align-items: center;
    gap: 8px;
  }
  .handoff-head strong {
    flex: 1;
  }
  .handoff-head .icon-button {
    width: 30px;
    height: 30px;
  }
  .handoff-head .icon-button svg {
    width: 16px;
    height: 16px;
  }
  .handoff p {
    margin: 2px 0 10px;
  }
  .handoff-actions {
    display: flex;
    flex-wrap: wrap;
    gap: 8px;
  }
  .handoff-actions a {
    display: inline-flex;
    align-items: center;
    padding: 7px 14px;
    border-radius: 999px;
    border: 1px solid var(--_handoff-accent);
    color: var(--_handoff-accent);
    text-decoration: none;
    font-weight: 600;
  }
  .handoff-actions a:first-child {
    background: var(--_handoff-accent);
    color: var(--voice-bot-handoff-accent-fg, var(--_accent-fg));
  }
  .handoff-actions a:focus-visible {
    outline: 2px solid var(--_focus);
    outline-offset: 2px;
  }
`;

/**
 * Called once per element when the module has loaded: adds the styles to its shadow root, follows
 * its replies so each one can be rated with its turn id, and hands it the render functions.
 */
export function install(host: ExtrasHost): void {
  if (installed.has(host)) return;
  installed.add(host);
  host.extrasApi = { card, reply, error, consented, panel };
  host.requestUpdate();
  const root = host.shadowRoot;
  if (root) {
    if (supportsAdoptingStyleSheets && styles.styleSheet)
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, styles.styleSheet];
    else adoptStyles(root, [styles]);
  }
  host.addEventListener('voice-bot:devices', (event) => {
    panelOf(host).devices = (event as CustomEvent<AudioDevices>).detail;
    host.requestUpdate();
  });
  host.addEventListener('voice-bot:state', (event) => {
    // A new voice session reads the device list again (labels appear once the mic is allowed).
    if ((event as CustomEvent<string>).detail === 'idle') panelOf(host).listed = false;
  });
  host.addEventListener('voice-bot:message', (event) => {
    const { turnId, text } = (event as CustomEvent<VoiceBotEvents['message']>).detail;
    const last = host.controller.messages.at(-1);
    if (last?.role === 'assistant' && last.text === text && !feedbackOf.has(last))
      feedbackOf.set(last, { turnId, step: 'ask' });
  });
}

/** Hosts replies may link to: the page's own, the `link-hosts` attribute's, the relay's `ready.link_hosts`. */
function linkHosts(host: ExtrasHost): string[] {
  return [
    location.host,
    ...(host.getAttribute('link-hosts') ?? '').split(/[\s,]+/).filter(Boolean),
    ...(host.controller.session?.linkHosts ?? []),
  ];
}

/** A finished reply: its text with the allowed links, and the rating buttons when the bot takes feedback. */
export function reply(host: ExtrasHost, message: HistoryMessage): TemplateResult {
  const s = strings(host);
  const parts = linkify(message.text, linkHosts(host), document.baseURI);
  const feedback = host.controller.session?.features.includes('feedback')
    ? feedbackOf.get(message)
    : undefined;
  // prettier-ignore
  return html`${parts.map((part) => typeof part === 'string' ? part : html`<a part="link" href=${part.href} target="_blank" rel="noopener noreferrer">${part.text}<span class="sr-only"> ${s.newTab}</span></a>`)}${feedback ? renderFeedback(host, feedback, s) : nothing}`;
}

function send(host: ExtrasHost, feedback: Feedback, rating: 'up' | 'down', comment = ''): void {
  feedback.step = 'sent';
  host.requestUpdate();
  const client = host.controller.client;
  if (!client) return;
  const note = comment.trim().slice(0, 500);
  void Promise.resolve()
    .then(() => client.sendFeedback(feedback.turnId, rating, note || undefined))
    .catch((error: unknown) => console.warn('[voice-bot] feedback not sent', error));
}

function renderFeedback(host: ExtrasHost, feedback: Feedback, s: ExtraStrings): TemplateResult {
  if (feedback.step === 'sent')
    return html`<span class="feedback" part="feedback" role="status"
      ><small>${s.feedbackThanks}</small></span
    >`;
  if (feedback.step === 'comment')
    return html`<span class="feedback" part="feedback">
      <form
        @submit=${(event: SubmitEvent) => {
          event.preventDefault();
          const text = (event.currentTarget as HTMLFormElement).querySelector('textarea');
          send(host, feedback, 'down', text?.value);
        }}
      >
        <textarea
          part="feedback-comment"
          rows="1"
          maxlength="500"
          aria-label=${s.feedbackComment}
          placeholder=${s.feedbackComment}
        ></textarea>
        <button part="feedback-send" type="submit">${s.feedbackSend}</button>
      </form>
    </span>`;
  return html`<span class="feedback" part="feedback">
    <button
      part="feedback-up"
      aria-label=${s.feedbackUp}
      title=${s.feedbackUp}
      @click=${() => send(host, feedback, 'up')}
    >
      ${thumb}
    </button>
    <button
      part="feedback-down"
      class="thumb-down"
      aria-label=${s.feedbackDown}
      title=${s.feedbackDown}
      @click=${() => {
        feedback.step = 'comment';
        host.requestUpdate();
        void host.updateComplete.then(() =>
          host.shadowRoot
            ?.querySelector<HTMLTextAreaElement>('[part~="feedback-comment"]')
            ?.focus(),
        );
      }}
    >
      ${thumb}
    </button>
  </span>`;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** An http(s) URL only: the chat link is the site owner's, but it still never runs script. */
function chatHref(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** The handoff card: how to reach a person, as the bot's config lists them, and what happens next. */
export function card(host: ExtrasHost, handoff: HandoffEvent): TemplateResult {
  const s = strings(host);
  const { phone, email } = handoff.targets;
  const chat = chatHref(handoff.targets.chatUrl);
  const dial = phone?.replace(/[^\d+]/g, '');
  const mail = email && EMAIL.test(email) ? email : undefined;
  return html`<div
    part="handoff"
    class="handoff"
    role="group"
    aria-labelledby="vb-handoff-title"
    data-urgency=${handoff.urgency}
  >
    <div class="handoff-head">
      <strong id="vb-handoff-title">${s.handoffTitle}</strong>
      <button
        part="handoff-close"
        class="icon-button"
        aria-label=${s.handoffClose}
        title=${s.handoffClose}
        @click=${() => {
          host.controller.handoff = undefined;
          host.requestUpdate();
        }}
      >
        ${icons.close}
      </button>
    </div>
    <p>${handoff.message ?? (chat || dial || mail ? s.handoffText : s.handoffNotified)}</p>
    <div class="handoff-actions">
      ${
        chat
          ? html`<a part="handoff-chat" href=${chat} target="_blank" rel="noopener noreferrer"
              >${s.handoffChat}<span class="sr-only"> ${s.newTab}</span></a
            >`
          : nothing
      }
      ${
        dial && phone
          ? html`<a part="handoff-call" href="tel:${dial}"
              >${s.handoffCall.replace('{phone}', phone)}</a
            >`
          : nothing
      }
      ${
        mail
          ? html`<a part="handoff-email" href="mailto:${mail}"
              >${s.handoffEmail.replace('{email}', mail)}</a
            >`
          : nothing
      }
    </div>
  </div>`;
}

/** The error area: what happened in words a visitor can act on, and the ways out. */
export function error(
  host: ExtrasHost,
  error: VoiceBotError,
  actions: ErrorActions,
): TemplateResult {
  const s = strings(host);
  const help = describeError(error.code, s);
  const canType = help.typeInstead && host.controller.inputMode === 'audio';
  if (help.owner && !warned.has(error)) {
    warned.add(error);
    console.warn(`[voice-bot] ${error.code}: ${help.owner}`);
  }
  return html`<div
    part="error"
    class="error"
    role="alert"
    data-code=${error.code}
    data-kind=${help.kind}
    ?data-refused=${help.refused}
  >
    ${help.title ? html`<strong>${help.title}</strong>` : nothing}
    <p>${help.text}</p>
    ${help.help ? html`<p>${help.help}</p>` : nothing}
    <div class="error-actions">
      ${help.retry ? html`<button class="primary" part="retry-button" @click=${actions.retry}>${s.retry}</button>` : nothing}
      ${canType ? html`<button part="type-instead-button" @click=${actions.typeInstead}>${s.typeInstead}</button>` : nothing}
      ${help.refused ? nothing : html`<button part="dismiss-button" @click=${actions.dismiss}>${s.dismiss}</button>`}
    </div>
    <small class="code">${s.errorCode}: <code>${error.code}</code></small>
  </div>`;
}

/** Where the visitor's consent is kept: per site (localStorage), relay, bot and notice text. */
function consentKey(host: ExtrasHost, text: string): string {
  let hash = 5381;
  for (let i = 0; i < text.length; i++) hash = (hash * 33) ^ text.charCodeAt(i);
  const relay = host.getAttribute('relay') ?? '';
  return `voice-bot:consent|${relay}|${host.getAttribute('bot') ?? ''}|${(hash >>> 0).toString(36)}`;
}

export function consented(host: ExtrasHost): boolean {
  const text = host.getAttribute('consent')?.trim();
  if (!text) return true;
  const key = consentKey(host, text);
  const state = panelOf(host);
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(key);
  } catch {
    // storage blocked (a sandboxed frame, a privacy mode): this page load's answer only
  }
  if (stored || state.given.has(key)) return true;
  state.asking = true;
  host.requestUpdate();
  void host.updateComplete.then(() =>
    host.shadowRoot?.querySelector<HTMLButtonElement>('[part~="consent-accept"]')?.focus(),
  );
  return false;
}

function accept(host: ExtrasHost): void {
  const text = host.getAttribute('consent')?.trim() ?? '';
  const key = consentKey(host, text);
  const state = panelOf(host);
  state.asking = false;
  state.given.add(key);
  try {
    localStorage.setItem(key, new Date().toISOString());
  } catch {
    // kept in memory for this page load
  }
  // Inside the Accept click: the SDK opens audio before its first await.
  void host.controller.start();
  host.requestUpdate();
}

function renderConsent(host: ExtrasHost, s: ExtraStrings): TemplateResult {
  const link = chatHref(host.getAttribute('consent-link') ?? undefined);
  return html`<div part="consent" class="consent" role="group" aria-label=${s.consentLink}>
    <p>
      ${host.getAttribute('consent')}
      ${
        link
          ? html`<a part="consent-link" href=${link} target="_blank" rel="noopener noreferrer"
              >${host.getAttribute('consent-link-text') || s.consentLink}<span class="sr-only">
                ${s.newTab}</span
              ></a
            >`
          : nothing
      }
    </p>
    <div class="error-actions">
      <button class="primary" part="consent-accept" @click=${() => accept(host)}>
        ${s.consentAccept}
      </button>
      <button
        part="consent-decline"
        @click=${() => {
          panelOf(host).asking = false;
          host.requestUpdate();
          void host.updateComplete.then(() =>
            host.shadowRoot?.querySelector<HTMLInputElement>('[part~="input"]')?.focus(),
          );
        }}
      >
        ${s.consentDecline}
      </button>
    </div>
  </div>`;
}

/** The device menu: only with more than one microphone, or where the speaker can be chosen. */
function renderDevices(host: ExtrasHost, s: ExtraStrings): TemplateResult | typeof nothing {
  const state = panelOf(host);
  const client = host.controller.client;
  if (!client || !host.controller.talking) return nothing;
  if (!state.listed) {
    state.listed = true;
    void client.listDevices().then(
      (devices) => {
        state.devices = devices;
        host.requestUpdate();
      },
      () => undefined,
    );
  }
  const devices = state.devices;
  if (!devices || !(devices.inputs.length > 1 || devices.canChooseOutput)) return nothing;
  const options = (list: AudioDevices['inputs'], chosen: string, unnamed: string) =>
    html`<option value="" ?selected=${!chosen}>${s.defaultDevice}</option>
      ${list
        .filter((d) => d.id !== 'default')
        .map(
          (d, i) =>
            html`<option value=${d.id} ?selected=${d.id === chosen}>
              ${d.label || `${unnamed} ${i + 1}`}
            </option>`,
        )}`;
  return html`<details part="devices" class="devices">
    <summary>${s.devices}</summary>
    ${
      devices.inputs.length > 1
        ? html`<label
            >${s.microphone}
            <select
              part="device-input"
              @change=${(event: Event) => {
                const id = (event.target as HTMLSelectElement).value;
                state.input = id;
                void client.setInputDevice(id || undefined).catch((e: unknown) => {
                  console.warn('[voice-bot] microphone not changed', e);
                });
              }}
            >
              ${options(devices.inputs, state.input, s.microphone)}
            </select></label
          >`
        : nothing
    }
    ${
      devices.canChooseOutput
        ? html`<label
            >${s.speaker}
            <select
              part="device-output"
              @change=${(event: Event) => {
                const id = (event.target as HTMLSelectElement).value;
                state.output = id;
                void client.setOutputDevice(id).catch((e: unknown) => {
                  console.warn('[voice-bot] speaker not changed', e);
                });
              }}
            >
              ${options(devices.outputs, state.output, s.speaker)}
            </select></label
          >`
        : nothing
    }
  </details>`;
}

export function panel(host: ExtrasHost): TemplateResult {
  const s = strings(host);
  const state = panelOf(host);
  const c = host.controller;
  // Once the element has a key (a page may set it after the element renders), and again for another.
  const asking = `${host.getAttribute('relay')}|${host.getAttribute('key')}|${host.getAttribute('bot')}`;
  if (state.askedInfo !== asking && host.getAttribute('key')) {
    state.askedInfo = asking;
    void botInfo(host, state, asking);
  }
  if (c.connected) state.refused = undefined;
  if (state.refused && c.error?.code === state.refused.code) state.reported = true;
  // The refusal stands (a typed message or a retry cleared it): show it again, after this render.
  if (state.refused && !c.error && !c.active)
    void host.updateComplete.then(() => showRefusal(host, state));
  return html`${state.asking && !c.talking ? renderConsent(host, s) : nothing}${renderDevices(host, s)}`;
}

/**
 * Shows the standing refusal in the error area, unless a session is open or opening (the relay
 * tells that one why, and the page hears it from the session), and tells the page once.
 */
function showRefusal(host: ExtrasHost, state: PanelState): void {
  const c = host.controller;
  const refused = state.refused;
  if (!refused || c.error || c.active) return;
  c.error = refused;
  host.requestUpdate();
  if (state.reported) return;
  state.reported = true;
  // As the SDK's errors are: a page may report it.
  host.dispatchEvent(
    new CustomEvent('voice-bot:error', { detail: refused, bubbles: true, composed: true }),
  );
}

/** Puts the relay's bot name or greeting in the element, unless the page gave its own. */
function fill(
  host: ExtrasHost,
  state: PanelState,
  field: 'botName' | 'greeting',
  value: unknown,
): void {
  if (typeof value !== 'string' || host[field] !== state.filled[field]) return;
  host[field] = state.filled[field] = value;
}

/**
 * Asks the relay about the key before any session (`POST /v1/bot-info`). The bot's name and
 * greeting fill what the page leaves out; a refusal of the key, origin or bot that asking again
 * cannot fix shows at once, in the error area, instead of a widget that looks ready. Anything else
 * (no network, 429, 5xx, an older relay) changes nothing: the session request decides.
 */
async function botInfo(host: ExtrasHost, state: PanelState, asked: string): Promise<void> {
  const key = host.getAttribute('key');
  if (!key) return;
  const relay = host.getAttribute('relay') || new URL(import.meta.url).origin;
  const url = new URL(`${relay.replace(/\/+$/, '')}/v1/bot-info`);
  url.searchParams.set('key', key);
  const bot = host.getAttribute('bot');
  if (bot) url.searchParams.set('bot', bot);
  // Outside the render that asked: what the relay said about the page's previous key or bot goes.
  await host.updateComplete;
  if (state.askedInfo !== asked) return;
  const c = host.controller;
  state.refused = undefined;
  if (c.error && REFUSALS.has(c.error.code) && !c.active) c.dismissError();
  fill(host, state, 'botName', '');
  fill(host, state, 'greeting', '');
  try {
    const response = await fetch(url, { method: 'POST', credentials: 'omit' });
    if (!response.ok) {
      if (response.status !== 401 && response.status !== 403) return;
      const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
      const code = body.error?.code;
      if (typeof code !== 'string' || !REFUSALS.has(code) || state.askedInfo !== asked) return;
      const message = typeof body.error?.message === 'string' ? body.error.message : code;
      state.refused = new VoiceBotError(code, message, { fatal: true, status: response.status });
      // A session that was refused too already told the page.
      state.reported = host.controller.error?.code === code;
      showRefusal(host, state);
      return;
    }
    const info = (await response.json()) as BotInfo;
    if (state.askedInfo !== asked) return;
    fill(host, state, 'botName', info.name);
    fill(host, state, 'greeting', info.greeting);
  } catch {
    // an older relay or no network: the defaults stay
  }
}
