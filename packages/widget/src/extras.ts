/**
 * The parts of `<voice-bot>` that most conversations never need, in a chunk of their own (the
 * script tag's first download has a hard budget): the handoff card, the feedback buttons under
 * replies, and links in replies. The element imports this module the first time it needs one.
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
import type { HandoffEvent, HistoryMessage, VoiceBotError, VoiceBotEvents } from '@voice-bot/sdk';
import type { VoiceBotController } from './controller.js';
import type { ExtraStrings, UiStrings } from './i18n.js';
import { describeError } from './error-help.js';
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
}

/** What the element renders with this module. */
export interface Extras {
  card(host: ExtrasHost, handoff: HandoffEvent): TemplateResult;
  reply(host: ExtrasHost, message: HistoryMessage): TemplateResult;
  error(host: ExtrasHost, error: VoiceBotError, actions: ErrorActions): TemplateResult;
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

/** A thumb up; the "down" button turns it over (CSS). */
const thumb = svg`<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M7 10v11H4V10zM7 10l4-7a2 2 0 0 1 3 2l-1 5h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 17.6 21H7"/></svg>`;

const styles = css`
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
  host.extrasApi = { card, reply, error };
  host.requestUpdate();
  const root = host.shadowRoot;
  if (root) {
    if (supportsAdoptingStyleSheets && styles.styleSheet)
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, styles.styleSheet];
    else adoptStyles(root, [styles]);
  }
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
  const s = host.ui;
  const help = describeError(error.code, s);
  const canType = help.typeInstead && host.controller.inputMode === 'audio';
  return html`<div
    part="error"
    class="error"
    role="alert"
    data-code=${error.code}
    data-kind=${help.kind}
  >
    ${help.title ? html`<strong>${help.title}</strong>` : nothing}
    <p>${help.text}</p>
    ${help.help ? html`<p>${help.help}</p>` : nothing}
    <div class="error-actions">
      ${help.retry ? html`<button class="primary" part="retry-button" @click=${actions.retry}>${s.retry}</button>` : nothing}
      ${canType ? html`<button part="type-instead-button" @click=${actions.typeInstead}>${s.typeInstead}</button>` : nothing}
      <button part="dismiss-button" @click=${actions.dismiss}>${s.dismiss}</button>
    </div>
    <small class="code">${s.errorCode}: <code>${error.code}</code></small>
  </div>`;
}
