import { EchoGate, type EchoGateOptions } from './audio/echo-gate.js';
import { AudioEngine, type MicOptions, type PlaybackReport } from './audio/engine.js';
import { EnergyVad } from './audio/energy-vad.js';
import { UplinkBatcher } from './audio/uplink.js';
import { Emitter } from './emitter.js';
import { VoiceBotError } from './errors.js';
import { indexedDbPersistence, type ConversationPersistence } from './persistence.js';
import {
  DEFAULT_OUTPUT_SAMPLE_RATE,
  PROTOCOL_VERSION,
  heardText,
  type HistoryMessage,
  type PlayedSegment,
  type ServerMessage,
  type ToolState,
  type TurnMetrics,
} from './protocol/index.js';
import { RelayTransport, type ReconnectOptions } from './transport.js';
import { pcm16ToFloat32, whisperLoader, type SpeechRecognizer, type SttProgress, type WhisperEngine, type WhisperLoader, type WhisperOptions } from './stt.js';
import type { VadEvent, VadSettings, VoiceActivityDetector } from './vad.js';

export type VoiceBotState = 'idle' | 'connecting' | 'listening' | 'user-speaking' | 'thinking' | 'speaking' | 'error';

export interface VoiceBotOptions {
  /** Base URL of the relay, e.g. `https://relay.example.com`. */
  relayUrl: string;
  /** Publishable client key (`vb_pk_…`), restricted to your site's origins. */
  clientKey: string;
  bot?: string;
  /** `audio` (default): talk through the microphone. `text`: typed input only. */
  input?: 'audio' | 'text';
  /** `audio` (default): spoken replies. `text`: text only. */
  output?: 'audio' | 'text';
  vad?: VadSettings;
  /** Speech onset shorter than this does not interrupt the bot (default 250 ms). */
  minInterruptionMs?: number;
  /**
   * Audio per WebSocket message to the relay, 20–1000 ms (default 100). The relay transcribes
   * only committed utterances and the last partial message goes out before `commit`, so larger
   * messages add no latency; they cut the per-message cost on the relay, the network and the page.
   */
  uplinkFrameMs?: number;
  /**
   * Keeps the bot's own voice, leaking from speakers into the mic, from interrupting it
   * (default on; `false` disables it, e.g. for headsets).
   */
  echoGate?: EchoGateOptions | false;
  /**
   * Where the SDK's run-time files are served, when you host them yourself: a folder with the
   * contents of the package's `dist/audio/worklets/` in `worklets/` and `dist/audio/vad/` in `vad/`
   * (and, for `stt: 'browser'`, `stt-worker.js`, `stt/` and `models/`). Default: the files beside
   * the SDK's modules, which bundlers (Vite, webpack; Rollup with a plugin) emit with your app.
   */
  assetBaseUrl?: string | URL;
  mic?: MicOptions;
  /** Keep the conversation across page loads in IndexedDB (default true). */
  persistence?: boolean | ConversationPersistence;
  reconnect?: ReconnectOptions;
  /** How long the session request and the WebSocket handshake may each take before the attempt fails (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Non-secret context for the bot (page URL, a signed-in visitor's first name…). */
  metadata?: Record<string, string | number | boolean>;
  /**
   * Who turns speech into text. `relay` (default): audio goes to the relay. `browser`: Whisper
   * runs in the page (a Web Worker) and only text leaves the device.
   */
  stt?: 'relay' | 'browser';
  /** In-browser Whisper settings (`stt: 'browser'`). */
  whisper?: WhisperOptions;
}

export interface ClientMetrics extends TurnMetrics {
  turnId: number;
  /** End of the visitor's speech (VAD) → first reply audio played, measured in the page. */
  end_of_speech_to_first_audio_ms?: number;
}

export interface ToolEvent {
  turnId: number;
  name: string;
  state: ToolState;
  /** The model's arguments (public tools only). */
  args?: unknown;
  /** What the tool returned (public tools only, once `done`). */
  result?: unknown;
}

