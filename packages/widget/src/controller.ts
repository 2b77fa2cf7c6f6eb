import type { ReactiveController, ReactiveControllerHost } from 'lit';
import {
  VoiceBotClient,
  VoiceBotError,
  WHISPER_DTYPES,
  type ClientTool,
  type HandoffEvent,
  type HistoryMessage,
  type VoiceBotEvents,
  type VoiceBotOptions,
  type VoiceBotState,
  type WhisperDtype,
  type WhisperOptions,
} from '@voice-bot/sdk';

/** Errors that need no visitor action (the SDK recovers or they carry no news for the visitor). */
const SILENT = new Set<string>(['vad_unavailable', 'empty_utterance', 'stale_turn']);
const isSilentError = (code: string): boolean => SILENT.has(code);

/** What the element's attributes say about the session (read when a client is created). */
export interface SessionConfig {
  relayUrl: string;
  clientKey: string;
  bot: string;
  /** `audio`: talk through the microphone (the SDK's word; the attribute also takes the older `voice`). */
  input: 'audio' | 'text';
  output: 'audio' | 'text';
  tts: 'relay' | 'browser';
  stt: 'relay' | 'browser';
  /** In-browser recognition (`stt="browser"`); empty strings mean the SDK's defaults. */
  sttModel: string;
  sttModelBase: string;
  sttDtype: string;
  /** `relay`: when the model cannot load, the relay transcribes instead (audio leaves the page). */
  sttFallback: 'none' | 'relay';
  /** Spoken language for a multilingual model (the element's `lang`, primary subtag). */
  sttLanguage: string;
  assetBase: string;
  /** BCP 47 tag for the browser's speech synthesis (`tts="browser"`). */
  lang: string;
  /** The `metadata` attribute (JSON of untrusted context), read when a client is created. */
  metadata: string | null;
  /** A signed-in visitor's token (`visitor-token` / `visitorToken`), read before each session request. */
  visitorToken: () => string | undefined | Promise<string | undefined>;
}

/** The `metadata` attribute's JSON (the relay checks its shape); bad JSON is ignored, with a warning. */
function pageMetadata(json: string | null): VoiceBotOptions['metadata'] {
  try {
    return json ? (JSON.parse(json) as VoiceBotOptions['metadata']) : undefined;
  } catch {
    console.warn('[voice-bot] the metadata attribute is not JSON; ignored');
  }
}

const isDtype = (value: string): value is WhisperDtype =>
  (WHISPER_DTYPES as readonly string[]).includes(value);

/** The SDK's `whisper` options from the element's `stt-*` attributes. */
function whisperOptions(c: SessionConfig): WhisperOptions {
  const whisper: WhisperOptions = { fallbackToRelay: c.sttFallback === 'relay' };
  if (c.sttModel) whisper.model = c.sttModel;
  // An attribute's URL is relative to the page, not to where the widget module came from.
  if (c.sttModelBase) whisper.modelBaseUrl = new URL(c.sttModelBase, document.baseURI).href;
  if (isDtype(c.sttDtype)) whisper.dtype = c.sttDtype;
  if (c.sttLanguage) whisper.language = c.sttLanguage;
  return whisper;
}

/** Every SDK event, re-dispatched on the element as `voice-bot:<name>`. */
export const SDK_EVENTS = [
  'state',
  'ready',
  'transcript',
  'text-delta',
  'message',
  'tool',
  'level',
  'metrics',
  'error',
  'history',
  'stt-progress',
  'stt-ready',
  'stt-fallback',
  'handoff',
  'paused',
  'devices',
] as const satisfies readonly (keyof VoiceBotEvents)[];

type Host = ReactiveControllerHost & HTMLElement;

const toError = (error: unknown): VoiceBotError =>
  error instanceof VoiceBotError
    ? error
    : new VoiceBotError('internal', error instanceof Error ? error.message : String(error), {
        fatal: true,
      });

/**
 * Owns the `VoiceBotClient`: creates it on first use, follows its events into reactive state,
 * re-dispatches them as DOM events, and holds every side effect (audio, sockets; `tts="browser"`
 * is the SDK's `tts: 'browser'`) so the element only renders.
 */
