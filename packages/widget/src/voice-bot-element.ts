import { LitElement, html, nothing, type PropertyValues, type TemplateResult } from 'lit';
import type {
  ClientTool,
  HistoryMessage,
  VoiceBotClient,
  VoiceBotOptions,
  VoiceBotState,
} from '@voice-bot/sdk';
import { VoiceBotController, type SessionConfig } from './controller.js';
import {
  ENGLISH,
  loadStrings,
  loadedStrings,
  resolveLanguage,
  type UiLanguage,
  type UiStrings,
} from './i18n.js';
import type { Extras } from './extras.js';
import { icons } from './icons.js';
import { styles } from './styles.js';

export type WidgetMode = 'floating' | 'inline';
export type WidgetPosition = 'bottom-right' | 'bottom-left' | 'top-right' | 'top-left';
export type WidgetTheme = 'light' | 'dark' | 'auto';

/**
 * Where the relay is when no `relay` attribute is given: the origin this module was served from.
 * With the script tag that is the relay itself (it serves `/widget/`); in a bundled app it is the
 * page's own origin.
 */
const MODULE_ORIGIN = new URL(import.meta.url).origin;

let warnedVoiceAlias = false;
/** `input="voice"` / `output="voice"` still work; the SDK and the protocol say `audio`. */
function warnVoiceAlias(): void {
  if (warnedVoiceAlias) return;
  warnedVoiceAlias = true;
  console.warn(
    '[voice-bot] input="voice" and output="voice" are deprecated: use "audio" (the same word as the SDK).',
  );
}

/** BCP 47 tags for the browser's speech synthesis. */
const SPEECH_LANG: Record<UiLanguage, string> = { en: 'en-US', hi: 'hi-IN', es: 'es-ES' };

/**
 * `<voice-bot>`: an embeddable voice (and text) assistant. All side effects live in
 * {@link VoiceBotController}; this class renders its state and turns clicks into calls.
 */
export class VoiceBotElement extends LitElement {
  static override styles = styles;

  static override properties = {
    relay: { type: String },
    key: { type: String },
    bot: { type: String },
    mode: { type: String, reflect: true },
    position: { type: String, reflect: true },
    input: { type: String },
    output: { type: String },
    tts: { type: String },
    stt: { type: String },
    sttModel: { type: String, attribute: 'stt-model' },
    sttModelBase: { type: String, attribute: 'stt-model-base' },
    sttDtype: { type: String, attribute: 'stt-dtype' },
    sttFallback: { type: String, attribute: 'stt-fallback' },
    greeting: { type: String },
    theme: { type: String, reflect: true },
    assetBase: { type: String, attribute: 'asset-base' },
    botName: { type: String, attribute: 'bot-name' },
    strings: { attribute: false },
    isOpen: { state: true },
  };

  /** Relay base URL. Default: the origin this script was loaded from. */
  relay = '';
  /** Publishable client key (`vb_pk_…`). */
  key = '';
  bot = '';
  mode: WidgetMode = 'floating';
  position: WidgetPosition = 'bottom-right';
  /** `audio` (default): the microphone; `text`: typing only. `voice` is a deprecated alias of `audio`. */
  input: 'audio' | 'text' | 'voice' = 'audio';
  /** `audio` (default): spoken replies; `text`: shown only. `voice` is a deprecated alias of `audio`. */
  output: 'audio' | 'text' | 'voice' = 'audio';
  tts: 'relay' | 'browser' = 'relay';
  stt: 'relay' | 'browser' = 'relay';
  /** Whisper model id, a folder under `stt-model-base` (default `onnx-community/whisper-tiny.en`). */
  sttModel = '';
  /** Where the models are self-hosted (default `models/` beside the widget module). */
  sttModelBase = '';
  /** Weights precision (`q8`, `fp32`…): which `onnx/*.onnx` files are fetched. */
  sttDtype = '';
  /** `relay`: if the model cannot load, the relay transcribes instead; `none` keeps audio in the page. */
  sttFallback: 'none' | 'relay' = 'none';
  greeting = '';
  theme: WidgetTheme = 'auto';
  assetBase = '';
  botName = '';
  /** Overrides for any UI string (see `UiStrings`). */
  strings: Partial<UiStrings> | undefined;
  /**
   * A signed-in visitor's token from your server, or a function returning a fresh one (asked before
   * each session request). Default: the `visitor-token` attribute.
   */
  visitorToken: VoiceBotOptions['visitorToken'];