export interface VoiceBotEvents {
  state: VoiceBotState;
  ready: { conversationId: string; resumed: boolean; history: HistoryMessage[] };
  /** What the visitor said (from the relay's STT) or typed. */
  transcript: { turnId: number; text: string; final: boolean };
  'text-delta': { turnId: number; delta: string; text: string };
  /** The assistant's reply is complete (`interrupted`: cut short; `text` is what was heard). */
  message: { turnId: number; text: string; interrupted: boolean };
  /** A tool the bot runs on the relay; `args` and `result` only for tools the relay marks public. */
  tool: ToolEvent;
  /** Microphone and playback levels, 0..1, for a visualiser. */
  level: { input: number; output: number };
  metrics: ClientMetrics;
  error: VoiceBotError;
  history: HistoryMessage[];
  /** In-browser speech recognition: model download progress. */
  'stt-progress': SttProgress;
  /** In-browser speech recognition is loaded and warmed up. */
  'stt-ready': { device: 'webgpu' | 'wasm'; loadMs: number };
  /** In-browser speech recognition failed to load; audio goes to the relay's STT from now on. */
  'stt-fallback': VoiceBotError;
}

const FRAME_MS = 20;
/** Audio held back while deciding whether speech is real: pre-speech pad plus the decision window. */
const MAX_HELD_FRAMES = 50;
/** Share of voiced frames in the decision window that makes speech real. */
const VOICED_SHARE = 0.7;

/** Conversations are stored per relay and bot. */
function persistenceScope(relayUrl: string, bot: string | undefined): string {
  return `${relayUrl}|${bot ?? ''}`;
}

/** The in-browser recognition engine, or `stt_unavailable` saying what is missing. */
async function loadWhisperEngine(load: WhisperLoader | undefined): Promise<WhisperEngine> {
  if (!load) {
    throw new VoiceBotError(
      'stt_unavailable',
      "In-browser speech recognition is unavailable: stt: 'browser' needs the @voice-bot/stt-whisper package. Install it (npm i @voice-bot/stt-whisper) and pass whisper: { load: () => import('@voice-bot/stt-whisper') } (or call setWhisperLoader() once).",
    );
  }
  let engine: WhisperEngine | undefined;
  try {
    engine = await load();
    if (typeof engine?.createRecognizer !== 'function') throw new TypeError('the loader did not resolve to @voice-bot/stt-whisper (no createRecognizer export)');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new VoiceBotError('stt_unavailable', `In-browser speech recognition is unavailable: @voice-bot/stt-whisper could not be loaded (${reason}).`, { cause });
  }
  return engine;
}

/**
 * A voice conversation with a voice-bot relay: microphone → VAD → relay, streamed replies →
 * speaker, barge-in, reconnects and persistence. Framework-free; nothing touches the DOM until
 * `connect()` or `start()`.
 */
export class VoiceBotClient extends Emitter<VoiceBotEvents> {
  private readonly transport: RelayTransport;
  private readonly persistence: ConversationPersistence | undefined;
  private readonly scope: string;
  private engine: AudioEngine | undefined;
  private vad: VoiceActivityDetector | undefined;
  private vadQueue: Promise<void> = Promise.resolve();
  private stateValue: VoiceBotState = 'idle';
  private conversationId: string | undefined;
  private messages: HistoryMessage[] = [];
  private readyWaiters: { resolve: () => void; reject: (error: VoiceBotError) => void }[] = [];
  private isReady = false;
  private muted = false;

  // the visitor's utterance
  private inSpeech = false;
  private speechConfirmed = false;
  private heldFrames: Int16Array[] = [];
  /** Voicing of the frames since speech onset (the last `confirmWindowFrames` of them), and how many are voiced. */
  private voicedWindow: boolean[] = [];
  private voicedCount = 0;
  private speechEndedAt: number | undefined;

  // the bot's turns: ids are scoped to one socket (the relay numbers each socket's turns from 1),
  // so all of this is per socket and `resetTurns()` clears it when a new socket starts
  private turnInFlight = false;
  private replyTurnId: number | undefined;
  private audioTurnId: number | undefined;
  private replyText = '';
  /** Replaced (not cleared) by `resetTurns()`, so an `interrupt()` in progress can tell its socket is gone. */
  private interruptedTurns = new Set<number>();
  private readonly doneTurns = new Set<number>();
  private playingTurnId: number | undefined;
  private firstPlayedAt = new Map<number, number>();
  /** Replies the relay has finished but the speaker is still playing: announced when heard. */
  private pendingReplies = new Map<number, { text: string; metrics: ClientMetrics }>();
  /** Audio segments of the turn being played, to work out what was heard when interrupted. */
  private segments: PlayedSegment[] = [];
  private outputSampleRate = DEFAULT_OUTPUT_SAMPLE_RATE;
  private inputLevel = 0;
  private readonly echoGate: EchoGate | undefined;
  // in-browser speech recognition (`stt: 'browser'`)
  private stt: Promise<SpeechRecognizer> | undefined;
  /** Settles once the model's load has succeeded or its failure has been handled. */
  private sttOutcome: Promise<void> = Promise.resolve();
  /** Set when the model failed and the owner allowed relay STT: resolves once that session is ready. */
  private sttFallback: Promise<void> | undefined;
  private utteranceFrames: Int16Array[] = [];
  /** Frames in the window that decides whether speech is real (`minInterruptionMs`, at least `minSpeechMs`). */
  private readonly confirmWindowFrames: number;
  /** The confirmed utterance's audio on its way to the relay, in `uplinkFrameMs` messages. */
  private readonly uplink: UplinkBatcher;