export class VoiceBotController implements ReactiveController {
  state: VoiceBotState = 'idle';
  messages: HistoryMessage[] = [];
  /** The assistant's reply while it streams. */
  draft: string | undefined;
  /** The visitor's words before the final transcript. */
  interim: string | undefined;
  error: VoiceBotError | undefined;
  level = { input: 0, output: 0 };
  muted = false;
  toolRunning = false;
  /** True between `ready` and the end of the session. */
  connected = false;
  /** The visitor chose "type instead" after a microphone problem. */
  typingOnly = false;
  /** Bumped on every completed reply, so the element can announce it once. */
  replyCount = 0;
  lastReply = '';
  /** The session's `ready` (features, link hosts). */
  session: VoiceBotEvents['ready'] | undefined;
  /** The card to show: the bot handed the conversation to a person. */
  handoff: HandoffEvent | undefined;
  /** In-browser speech recognition download, 0..100, while it loads (`stt="browser"`). */
  sttProgress: number | undefined;
  /** The relay transcribes since the in-browser model failed; its notice is not an error to show. */
  private sttFallbackNotice: VoiceBotError | undefined;
  /** The in-browser model is ready: a later `stt_unavailable` is one failed utterance, not a dead microphone. */
  private sttReady = false;

  private clientValue: VoiceBotClient | undefined;
  /** Page-side tools (`registerTool`), each with how to remove it from the current client. */
  private readonly tools = new Map<ClientTool, (() => void) | undefined>();
  private clientKey = '';
  private unsubscribe: (() => void)[] = [];
  /** The session being opened (by `start()` or for typing); one at a time, so one socket. */
  private opening: Promise<void> | undefined;
  private voiceSession = false;
  private releaseAfterFailure = false;
  private peekedScope = '';

  constructor(
    private readonly host: Host,
    private readonly config: () => SessionConfig,
  ) {
    host.addController(this);
  }

  get client(): VoiceBotClient | undefined {
    return this.clientValue;
  }

  registerTool(tool: ClientTool): () => void {
    this.tools.set(tool, this.clientValue?.registerTool(tool));
    return () => {
      this.tools.get(tool)?.();
      this.tools.delete(tool);
    };
  }

  get inputMode(): 'audio' | 'text' {
    return this.typingOnly ? 'text' : this.config().input;
  }

  /** The SDK plays relay audio (needs an AudioContext, so `start()` inside the gesture). */
  get relayAudio(): boolean {
    return this.config().output === 'audio' && this.config().tts === 'relay';
  }

  /** The talk button is "on": a voice session (microphone) is running or starting. */
  get talking(): boolean {
    return this.voiceSession && this.state !== 'error';
  }

  /** Something is open or opening: a voice or a typing session. */
  get active(): boolean {
    return this.connected || this.opening !== undefined || this.talking;
  }

  hostDisconnected(): void {
    // Removed from the page: release the microphone, audio and socket.
    void this.dispose();
  }

  /** Call when attributes change: a different relay/key/bot/mode means a new client. */
  reconfigure(): void {
    const config = this.config();
    if (this.clientValue && this.configKey(config) !== this.clientKey) {
      void this.dispose();
      this.messages = [];
      this.peekedScope = '';
    }
  }

  private configKey(c: SessionConfig): string {
    return JSON.stringify([
      c.relayUrl,
      c.clientKey,
      c.bot,
      this.inputMode,
      c.output,
      c.tts,
      c.stt,
      c.sttModel,
      c.sttModelBase,
      c.sttDtype,
      c.sttFallback,
      c.sttLanguage,
      c.assetBase,
    ]);
  }

  private ensureClient(): VoiceBotClient {
    if (this.clientValue) return this.clientValue;
    const config = this.config();
    if (!config.clientKey)
      throw new VoiceBotError(
        'invalid_key',
        'The <voice-bot> element needs a `key` attribute (a client key).',
        { fatal: true },
      );
    const options: VoiceBotOptions = {
      relayUrl: config.relayUrl,
      clientKey: config.clientKey,
      input: this.inputMode === 'text' ? 'text' : 'audio',
      output: config.output,
      metadata: pageMetadata(config.metadata),
      visitorToken: config.visitorToken,
    };
    // The browser's speech synthesis speaks the replies (the SDK's session output is then text).
    if (config.output === 'audio' && config.tts === 'browser') {
      options.tts = 'browser';
      options.speechSynthesis = { lang: config.lang };
    }
    if (config.bot) options.bot = config.bot;
    if (config.assetBase) options.assetBaseUrl = config.assetBase;
    if (config.stt === 'browser') {
      options.stt = 'browser';
      options.whisper = whisperOptions(config);
    }
    const client = new VoiceBotClient(options);
    this.clientValue = client;
    for (const tool of this.tools.keys()) this.tools.set(tool, client.registerTool(tool));
    this.sttReady = false;
    this.sttFallbackNotice = undefined;
    this.clientKey = this.configKey(config);
    for (const name of SDK_EVENTS) {
      this.unsubscribe.push(
        client.on(name, (payload) => {
          if (client !== this.clientValue) return;
          this.onEvent(name, payload);
          // `voice-bot:handoff` may be cancelled: the page opens its own live chat, no card.
          if (
            !this.host.dispatchEvent(
              new CustomEvent(`voice-bot:${name}`, {
                detail: payload,
                bubbles: true,
                composed: true,
                cancelable: name === 'handoff',
              }),
            )
          )
            this.handoff = undefined;
        }),
      );
    }
    return client;
  }