  private isOpen = false;
  private announcement = '';
  /** @internal The strings in use (read by the extras chunk). */
  ui: UiStrings = ENGLISH;
  /** False while a language's strings load (nothing renders, rather than flash English). */
  private stringsReady = true;
  private language: UiLanguage = 'en';
  private announcedReply = 0;
  private announcedLabel = '';
  private transcriptContent = '';
  /** @internal */
  readonly controller = new VoiceBotController(this, () => this.sessionConfig());
  /** @internal The handoff card, feedback buttons and links: a chunk loaded the first time one is needed. */
  extrasApi: Extras | undefined;
  private extrasLoad: Promise<void> | undefined;

  // `lang` stays the native global attribute/property; we only watch it.
  static override get observedAttributes(): string[] {
    return [...super.observedAttributes, 'lang'];
  }

  override attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    super.attributeChangedCallback(name, old, value);
    if (name === 'lang') this.requestUpdate();
  }

  // ---------------- public API ----------------

  /** The SDK client, once the first conversation (or `start()`/`sendText()`) created it. */
  get client(): VoiceBotClient | undefined {
    return this.controller.client;
  }

  get state(): VoiceBotState {
    return this.controller.state;
  }

  /**
   * Starts talking. Call from a click/key handler: audio must begin inside a user gesture. With a
   * `consent` notice not yet accepted, shows it instead (its Accept button starts).
   */
  start(): Promise<void> {
    return this.consented() ? this.controller.start() : Promise.resolve();
  }

  /** No microphone before the `consent` notice was accepted (the extras chunk asks and remembers). */
  private consented(): boolean {
    return this.extrasApi?.consented(this) ?? !this.hasAttribute('consent');
  }

  /** Ends the conversation (the transcript stays). */
  stop(): Promise<void> {
    return this.controller.stop();
  }

  /**
   * Registers a page-side tool the bot may call (the bot's config lists it in `clientTools`).
   * Returns a function that removes it.
   */
  registerTool(tool: ClientTool): () => void {
    return this.controller.registerTool(tool);
  }

  /** Sends typed text as the visitor (connects first when needed). */
  async sendText(text: string): Promise<void> {
    await this.controller.sendText(text);
  }

  /** Opens the panel (floating mode) and moves focus into it. */
  open(): void {
    if (this.mode === 'inline') return;
    this.isOpen = true;
    this.extras();
    void this.controller.peekHistory();
    void this.updateComplete.then(() => this.focusPanel());
  }

  /** Closes the panel (floating mode); a conversation keeps running. */
  close(): void {
    if (this.mode === 'inline' || !this.isOpen) return;
    const hadFocus = this.shadowRoot?.activeElement != null;
    this.isOpen = false;
    if (hadFocus)
      void this.updateComplete.then(() => this.$<HTMLButtonElement>('.launcher')?.focus());
  }

  // ---------------- lifecycle ----------------

  private sessionConfig(): SessionConfig {
    return {
      relayUrl: (this.relay || MODULE_ORIGIN).replace(/\/+$/, ''),
      clientKey: this.key,
      bot: this.bot,
      input: this.input === 'text' ? 'text' : 'audio',
      output: this.output === 'text' ? 'text' : 'audio',
      tts: this.tts === 'browser' ? 'browser' : 'relay',
      stt: this.stt === 'browser' ? 'browser' : 'relay',
      sttModel: this.sttModel,
      sttModelBase: this.sttModelBase,
      sttDtype: this.sttDtype,
      sttFallback: this.sttFallback === 'relay' ? 'relay' : 'none',
      sttLanguage: (this.getAttribute('lang') ?? '').toLowerCase().split(/[-_]/)[0] ?? '',
      assetBase: this.assetBase,
      lang: SPEECH_LANG[this.language],
      metadata: this.getAttribute('metadata'),
      visitorToken: () => {
        const token = this.visitorToken ?? this.getAttribute('visitor-token') ?? undefined;
        return typeof token == 'function' ? token() : token;
      },
    };
  }

  override willUpdate(changed: PropertyValues<this>): void {
    if (
      (changed.has('input') && this.input === 'voice') ||
      (changed.has('output') && this.output === 'voice')
    )
      warnVoiceAlias();
    this.language = resolveLanguage(this.getAttribute('lang'));
    const table = loadedStrings(this.language);
    if (!table) void loadStrings(this.language).then(() => this.requestUpdate());
    this.stringsReady = table !== undefined;
    this.ui = { ...(table ?? ENGLISH), ...this.strings };
    this.controller.reconfigure();
    // The live region reads a completed reply, else a change of the status line.
    const c = this.controller;
    const label = this.statusLabel();
    if (c.replyCount !== this.announcedReply) {
      this.announcedReply = c.replyCount;
      this.announcement = `${this.ui.bot}: ${c.lastReply}`;
    } else if (this.hasUpdated && label !== this.announcedLabel) {
      this.announcement = label;
    }
    this.announcedLabel = label;
  }

  override updated(changed: PropertyValues<this>): void {
    // Follow new text, but only when the transcript changed (level updates arrive 50 times a second
    // and must not pull a visitor who scrolled up back down).
    const c = this.controller;
    const content = `${c.messages.length}|${c.draft?.length ?? -1}|${c.interim?.length ?? -1}|${c.state === 'thinking'}|${this.isOpen}`;
    const log = this.$<HTMLElement>('.transcript');
    if (log && content !== this.transcriptContent) log.scrollTop = log.scrollHeight;
    // The level drives the meter and the talk button's pulse. Set through the CSSOM: a strict CSP
    // (no 'unsafe-inline' styles) blocks style attributes, which Lit's styleMap writes on first render.
    const level = Math.sqrt(Math.max(c.level.input, c.level.output));
    this.$<HTMLElement>('.status')?.style.setProperty('--vb-level', (level * 1.6).toFixed(3));
    this.$<HTMLElement>('.talk')?.style.setProperty('--vb-level', level.toFixed(3));
    this.transcriptContent = content;
    if (
      (this.mode === 'inline' || this.isOpen) &&
      (changed.has('key') || changed.has('relay') || changed.has('bot'))
    )
      void this.controller.peekHistory();
  }

  // ---------------- rendering ----------------

  /** The extras chunk if loaded; else starts loading it (the element renders again when it is there). */
  private extras(): Extras | undefined {
    this.extrasLoad ??= import('./extras.js').then((m) => m.install(this), console.warn);
    return this.extrasApi;
  }

  private statusLabel(): string {
    const c = this.controller;
    const s = this.ui;
    const textInput = c.inputMode === 'text';
    switch (c.state) {
      case 'connecting':
        return s.connecting;
      case 'listening':
        if (textInput) return s.idleText;
        return c.muted ? s.muted : s.listening;
      case 'user-speaking':
        return s.userSpeaking;
      case 'thinking':
        return c.toolRunning ? s.toolRunning : s.thinking;
      case 'speaking':
        return c.relayAudio || this.tts === 'browser' ? s.speaking : s.replying;
      case 'error':
        return s.stateError;
      case 'idle':
        if (c.talking || (c.active && !c.connected)) return s.connecting;
        return textInput ? s.idleText : s.idle;
    }
  }

  override render(): TemplateResult | typeof nothing {
    if (!this.stringsReady) return nothing;
    const floating = this.mode !== 'inline';
    const c = this.controller;
    const s = this.ui;
    // Loaded before the first reply, so every reply can be rated; before the microphone opens (its
    // consent notice); while talking (the device menu); inline at once (it asks the relay about the
    // key: a refused one shows before any click; a floating panel loads the chunk when it opens).
    if (
      c.session?.features.includes('feedback') ||
      this.hasAttribute('consent') ||
      c.talking ||
      !floating
    )
      this.extras();
    return html`
      <div
        class="${floating ? 'floating' : 'inline'} ${this.isOpen ? 'open' : ''}"
        lang=${this.language}
      >
        ${
          floating
            ? html`<button
                part="launcher"
                class="launcher ${c.active && !this.isOpen ? 'live' : ''}"
                aria-label=${s.open}
                aria-expanded=${this.isOpen ? 'true' : 'false'}
                aria-controls="panel"
                @click=${this.toggle}
                @keydown=${this.onKeydown}
              >
                ${this.isOpen ? icons.close : icons.chat}
              </button>`
            : nothing
        }
        <section
          id="panel"
          part="panel"
          class="panel"
          role=${floating ? 'dialog' : 'region'}
          aria-label=${this.botName || s.title}
          ?hidden=${floating && !this.isOpen}
          @keydown=${this.onKeydown}
        >
          <header part="header">
            <span class="avatar" aria-hidden="true">${icons.chat}</span>
            <h2>${this.botName || s.title}</h2>
            <button
              class="icon-button"
              part="clear-button"
              aria-label=${s.clear}
              title=${s.clear}
              @click=${this.onClear}
            >
              ${icons.trash}
            </button>
            ${floating ? html`<button class="icon-button" part="close-button" aria-label=${s.close} title=${s.close} @click=${this.close}>${icons.close}</button>` : nothing}
          </header>
          <div
            part="transcript"
            class="transcript"
            role="log"
            aria-live="off"
            aria-label=${s.transcriptLabel}
            tabindex="0"
          >
            ${
              // Until the relay's own greeting (the conversation's first message) takes its place.
              this.greeting &&
              (c.messages[0]?.role ?? (c.draft === undefined ? 'user' : 'assistant')) != 'assistant'
                ? this.renderMessage({ role: 'assistant', text: this.greeting })
                : nothing
            }
            ${c.messages.map((m) => this.renderMessage(m))}
            ${c.interim ? html`<div part="message message-user" class="msg user interim"><span class="sr-only">${s.you}: </span>${c.interim}</div>` : nothing}
            ${
              c.draft !== undefined
                ? this.renderDraft(c.draft)
                : c.state === 'thinking'
                  ? html`<div class="dots" role="status" aria-label=${s.typing}>
                      <span></span><span></span><span></span>
                    </div>`
                  : nothing
            }
          </div>
          ${c.handoff && this.extras()?.card(this, c.handoff)} ${this.renderError()}
          ${this.extrasApi?.panel(this)}
          <div class="controls">
            ${this.renderStatus()} ${this.renderSttProgress()} ${this.renderButtons()}
          </div>
          <form part="compose" @submit=${this.onSubmit}>
            <input
              part="input"
              type="text"
              name="message"
              autocomplete="off"
              enterkeyhint="send"
              maxlength="2000"
              aria-label=${s.inputLabel}
              placeholder=${s.inputPlaceholder}
            />
            <button
              part="send-button"
              class="send"
              type="submit"
              aria-label=${s.send}
              title=${s.send}
            >
              ${icons.send}
            </button>
          </form>
        </section>
        <div class="sr-only" aria-live="polite" aria-atomic="true">${this.announcement}</div>
      </div>
    `;
  }

  private renderMessage(message: HistoryMessage): TemplateResult {
    const s = this.ui;
    const user = message.role === 'user';
    const rich = !user && (/\]\(|https?:/.test(message.text) ? this.extras() : this.extrasApi);
    // One line on purpose: messages keep their own line breaks (white-space: pre-wrap), so no
    // whitespace may stand around the text.
    // prettier-ignore
    return html`<div part="message ${user ? 'message-user' : 'message-bot'}" class="msg ${user ? 'user' : 'bot'}"><span class="sr-only">${user ? s.you : s.bot}: </span>${rich ? rich.reply(this, message) : message.text}${message.interrupted ? html`<span class="tag">— ${s.interrupted}</span>` : nothing}</div>`;
  }

  /** The reply as it streams; one line for the same reason as {@link renderMessage}. */
  private renderDraft(draft: string): TemplateResult {
    // prettier-ignore
    return html`<div part="message message-bot" class="msg bot streaming"><span class="sr-only">${this.ui.bot}: </span>${draft}</div>`;
  }

  private renderStatus(): TemplateResult {
    const c = this.controller;
    const live = c.talking || c.state === 'speaking';
    return html`<div part="status" class="status" data-state=${c.state} ?data-live=${live}>
      <span class="meter" aria-hidden="true"
        ><span></span><span></span><span></span><span></span><span></span
      ></span>
      <span class="label">${this.statusLabel()}</span>
    </div>`;
  }

  /** The model download of in-browser speech recognition, until it is ready. */
  private renderSttProgress(): TemplateResult | typeof nothing {
    const percent = this.controller.sttProgress;
    if (percent === undefined) return nothing;
    const label = this.ui.preparingStt.replace('{percent}', String(percent));
    return html`<div part="stt" class="stt">
      <span class="stt-label" aria-hidden="true">${label}</span>
      <progress part="stt-progress" max="100" .value=${percent} aria-label=${label}></progress>
    </div>`;
  }

  private renderButtons(): TemplateResult {
    const c = this.controller;
    const s = this.ui;
    const voice = c.inputMode === 'audio';
    return html`<div class="buttons">
      ${
        voice && c.talking
          ? html`<button
              class="round mute"
              part="mute-button"
              aria-label=${s.mute}
              title=${c.muted ? s.unmute : s.mute}
              aria-pressed=${c.muted ? 'true' : 'false'}
              @click=${this.onMute}
            >
              ${c.muted ? icons.micOff : icons.mic}
            </button>`
          : nothing
      }
      ${
        voice
          ? html`<button
              part="talk-button"
              class="talk"
              data-state=${c.state}
              aria-label=${s.talk}
              title=${c.talking ? s.stop : s.start}
              aria-pressed=${c.talking ? 'true' : 'false'}
              @click=${this.onTalk}
            >
              ${c.talking ? icons.stop : icons.mic}
            </button>`
          : nothing
      }
      ${c.active ? html`<button class="round end" part="end-button" aria-label=${s.end} title=${s.end} @click=${this.onEnd}>${icons.end}</button>` : nothing}
    </div>`;
  }

  /** The error with what the visitor can do (the extras chunk); its bare message while that loads. */
  private renderError(): TemplateResult | typeof nothing {
    const error = this.controller.error;
    if (!error) return nothing;
    return (
      this.extras()?.error(this, error, {
        retry: this.onRetry,
        typeInstead: this.onTypeInstead,
        dismiss: this.onDismiss,
      }) ??
      html`<div part="error" class="error" role="alert" data-code=${error.code}>
        <p>${error.message}</p>
      </div>`
    );
  }

  // ---------------- handlers ----------------

  private $<T extends Element>(selector: string): T | null {
    return this.shadowRoot?.querySelector<T>(selector) ?? null;
  }

  private focusPanel(): void {
    const target =
      this.controller.inputMode === 'text'
        ? this.$<HTMLElement>('input')
        : (this.$<HTMLElement>('.talk') ?? this.$<HTMLElement>('input'));
    target?.focus();
  }

  private readonly toggle = (): void => {
    if (this.isOpen) this.close();
    else this.open();
  };

  private readonly onKeydown = (event: KeyboardEvent): void => {
    if (event.key !== 'Escape' || this.mode === 'inline' || !this.isOpen) return;
    event.stopPropagation();
    this.close();
    void this.updateComplete.then(() => this.$<HTMLButtonElement>('.launcher')?.focus());
  };

  private readonly onTalk = (): void => {
    // Synchronously inside the click: the SDK creates the AudioContext before its first await.
    if (this.controller.talking) void this.controller.stop();
    else void this.start();
  };

  private readonly onMute = (): void => this.controller.toggleMute();

  private readonly onEnd = (): void => {
    void this.controller.stop();
  };

  private readonly onClear = (): void => {
    void this.controller.clear();
  };

  private readonly onRetry = (): void => {
    // Voice: start talking again (inside this click); text: reconnect.
    void this.controller.start();
  };

  private readonly onTypeInstead = (): void => {
    void this.controller
      .typeInstead()
      .then(() => this.updateComplete.then(() => this.$<HTMLInputElement>('input')?.focus()));
  };

  private readonly onDismiss = (): void => {
    this.controller.dismissError();
    void this.updateComplete.then(() => this.focusPanel());
  };

  private readonly onSubmit = (event: SubmitEvent): void => {
    event.preventDefault();
    const input = this.$<HTMLInputElement>('input');
    if (!input || !input.value.trim()) return;
    const text = input.value;
    input.value = '';
    // Called synchronously: a spoken-reply session opens its audio inside this gesture.
    void this.controller.sendText(text).then((sent) => {
      // Not sent (e.g. no connection): give the visitor their words back.
      if (!sent && !input.value) input.value = text;
    });
  };
}