  constructor(readonly options: VoiceBotOptions) {
    super();
    this.confirmWindowFrames = Math.ceil(Math.max(options.minInterruptionMs ?? 250, options.vad?.minSpeechMs ?? 0) / FRAME_MS);
    this.transport = new RelayTransport({
      relayUrl: options.relayUrl,
      clientKey: options.clientKey,
      ...(options.bot ? { bot: options.bot } : {}),
      ...(options.reconnect ? { reconnect: options.reconnect } : {}),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    this.uplink = new UplinkBatcher((pcm) => this.transport.sendAudio(pcm), options.uplinkFrameMs);
    this.persistence = options.persistence === false ? undefined : options.persistence === true || !options.persistence ? indexedDbPersistence() : options.persistence;
    this.scope = persistenceScope(options.relayUrl, options.bot);
    this.echoGate = options.echoGate === false ? undefined : new EchoGate(options.echoGate ?? {});
    this.transport.on('open', () => void this.sendStart());
    this.transport.on('message', (message) => this.onMessage(message));
    this.transport.on('audio', (pcm) => this.onAudio(pcm));
    this.transport.on('close', ({ reconnecting }) => this.onTransportClose(reconnecting));
    this.transport.on('error', (error) => this.fail(error));
  }

  /**
   * The conversation kept from an earlier page load, without connecting (to show it before the
   * visitor starts). Empty when there is none or persistence is off.
   */
  static async storedHistory(options: Pick<VoiceBotOptions, 'relayUrl' | 'bot' | 'persistence'>): Promise<HistoryMessage[]> {
    if (options.persistence === false) return [];
    const persistence = options.persistence === true || !options.persistence ? indexedDbPersistence() : options.persistence;
    const stored = await persistence.load(persistenceScope(options.relayUrl, options.bot)).catch(() => undefined);
    return stored?.messages ?? [];
  }

  get state(): VoiceBotState {
    return this.stateValue;
  }

  get history(): readonly HistoryMessage[] {
    return this.messages;
  }

  get conversation(): string | undefined {
    return this.conversationId;
  }

  get isMuted(): boolean {
    return this.muted;
  }

  private setState(state: VoiceBotState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private fail(error: VoiceBotError): void {
    this.emit('error', error);
    if (error.fatal) {
      this.setState('error');
      for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
    }
  }

  /** Opens the relay session (no microphone yet). Resolves when the relay is ready. */
  async connect(): Promise<void> {
    if (this.isReady) return;
    if (this.stateValue === 'idle' || this.stateValue === 'error') this.setState('connecting');
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    ready.catch(() => undefined);
    if (!this.transport.connected) {
      if (this.persistence && !this.conversationId) {
        const stored = await this.persistence.load(this.scope).catch(() => undefined);
        if (stored) {
          this.conversationId = stored.conversationId;
          this.messages = stored.messages;
        }
      }
      try {
        await this.transport.connect();
      } catch (error) {
        const typed = error instanceof VoiceBotError ? error : new VoiceBotError('relay_unreachable', String(error));
        const fatal = new VoiceBotError(typed.code, typed.message, { ...typed.options, fatal: true });
        this.fail(fatal);
        throw fatal;
      }
    }
    await ready;
  }

  /**
   * Starts talking: opens the microphone and speakers. Call it from a click or key handler —
   * browsers only allow audio after a user gesture.
   */
  async start(): Promise<void> {
    if (this.engine) return;
    const wantsMic = (this.options.input ?? 'audio') === 'audio';
    const needsEngine = wantsMic || (this.options.output ?? 'audio') === 'audio';
    const enginePromise = needsEngine
      ? AudioEngine.open({
          assetBaseUrl: this.options.assetBaseUrl,
          mic: wantsMic ? (this.options.mic ?? {}) : false,
          handlers: {
            onFrame: (pcm, level, referenceLevel) => this.onMicFrame(pcm, level, referenceLevel),
            onPlayed: (report) => this.onPlayed(report),
            onDrained: (report) => this.onDrained(report),
          },
        })
      : Promise.resolve(undefined);
    this.setState('connecting');
    try {
      const [engine] = await Promise.all([enginePromise, this.connect()]);
      this.engine = engine;
    } catch (error) {
      const engine = await enginePromise.catch(() => undefined);
      await engine?.close();
      const typed = error instanceof VoiceBotError ? error : new VoiceBotError('audio_unsupported', String(error));
      if (!typed.fatal) this.fail(new VoiceBotError(typed.code, typed.message, { ...typed.options, fatal: true }));
      throw typed;
    }
    if (wantsMic) this.vad = this.createVad();
    if (wantsMic && this.browserStt) this.startBrowserStt();
    this.setState(this.turnInFlight ? 'thinking' : 'listening');
  }

  private createVad(): VoiceActivityDetector {
    const settings = this.options.vad ?? {};
    const energy = new EnergyVad({
      ...(settings.redemptionMs !== undefined ? { redemptionMs: settings.redemptionMs } : {}),
      ...(settings.preSpeechPadMs !== undefined ? { preSpeechPadMs: settings.preSpeechPadMs } : {}),
      ...(settings.minSpeechMs !== undefined ? { minSpeechMs: settings.minSpeechMs } : {}),
      ...(settings.energyThresholdDb !== undefined ? { thresholdDb: settings.energyThresholdDb } : {}),
    });
    if (settings.model !== 'energy') void this.loadSilero(settings);
    return energy;
  }

  /** Swaps in Silero once it has loaded; on failure the energy VAD stays (and we say so). */
  private async loadSilero(settings: VadSettings): Promise<void> {
    try {
      const { createSileroVad } = await import('./audio/silero-vad.js');
      const base = this.options.assetBaseUrl;
      const silero = await createSileroVad({
        // A relative asset base (`/sdk/`) resolves against the page, as the worklets' does.
        assetBaseUrl: base === undefined ? undefined : new URL('vad/', new URL(String(base).replace(/\/?$/, '/'), location.href)),
        ...settings,
      });
      if (!this.engine) {
        silero.dispose?.();
        return;
      }
      // Swap between utterances only, so one utterance is judged by one detector.
      const swap = () => {
        if (this.inSpeech) setTimeout(swap, 200);
        else {
          this.vad?.dispose?.();
          this.vad = silero;
        }
      };
      swap();
    } catch (cause) {
      this.emit('error', new VoiceBotError('vad_unavailable', 'The speech detector could not load; using a simpler one.', { cause }));
    }
  }

  private async sendStart(): Promise<void> {
    this.isReady = false;
    this.resetTurns();
    this.transport.send({
      type: 'start',
      protocol_version: PROTOCOL_VERSION,
      input: this.browserStt ? 'text' : (this.options.input ?? 'audio'),
      output: this.options.output ?? 'audio',
      ...(this.conversationId ? { conversation_id: this.conversationId } : {}),
      ...(this.options.metadata ? { metadata: this.options.metadata } : {}),
    });
  }

  /**
   * A new socket starts (first connect, reconnect, `start()` after `stop()`…): its turn ids start
   * at 1 again and mean other turns than the same ids on the earlier socket. Runs before anything
   * is sent on or received from it. Audio of the earlier socket's turns stops; replies it had
   * finished count as said, as in `stop()` (the relay keeps them whole).
   */
  private resetTurns(): void {
    void this.engine?.stopPlayback();
    for (const [turnId, reply] of this.pendingReplies) this.announceReply(turnId, reply.text, false, reply.metrics);
    this.pendingReplies.clear();
    this.interruptedTurns = new Set();
    this.doneTurns.clear();
    this.firstPlayedAt.clear();
    this.turnInFlight = false;
    this.replyTurnId = undefined;
    this.audioTurnId = undefined;
    this.playingTurnId = undefined;
    this.replyText = '';
    this.segments = [];
  }

  private onTransportClose(reconnecting: boolean): void {
    this.isReady = false;
    if (this.turnInFlight) {
      this.turnInFlight = false;
      this.emit('error', new VoiceBotError('turn_lost', 'The connection dropped before the answer arrived. Please ask again.', this.replyTurnId !== undefined ? { turnId: this.replyTurnId } : {}));
    }
    this.resetUtterance();
    if (reconnecting) this.setState('connecting');
  }

  private onMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'ready': {
        this.isReady = true;
        this.conversationId = message.conversation_id;
        this.outputSampleRate = message.output_sample_rate;
        // The relay is the authority: a conversation it no longer knows starts afresh.
        this.messages = [...message.history];
        this.persist();
        this.emit('ready', { conversationId: message.conversation_id, resumed: message.resumed, history: [...this.messages] });
        this.emit('history', [...this.messages]);
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
        // Connected: ready for input if there is a mic, or if input is typed anyway.
        if (this.stateValue === 'connecting') this.setState(this.engine || this.options.input === 'text' ? 'listening' : 'idle');
        return;
      }
      case 'transcript':
        this.noteTurn(message.turn_id);
        if (message.final) this.pushMessage({ role: 'user', text: message.text });
        this.emit('transcript', { turnId: message.turn_id, text: message.text, final: message.final });
        return;
      case 'text_delta':
        if (this.interruptedTurns.has(message.turn_id)) return;
        this.noteTurn(message.turn_id);
        this.replyText += message.delta;
        this.emit('text-delta', { turnId: message.turn_id, delta: message.delta, text: this.replyText });
        if ((this.options.output ?? 'audio') === 'text' || !this.engine) this.setState('speaking');
        return;
      case 'audio_segment':
        this.noteTurn(message.turn_id);
        if (this.audioTurnId !== message.turn_id) this.segments = [];
        this.audioTurnId = message.turn_id;
        for (const segment of this.segments) segment.complete = true;
        this.segments.push({ text: message.text, bytes: 0, complete: false });
        return;
      case 'tool':
        this.emit('tool', {
          turnId: message.turn_id,
          name: message.name,
          state: message.state,
          ...(message.args !== undefined ? { args: message.args } : {}),
          ...(message.result !== undefined ? { result: message.result } : {}),
        });
        return;
      case 'done':
        this.onDone(message.turn_id, message.text, message.interrupted, message.metrics);
        return;
      case 'error': {
        if (message.turn_id !== undefined) {
          this.doneTurns.add(message.turn_id);
          if (message.turn_id === this.replyTurnId || this.replyTurnId === undefined) this.turnInFlight = false;
        }
        const error = new VoiceBotError(message.code, message.message, { fatal: message.fatal, ...(message.turn_id !== undefined ? { turnId: message.turn_id } : {}) });
        this.fail(error);
        if (!message.fatal && !this.turnInFlight && this.playingTurnId === undefined) this.settle();
        return;
      }
      case 'status':
        if (message.state === 'thinking' && this.stateValue !== 'user-speaking') this.setState('thinking');
        return;
      case 'pong':
        return;
    }
  }

  private noteTurn(turnId: number): void {
    if (turnId !== this.replyTurnId) {
      this.replyTurnId = turnId;
      this.replyText = '';
    }
  }

  private onDone(turnId: number, text: string, interrupted: boolean, metrics: TurnMetrics): void {
    this.doneTurns.add(turnId);
    if (turnId === this.replyTurnId) this.turnInFlight = false;
    if (turnId === this.audioTurnId) for (const segment of this.segments) segment.complete = true;
    const clientMetrics: ClientMetrics = { ...metrics, turnId };
    const wasInterrupted = interrupted || this.interruptedTurns.has(turnId);
    if (this.playingTurnId === turnId && !wasInterrupted) {
      // Still playing: the reply counts as said once it has been heard (or cut short).
      this.pendingReplies.set(turnId, { text, metrics: clientMetrics });
      return;
    }
    this.announceReply(turnId, text, wasInterrupted, clientMetrics);
    this.settle();
  }

  private announceReply(turnId: number, text: string, interrupted: boolean, metrics: ClientMetrics): void {
    if (text) this.pushMessage({ role: 'assistant', text, ...(interrupted ? { interrupted: true } : {}) });
    this.emit('message', { turnId, text, interrupted });
    this.addClientTiming(metrics);
    this.emit('metrics', metrics);
  }

  private addClientTiming(metrics: ClientMetrics): void {
    const firstPlayed = this.firstPlayedAt.get(metrics.turnId);
    if (firstPlayed !== undefined && this.speechEndedAt !== undefined && firstPlayed > this.speechEndedAt) {
      metrics.end_of_speech_to_first_audio_ms = Math.round(firstPlayed - this.speechEndedAt);
    }
    this.firstPlayedAt.delete(metrics.turnId);
  }

  /** Back to listening once nothing is pending. */
  private settle(): void {
    if (this.stateValue === 'error' || this.stateValue === 'idle' || this.stateValue === 'connecting') return;
    if (this.inSpeech && this.speechConfirmed) this.setState('user-speaking');
    else if (this.turnInFlight) this.setState('thinking');
    else this.setState(this.engine?.hasMic || (this.options.input ?? 'audio') === 'text' ? 'listening' : 'idle');
  }

  private onAudio(pcm: ArrayBuffer): void {
    const turnId = this.audioTurnId ?? this.replyTurnId;
    if (turnId === undefined || this.interruptedTurns.has(turnId) || !this.engine) return;
    const segment = this.segments.at(-1);
    if (segment) segment.bytes += pcm.byteLength;
    if (this.playingTurnId !== turnId) this.playingTurnId = turnId;
    this.engine.play(pcm, turnId);
    if (this.stateValue !== 'user-speaking') this.setState('speaking');
  }

  private onPlayed(report: PlaybackReport & { level: number }): void {
    if (!this.firstPlayedAt.has(report.turnId)) this.firstPlayedAt.set(report.turnId, performance.now() - report.playedMs);
    this.emit('level', { input: this.inputLevel, output: report.level });
  }

  private onDrained(report: PlaybackReport): void {
    if (report.turnId !== this.playingTurnId) return;
    // More audio of this turn may still be on its way: only a finished turn is over.
    if (!this.doneTurns.has(report.turnId)) return;
    this.playingTurnId = undefined;
    const reply = this.pendingReplies.get(report.turnId);
    if (reply) {
      this.pendingReplies.delete(report.turnId);
      this.announceReply(report.turnId, reply.text, false, reply.metrics);
    }
    this.emit('level', { input: this.inputLevel, output: 0 });
    this.settle();
  }

  private get botIsTalking(): boolean {
    return this.playingTurnId !== undefined || this.turnInFlight;
  }

  private onMicFrame(pcm: Int16Array, level: number, referenceLevel: number): void {
    this.inputLevel = level;
    if (this.playingTurnId === undefined) this.emit('level', { input: level, output: 0 });
    const vad = this.vad;
    if (!vad || this.muted || !this.isReady) return;
    const notEcho = this.echoGate?.admit(level, referenceLevel, this.speechConfirmed) ?? true;
    this.vadQueue = this.vadQueue.then(async () => {
      const events = await vad.process(pcm);
      this.onVadFrame(pcm, events, notEcho && vad.voiced);
    });
  }

  /** `voiced`: this frame sounds like the visitor (speech, and more than the bot's echo). */
  private onVadFrame(frame: Int16Array, events: VadEvent[], voiced: boolean): void {
    for (const event of events) {
      if (event.type === 'speech-start') {
        this.inSpeech = true;
        this.speechConfirmed = false;
        this.heldFrames = [...event.preroll];
        this.voicedWindow = [];
        this.voicedCount = 0;
      } else if (event.type === 'misfire') {
        this.resetUtterance();
        this.settle();
      } else if (event.type === 'speech-end') {
        if (this.speechConfirmed) this.endUtterance();
        else this.resetUtterance();
      }
    }
    if (!this.inSpeech) return;
    if (this.speechConfirmed) {
      this.sendUtteranceAudio(frame);
      return;
    }
    this.heldFrames.push(frame);
    if (this.heldFrames.length > MAX_HELD_FRAMES) this.heldFrames.shift();
    // Real speech: most frames of the last `threshold` ms voiced (a cough is too short; the bot's
    // echo is not voiced once the echo gate has subtracted it).
    const windowFrames = this.confirmWindowFrames;
    this.voicedWindow.push(voiced);
    if (voiced) this.voicedCount++;
    if (this.voicedWindow.length > windowFrames && this.voicedWindow.shift()) this.voicedCount--;
    if (this.voicedWindow.length === windowFrames && this.voicedCount >= Math.ceil(windowFrames * VOICED_SHARE)) this.confirmSpeech();
  }

  /** Real speech (long enough not to be a cough): barge in if the bot talks, then stream it. */
  private confirmSpeech(): void {
    this.speechConfirmed = true;
    if (this.botIsTalking) void this.interrupt();
    for (const held of this.heldFrames) this.sendUtteranceAudio(held);
    this.heldFrames = [];
    this.setState('user-speaking');
  }

  private endUtterance(): void {
    if (this.browserStt) {
      void this.transcribeUtterance(this.utteranceFrames);
      this.utteranceFrames = [];
    } else this.commitUtterance();
    this.speechEndedAt = performance.now();
    this.turnInFlight = true;
    this.resetUtterance();
    this.setState('thinking');
  }

  private commitUtterance(): void {
    this.uplink.flush();
    this.transport.send({ type: 'commit' });
  }

  private resetUtterance(): void {
    this.uplink.discard();
    this.inSpeech = false;
    this.speechConfirmed = false;
    this.heldFrames = [];
    this.voicedWindow = [];
    this.voicedCount = 0;
    this.utteranceFrames = [];
  }

  // ---- in-browser speech recognition (`stt: 'browser'`; the logic lives in stt/) ----------

  /** Whisper runs in the page: the relay gets text, never audio. */
  private get browserStt(): boolean {
    return this.options.stt === 'browser' && (this.options.input ?? 'audio') === 'audio' && !this.sttFallback;
  }

  private sendUtteranceAudio(frame: Int16Array): void {
    if (this.browserStt) this.utteranceFrames.push(frame);
    else this.uplink.push(frame);
  }

  /**
   * Loads the engine (`whisper.load`, else the `setWhisperLoader()` one), then its worker and model,
   * in the background; utterances wait for it.
   */
  private startBrowserStt(): void {
    const { load, fallbackToRelay, ...settings } = this.options.whisper ?? {};
    const engine = loadWhisperEngine(load ?? whisperLoader());
    const assetBaseUrl = this.options.assetBaseUrl;
    const stt = engine.then((module) =>
      module.createRecognizer({ ...settings, ...(assetBaseUrl !== undefined ? { assetBaseUrl } : {}), onProgress: (p) => this.emit('stt-progress', p) }),
    );
    this.stt = stt;
    this.sttOutcome = stt
      .then((s) => s.load())
      .then(
        (info) => {
          if (this.stt === stt) this.emit('stt-ready', info);
        },
        (cause: unknown) => {
          if (this.stt !== stt) return;
          const error = cause instanceof VoiceBotError ? cause : new VoiceBotError('stt_unavailable', `In-browser speech recognition is unavailable: ${String(cause)}`, { cause });
          if (!fallbackToRelay) {
            this.emit('error', error);
            return;
          }
          const notice = new VoiceBotError('stt_unavailable', `${error.message} Using the relay’s speech recognition instead.`, { cause });
          this.sttFallback = this.restartWithRelayStt();
          this.emit('stt-fallback', notice);
          this.emit('error', notice);
        },
      );
  }

  /** The session was started with `input: 'text'`; a new one (same conversation) accepts audio. */
  private async restartWithRelayStt(): Promise<void> {
    this.isReady = false;
    this.transport.close();
    await this.connect();
  }

  private async transcribeUtterance(frames: Int16Array[]): Promise<void> {
    const stt = this.stt;
    try {
      if (!stt) throw new VoiceBotError('stt_unavailable', 'Speech recognition is not running.');
      const text = await (await stt).transcribe(pcm16ToFloat32(frames));
      // Whisper's non-speech markers ("[BLANK_AUDIO]", "(music)") are not words.
      const words = text.replace(/\[[^\]]*\]|\([^)]*\)/g, '').trim();
      if (!words) {
        this.turnInFlight = false;
        this.settle();
        return;
      }
      await this.sendUserText(words, 'speech');
    } catch (cause) {
      await this.sttOutcome;
      if (this.sttFallback && this.stt === stt) {
        // The model never loaded: this utterance goes to the relay's STT like the next ones.
        await this.sttFallback.catch(() => undefined);
        for (const frame of frames) this.uplink.push(frame);
        this.turnInFlight = true; // a turn of the new socket (its start reset the turn state)
        this.commitUtterance();
        return;
      }
      this.turnInFlight = false;
      if (this.stt === stt && !(cause instanceof VoiceBotError && cause.code === 'stt_unavailable' && cause.message.startsWith('In-browser'))) {
        this.emit('error', cause instanceof VoiceBotError ? cause : new VoiceBotError('stt_unavailable', String(cause), { cause }));
      }
      this.settle();
    }
  }

  /**
   * Stops the bot mid-reply: playback goes silent within one render quantum and the relay keeps
   * only what was actually heard.
   */
  async interrupt(): Promise<void> {
    const turnId = this.playingTurnId ?? this.replyTurnId;
    const interrupted = this.interruptedTurns;
    if (turnId === undefined || interrupted.has(turnId)) return;
    interrupted.add(turnId);
    const report = this.engine ? await this.engine.stopPlayback() : { playedMs: 0 };
    // A new socket started meanwhile: `turnId` was the old socket's, and names another turn on this one.
    if (interrupted !== this.interruptedTurns) return;
    this.playingTurnId = undefined;
    const audio = (this.options.output ?? 'audio') === 'audio' && this.engine !== undefined;
    const playedMs = audio ? Math.round(report.playedMs) : Number.MAX_SAFE_INTEGER;
    this.transport.send({ type: 'interrupt', turn_id: turnId, played_ms: playedMs });
    this.turnInFlight = false;
    const reply = this.pendingReplies.get(turnId);
    if (reply) {
      // The relay already finished this turn; it truncates its copy the same way.
      this.pendingReplies.delete(turnId);
      const heard = turnId === this.audioTurnId ? heardText(this.segments, playedMs, this.outputSampleRate) : reply.text;
      this.announceReply(turnId, heard, true, reply.metrics);
    }
    this.settle();
  }

  /** Sends typed text (interrupting the bot if it is talking). */
  sendText(text: string): Promise<void> {
    return this.sendUserText(text, 'typed');
  }

  /** `speech`: the page's own transcript of an utterance (barge-in already happened on speech onset). */
  private async sendUserText(text: string, source: 'typed' | 'speech'): Promise<void> {
    const trimmed = text.trim();
    if (!trimmed) return;
    if (!this.isReady) await this.connect();
    if (source === 'typed' && this.botIsTalking) await this.interrupt();
    this.pushMessage({ role: 'user', text: trimmed });
    this.emit('transcript', { turnId: -1, text: trimmed, final: true });
    this.turnInFlight = true;
    if (source === 'typed') this.speechEndedAt = performance.now();
    if (!this.transport.send({ type: 'text', text: trimmed, source })) {
      this.turnInFlight = false;
      throw new VoiceBotError('not_connected', 'Not connected to the voice assistant.');
    }
    this.setState('thinking');
  }

  mute(): void {
    this.muted = true;
    this.engine?.setMuted(true);
    this.resetUtterance();
  }

  unmute(): void {
    this.muted = false;
    this.engine?.setMuted(false);
  }

  private pushMessage(message: HistoryMessage): void {
    this.messages.push(message);
    this.emit('history', [...this.messages]);
    this.persist();
  }

  private persist(): void {
    if (!this.persistence || !this.conversationId) return;
    void this.persistence.save(this.scope, { conversationId: this.conversationId, messages: this.messages, updatedAt: Date.now() }).catch(() => undefined);
  }

  /** Forgets the conversation (here and for the next connect). */
  async clearHistory(): Promise<void> {
    this.messages = [];
    this.conversationId = undefined;
    this.emit('history', []);
    await this.persistence?.clear(this.scope).catch(() => undefined);
  }

  /** Ends the conversation: releases microphone, audio, detectors and the socket. */
  async stop(): Promise<void> {
    this.transport.close();
    this.vad?.dispose?.();
    this.vad = undefined;
    void this.stt?.then((stt) => stt.dispose(), () => undefined);
    this.stt = undefined;
    this.sttFallback = undefined;
    const engine = this.engine;
    this.engine = undefined;
    await engine?.close();
    this.isReady = false;
    this.turnInFlight = false;
    this.playingTurnId = undefined;
    for (const [turnId, reply] of this.pendingReplies) this.announceReply(turnId, reply.text, false, reply.metrics);
    this.pendingReplies.clear();
    this.resetUtterance();
    this.setState('idle');
  }

  /** Same as `stop()`. */
  disconnect(): Promise<void> {
    return this.stop();
  }

  /** For tests and "reconnect now": drops the socket as a network failure would. */
  simulateNetworkDrop(): void {
    this.transport.dropForTesting();
  }
}