  private onEvent<K extends keyof VoiceBotEvents>(name: K, payload: VoiceBotEvents[K]): void {
    // One switch over a union payload: narrow by event name.
    const event = { name, payload } as {
      [E in keyof VoiceBotEvents]: { name: E; payload: VoiceBotEvents[E] };
    }[keyof VoiceBotEvents];
    switch (event.name) {
      case 'state':
        this.state = event.payload;
        if (event.payload === 'error') this.voiceSession = false;
        if (event.payload === 'idle' || event.payload === 'error') {
          this.level = { input: 0, output: 0 };
          this.toolRunning = false;
          this.interim = undefined;
        }
        if (event.payload === 'connecting') this.connected = false;
        break;
      case 'ready':
        this.connected = true;
        this.session = event.payload;
        break;
      case 'handoff':
        this.handoff = event.payload;
        break;
      case 'history':
        this.messages = event.payload;
        break;
      case 'transcript':
        this.interim = event.payload.final ? undefined : event.payload.text;
        break;
      case 'text-delta':
        this.draft = event.payload.text;
        this.interim = undefined;
        break;
      case 'message':
        this.draft = undefined;
        this.toolRunning = false;
        if (event.payload.text) {
          this.replyCount++;
          this.lastReply = event.payload.text;
        }
        break;
      case 'tool':
        this.toolRunning = event.payload.state === 'started';
        break;
      case 'level':
        this.level = event.payload;
        break;
      case 'error':
        if (event.payload.code === 'stt_unavailable') this.sttProgress = undefined;
        // The visitor sees "voice isn't working here"; the site owner needs the URL that failed.
        if (event.payload.code === 'assets_unavailable')
          console.warn(`[voice-bot] ${event.payload.message}`);
        // Speech still works, through the relay: nothing for the visitor to act on.
        if (event.payload === this.sttFallbackNotice) break;
        // After a failed start we stop the client; the connect it had in flight then fails too.
        if (isSilentError(event.payload.code) || this.releaseAfterFailure) break;
        this.error = event.payload;
        // A model that never loaded leaves the microphone listening for nothing: end the voice session
        // (Try again starts a new one and loads again; Type instead switches to typing).
        if (
          (event.payload.fatal || (event.payload.code === 'stt_unavailable' && !this.sttReady)) &&
          this.clientValue
        ) {
          // The conversation is over: release the microphone and audio too, not only the socket.
          this.draft = undefined;
          this.release(this.clientValue);
        }
        break;
      case 'metrics':
        break;
      case 'stt-progress':
        this.sttProgress = event.payload.percent;
        break;
      case 'stt-fallback':
        this.sttFallbackNotice = event.payload;
        this.sttProgress = undefined;
        break;
      case 'stt-ready':
        this.sttReady = true;
        this.sttProgress = undefined;
        break;
    }
    this.host.requestUpdate();
  }

  /**
   * Starts a voice conversation. Calls `client.start()` synchronously, so call this from the click
   * or key handler itself: the SDK creates the AudioContext before its first await.
   */
  start(): Promise<void> {
    this.error = undefined;
    this.releaseAfterFailure = false;
    let client: VoiceBotClient;
    try {
      client = this.ensureClient();
    } catch (error) {
      this.fail(error);
      return Promise.resolve();
    }
    if (this.inputMode === 'text') {
      return this.open(client).catch((error: unknown) => {
        this.fail(error);
      });
    }
    this.voiceSession = true;
    // A typing session still connecting: wait for it rather than open a second socket.
    const started = this.opening ? this.opening.then(() => client.start()) : client.start();
    return this.track(started).catch((error: unknown) => {
      this.fail(error);
      this.release(client);
    });
  }

  /** Opens the session for typing; with relay audio replies, `start()` inside the gesture. */
  private open(client: VoiceBotClient): Promise<void> {
    if (this.opening) return this.opening;
    if (this.connected) return Promise.resolve();
    return this.track(
      this.relayAudio && this.inputMode === 'text' ? client.start() : client.connect(),
    );
  }

  private track(opening: Promise<void>): Promise<void> {
    const tracked = opening.finally(() => {
      if (this.opening === tracked) this.opening = undefined;
      this.host.requestUpdate();
    });
    this.opening = tracked;
    this.host.requestUpdate();
    return tracked;
  }

  /**
   * Sends typed text, connecting first when needed (resolves false when it could not be sent).
   * The first step runs synchronously so a text-mode session with spoken replies opens its audio
   * inside the visitor's gesture.
   */
  async sendText(text: string): Promise<boolean> {
    const trimmed = text.trim();
    if (!trimmed) return false;
    this.error = undefined;
    this.releaseAfterFailure = false;
    let client: VoiceBotClient | undefined;
    try {
      client = this.ensureClient();
      await this.open(client);
      await client.sendText(trimmed);
      return true;
    } catch (error) {
      if (client && this.fail(error).fatal) this.release(client);
      return false;
    }
  }

  /** Ends the conversation; the transcript stays. */
  async stop(): Promise<void> {
    this.releaseAfterFailure = false;
    this.sttReady = false; // the SDK disposes the model with the session
    this.connected = false;
    this.voiceSession = false;
    this.muted = false;
    this.draft = undefined;
    await this.clientValue?.stop();
    this.host.requestUpdate();
  }

  toggleMute(): void {
    const client = this.clientValue;
    if (!client) return;
    this.muted = !this.muted;
    if (this.muted) client.mute();
    else client.unmute();
    this.host.requestUpdate();
  }

  /** Ends the conversation and forgets it (here, in IndexedDB and for the next session). */
  async clear(): Promise<void> {
    this.error = undefined;
    if (this.active) await this.stop();
    this.messages = [];
    this.draft = this.handoff = undefined;
    this.host.requestUpdate();
    try {
      await this.ensureClient().clearHistory();
    } catch {
      // no key: nothing was stored either
    }
  }

  /** After a microphone problem: continue by typing (a new session without a microphone). */
  async typeInstead(): Promise<void> {
    this.error = undefined;
    this.typingOnly = true;
    await this.dispose();
    this.host.requestUpdate();
  }

  dismissError(): void {
    this.error = undefined;
    this.host.requestUpdate();
  }

  /**
   * Shows a conversation kept from an earlier page load before any connection is made (the SDK
   * itself loads it only when it connects).
   */
  async peekHistory(): Promise<void> {
    const config = this.config();
    const scope = `${config.relayUrl}|${config.bot}`;
    if (scope === this.peekedScope || this.messages.length > 0 || this.active || !config.clientKey)
      return;
    this.peekedScope = scope;
    const stored = await VoiceBotClient.storedHistory({
      relayUrl: config.relayUrl,
      ...(config.bot ? { bot: config.bot } : {}),
    });
    if (stored.length > 0 && this.messages.length === 0 && !this.connected) {
      this.messages = stored;
      this.host.requestUpdate();
    }
  }

  private fail(error: unknown): VoiceBotError {
    const typed = toError(error);
    // The SDK already emitted most errors; keep the first (most specific) one.
    if (!this.error && !isSilentError(typed.code)) this.error = typed;
    this.host.requestUpdate();
    return typed;
  }

  /**
   * A failed start leaves a connect in flight inside the SDK; stop now and once more if that
   * connect completes later, so no socket stays open behind an error message.
   */
  private release(client: VoiceBotClient): void {
    this.releaseAfterFailure = true;
    this.sttReady = false;
    this.connected = false;
    this.voiceSession = false;
    void client.stop();
    const off = client.on('ready', () => {
      off();
      if (this.releaseAfterFailure && this.clientValue === client) void client.stop();
    });
  }

  private async dispose(): Promise<void> {
    const client = this.clientValue;
    this.clientValue = undefined;
    for (const off of this.unsubscribe.splice(0)) off();
    this.state = 'idle';
    this.connected = false;
    this.voiceSession = false;
    this.muted = false;
    this.draft = undefined;
    this.level = { input: 0, output: 0 };
    await client?.stop();
  }
}
