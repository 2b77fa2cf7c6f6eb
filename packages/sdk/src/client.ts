import { EchoGate } from './audio/echo-gate.js';
import { AudioEngine, type PlaybackReport, type PlaybackStats } from './audio/engine.js';
import { UplinkBatcher } from './audio/uplink.js';
import { BrowserSttSession } from './client/browser-stt.js';
import { BrowserTts, speechSynthesisOutput } from './client/browser-tts.js';
import { ConversationRecord, persistenceScope, resolvePersistence } from './client/conversation.js';
import { createDetector } from './client/detector.js';
import type { EndOfTurnPolicy } from './client/end-of-turn.js';
import { ReplyTracker, type ClientMetrics } from './client/reply-tracker.js';
import { SpeechGate } from './client/speech-gate.js';
import { Connection, restingState, type VoiceBotState } from './client/status.js';
import { TurnTaking, type TurnTakingSettings } from './client/turn-taking.js';
import type { ClientTool, VoiceBotEvents, VoiceBotOptions } from './client/types.js';
import type { PageToolRunner } from './client/page-tools.js';
import type { AudioDevices, SessionWatch } from './client/devices.js';
import { Emitter } from './emitter.js';
import { VoiceBotError } from './errors.js';
import {
  FEATURE_SPECULATION,
  MAX_FEEDBACK_COMMENT_CHARS,
  PROTOCOL_VERSION,
  type HistoryMessage,
  type ServerMessage,
} from './protocol/index.js';
import { RelayTransport, type VoiceBotTransport } from './transport.js';
import type { VadEvent, VoiceActivityDetector } from './vad.js';

export type { ClientMetrics } from './client/reply-tracker.js';
export type { VoiceBotState } from './client/status.js';
export type {
  ClientTool,
  EndOfTurnOptions,
  HandoffEvent,
  JitterBufferOptions,
  SpeechSynthesisSettings,
  ToolEvent,
  VoiceBotEvents,
  VoiceBotOptions,
} from './client/types.js';

/**
 * Default silence inside speech that starts a speculative turn: four Silero frames (its silence
 * counts in 32 ms frames, a frame after the last word). Shorter, a "complete" transcript of the
 * words before a pause can arrive before the detector hears the visitor go on (bench §11).
 */
export const DEFAULT_PAUSE_MS = 128;
/** Default shortest end-of-turn silence. */
export const DEFAULT_MIN_SILENCE_MS = 300;
/** Default longest end-of-turn silence with speculative turns (the detector's end of speech). */
export const DEFAULT_MAX_SILENCE_MS = 1200;
/** The detector's end of speech without speculative turns (`vad.redemptionMs`). */
const DEFAULT_REDEMPTION_MS = 700;

/**
 * The default end-of-turn policy (`rulesEndOfTurnPolicy`), loaded once a relay offers speculative
 * turns: its word lists stay out of the first download. Until it has loaded it answers with the
 * fallback, as without a transcript.
 */
class DefaultPolicy implements EndOfTurnPolicy {
  private rules: EndOfTurnPolicy | undefined;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly fallbackMs: number,
    private readonly incompleteMs: number,
  ) {}

  load(): void {
    this.loading ??= import('./client/end-of-turn.js').then(
      ({ rulesEndOfTurnPolicy }) => {
        this.rules = rulesEndOfTurnPolicy({
          fallbackMs: this.fallbackMs,
          incompleteMs: this.incompleteMs,
        });
      },
      () => undefined, // a failed chunk load: the fallback it is (today's end of turn)
    );
  }

  silenceNeededMs(input: Parameters<EndOfTurnPolicy['silenceNeededMs']>[0]): number {
    return this.rules ? this.rules.silenceNeededMs(input) : this.fallbackMs;
  }
}

/**
 * A voice conversation with a voice-bot relay: microphone → VAD → relay, streamed replies →
 * speaker, barge-in, reconnects and persistence. Framework-free; nothing touches the DOM until
 * `connect()` or `start()`.
 *
 * The composition of parts with one job each (in `client/`): the connection status, the speech
 * gate (is the visitor really speaking?), reply tracking (which reply is owed, playing, heard), the
 * browser STT and TTS sessions, the conversation record, and the transport (`transport` option).
 */
export class VoiceBotClient extends Emitter<VoiceBotEvents> {
  private readonly transport: VoiceBotTransport;
  private readonly connection = new Connection();
  private readonly record: ConversationRecord;
  /** The visitor's speech: utterance start, confirmation (barge-in), end. */
  private readonly gate: SpeechGate;
  /** The bot's replies on the current socket. */
  private readonly replies: ReplyTracker;
  /** The confirmed utterance's audio on its way to the relay, in `uplinkFrameMs` messages. */
  private readonly uplink: UplinkBatcher;
  /** When the visitor's turn ends; speculative turns. */
  private readonly turns: TurnTaking;
  private readonly echoGate: EchoGate | undefined;
  /** `stt: 'browser'` with a microphone: Whisper in the page. */
  private readonly whisper: BrowserSttSession | undefined;
  /** `tts: 'browser'` with spoken output: the browser's speech synthesis. */
  private readonly speech: BrowserTts | undefined;
  /** @internal */
  engine: AudioEngine | undefined;
  private vad: VoiceActivityDetector | undefined;
  private vadQueue: Promise<void> = Promise.resolve();
  private stateValue: VoiceBotState = 'idle';
  private muted = false;
  private inputLevel = 0;
  /** Page-side tools (`registerTool`); their runner loads with the first `tool_call`. */
  private readonly tools = new Map<string, ClientTool>();
  private toolRunner: Promise<PageToolRunner> | undefined;
  /** Levels, silence, devices and the tab's visibility while audio runs (client/devices.ts, loaded at start). */
  private watch: SessionWatch | undefined;
  /** @internal The chosen microphone and speaker (`setInputDevice`, `setOutputDevice`). */
  inputDevice: string | undefined;
  /** @internal */
  outputDevice: string | undefined;
  /** A new conversation's greeting: 0 until the relay's first status tells, then its turn id (1). */
  private greetingTurn: number | undefined;

  constructor(readonly options: VoiceBotOptions) {
    super();
    const { relayUrl, clientKey, bot, reconnect, connectTimeoutMs, visitorToken } = options;
    const transport = options.transport ?? ((settings) => new RelayTransport(settings));
    this.transport = transport({
      relayUrl,
      clientKey,
      ...(bot ? { bot } : {}),
      ...(reconnect ? { reconnect } : {}),
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(visitorToken ? { visitorToken } : {}),
    });
    this.uplink = new UplinkBatcher((pcm) => this.transport.sendAudio(pcm), options.uplinkFrameMs);
    this.record = new ConversationRecord(
      resolvePersistence(options.persistence),
      persistenceScope(relayUrl, bot),
    );
    this.echoGate = options.echoGate === false ? undefined : new EchoGate(options.echoGate ?? {});
    this.turns = new TurnTaking(turnTakingSettings(options), {
      send: (frame) => this.sendUtteranceAudio(frame),
      pause: (pauseId) => {
        this.uplink.flush();
        this.transport.send({ type: 'pause', pause_id: pauseId });
      },
      resume: () => this.transport.send({ type: 'resume' }),
      end: () => this.endSpeechNow(),
    });
    this.gate = new SpeechGate(
      { minInterruptionMs: options.minInterruptionMs, minSpeechMs: options.vad?.minSpeechMs },
      {
        confirm: (held) => this.confirmSpeech(held),
        audio: (frame) => this.turns.audio(frame),
        end: () => this.endUtterance(),
        pause: (silenceMs) => this.turns.pause(silenceMs),
        resume: () => this.turns.resume(),
        discard: (misfire) => {
          this.resetUtterance();
          if (misfire) this.settle();
        },
      },
    );
    this.replies = new ReplyTracker({
      announce: (turnId, text, interrupted, metrics) =>
        this.announceReply(turnId, text, interrupted, metrics),
    });
    if (options.stt === 'browser' && (options.input ?? 'audio') === 'audio') {
      this.whisper = new BrowserSttSession(options, {
        progress: (progress) => this.emit('stt-progress', progress),
        ready: (info) => this.emit('stt-ready', info),
        error: (error) => this.emit('error', error),
        restartWithRelay: () => this.restartWithRelayStt(),
        fellBack: (notice) => {
          this.emit('stt-fallback', notice);
          this.emit('error', notice);
        },
      });
    }
    if ((options.output ?? 'audio') === 'audio' && options.tts === 'browser')
      this.speech = new BrowserTts(() => speechSynthesisOutput(options.speechSynthesis?.lang));
    this.transport.on('open', () => this.sendStart());
    this.transport.on('message', (message) => this.onMessage(message));
    this.transport.on('audio', (pcm) => this.onAudio(pcm));
    this.transport.on('close', ({ reconnecting }) => this.onTransportClose(reconnecting));
    this.transport.on('error', (error) => this.fail(error));
  }

  /**
   * The conversation kept from an earlier page load, without connecting (to show it before the
   * visitor starts). Empty when there is none or persistence is off.
   */
  static async storedHistory(
    options: Pick<VoiceBotOptions, 'relayUrl' | 'bot' | 'persistence'>,
  ): Promise<HistoryMessage[]> {
    const persistence = resolvePersistence(options.persistence);
    const stored = await persistence
      ?.load(persistenceScope(options.relayUrl, options.bot))
      .catch(() => undefined);
    return stored?.messages ?? [];
  }

  get state(): VoiceBotState {
    return this.stateValue;
  }

  get history(): readonly HistoryMessage[] {
    return this.record.messages;
  }

  get conversation(): string | undefined {
    return this.record.id;
  }

  get isMuted(): boolean {
    return this.muted;
  }

  /** The relay sends (and the SDK plays) the replies' audio. */
  private get relayAudio(): boolean {
    return (this.options.output ?? 'audio') === 'audio' && this.options.tts !== 'browser';
  }

  /** Whisper in the page transcribes (not the relay's STT). */
  private get browserStt(): boolean {
    return this.whisper?.active ?? false;
  }

  /** Speculative turns are wanted and possible on the client's side: the relay's STT hears the mic. */
  private get canSpeculate(): boolean {
    return (
      this.options.speculation !== false &&
      (this.options.input ?? 'audio') === 'audio' &&
      !this.browserStt
    );
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
      this.connection.reject(error);
    }
  }

  /** Back to listening once nothing is pending. */
  private settle(): void {
    if (
      this.stateValue === 'error' ||
      this.stateValue === 'idle' ||
      this.stateValue === 'connecting'
    )
      return;
    const accepting = Boolean(this.engine?.hasMic) || (this.options.input ?? 'audio') === 'text';
    this.setState(restingState(this.gate.status, this.replies.status, accepting));
  }

  /** Opens the relay session (no microphone yet). Resolves when the relay is ready. */
  async connect(): Promise<void> {
    if (this.connection.ready) return;
    if (this.stateValue === 'idle' || this.stateValue === 'error') this.setState('connecting');
    const ready = this.connection.whenReady();
    if (!this.transport.connected) {
      this.connection.set('connecting');
      await this.record.restore();
      try {
        await this.transport.connect();
      } catch (error) {
        const typed =
          error instanceof VoiceBotError
            ? error
            : new VoiceBotError('relay_unreachable', String(error));
        const fatal = new VoiceBotError(typed.code, typed.message, {
          ...typed.options,
          fatal: true,
        });
        this.connection.set('closed');
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
    // Again inside a gesture (the visitor's "try again"): iOS lets a suspended AudioContext resume only so.
    if (this.engine) return this.engine.context.resume().catch(() => undefined);
    const extras = this.devices().catch(() => undefined);
    const wantsMic = (this.options.input ?? 'audio') === 'audio';
    const enginePromise =
      wantsMic || this.relayAudio
        ? AudioEngine.open({
            assetBaseUrl: this.options.assetBaseUrl,
            mic: wantsMic
              ? { ...this.options.mic, deviceId: this.inputDevice ?? this.options.mic?.deviceId }
              : false,
            jitter:
              this.options.jitterBuffer === false ? undefined : (this.options.jitterBuffer ?? {}),
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
      const m = engine && (await extras);
      if (m)
        this.watch = new m.SessionWatch(
          this,
          (...args) => this.emit(...args),
          (e) => this.listens(e),
        );
    } catch (error) {
      const engine = await enginePromise.catch(() => undefined);
      await engine?.close();
      const typed =
        error instanceof VoiceBotError
          ? error
          : new VoiceBotError('audio_unsupported', String(error));
      if (!typed.fatal)
        this.fail(new VoiceBotError(typed.code, typed.message, { ...typed.options, fatal: true }));
      throw typed;
    }
    if (wantsMic) {
      // With speculative turns the detector's own end of speech is the longest wait, and the
      // client ends turns sooner from what was said; without, it ends them as it always did.
      const { pauseMs, maxSilenceMs } = this.turns.settings;
      const vad = this.options.vad ?? {};
      const settings = this.canSpeculate
        ? { ...vad, pauseMs, ...(this.turns.speculative ? { redemptionMs: maxSilenceMs } : {}) }
        : vad;
      this.vad = createDetector(settings, this.options.assetBaseUrl, {
        busy: () => this.gate.status !== 'silent',
        wanted: () => this.engine !== undefined,
        swap: (detector) => {
          this.vad?.dispose?.();
          this.vad = detector;
        },
        error: (error) => this.emit('error', error),
      });
      if (this.browserStt) this.whisper?.start();
    }
    this.setState(this.replies.status === 'awaiting' ? 'thinking' : 'listening');
  }

  /** A new socket is open: its turns start afresh (turn ids belong to one socket), then `start`. */
  private sendStart(): void {
    this.connection.set('connecting');
    // Audio of the earlier socket's turns stops; replies it had finished count as said.
    void this.engine?.stopPlayback();
    this.replies.reset();
    this.speech?.reset();
    this.transport.send({
      type: 'start',
      protocol_version: PROTOCOL_VERSION,
      input: this.browserStt ? 'text' : (this.options.input ?? 'audio'),
      output: this.relayAudio ? 'audio' : 'text',
      ...(this.record.id ? { conversation_id: this.record.id } : {}),
      ...(this.options.metadata ? { metadata: this.options.metadata } : {}),
    });
  }

  /**
   * Registers a page-side tool the bot may call (the bot's config lists it in `clientTools`;
   * README "Page-side tools"). A later tool of the same name replaces it. Returns a function that
   * unregisters it.
   */
  registerTool(tool: ClientTool): () => void {
    this.tools.set(tool.name, tool);
    this.announceTools();
    return () => {
      if (this.tools.get(tool.name) !== tool) return;
      this.tools.delete(tool.name);
      this.announceTools();
    };
  }

  /** The relay learns the page's tools at each `ready` and whenever they change. */
  private announceTools(): void {
    if (this.connection.ready)
      this.transport.send({ type: 'client_tools', names: [...this.tools.keys()] });
  }

  private onTransportClose(reconnecting: boolean): void {
    this.connection.set(reconnecting ? 'connecting' : 'closed');
    void this.toolRunner?.then((runner) => runner.cancelAll());
    const lost = this.replies.abandon();
    if (lost)
      this.emit(
        'error',
        new VoiceBotError(
          'turn_lost',
          'The connection dropped before the answer arrived. Please ask again.',
          lost.turnId !== undefined ? { turnId: lost.turnId } : {},
        ),
      );
    this.resetUtterance();
    if (reconnecting) this.setState('connecting');
  }

  private onMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'ready': {
        this.connection.set('ready');
        if (this.tools.size) this.announceTools();
        const turns = this.turns;
        turns.speculative =
          this.canSpeculate && (message.features ?? []).includes(FEATURE_SPECULATION);
        if (turns.speculative && turns.settings.policy instanceof DefaultPolicy)
          turns.settings.policy.load();
        this.record.replace(message.conversation_id, message.history);
        this.greetingTurn = message.resumed ? undefined : 0;
        this.replies.outputSampleRate = message.output_sample_rate;
        this.emit('ready', {
          conversationId: message.conversation_id,
          resumed: message.resumed,
          history: [...this.record.messages],
          features: message.features ?? [],
          linkHosts: message.link_hosts ?? [],
        });
        this.emit('history', [...this.record.messages]);
        // Connected: ready for input if there is a mic, or if input is typed anyway.
        if (this.stateValue === 'connecting')
          this.setState(this.engine || this.options.input === 'text' ? 'listening' : 'idle');
        return;
      }
      case 'tentative_transcript': {
        const { text, pause_id: pauseId } = message;
        // In line with the detector's frames, which may end the turn too.
        this.vadQueue = this.vadQueue.then(() => this.turns.tentative(text, pauseId));
        return;
      }
      case 'transcript':
        this.replies.transcript(message.turn_id);
        if (message.final) this.pushMessage({ role: 'user', text: message.text });
        this.emit('transcript', {
          turnId: message.turn_id,
          text: message.text,
          final: message.final,
        });
        return;
      case 'text_delta': {
        const text = this.replies.delta(message.turn_id, message.delta);
        if (text === undefined) return;
        this.emit('text-delta', { turnId: message.turn_id, delta: message.delta, text });
        this.speech?.reply(message.turn_id, text, false);
        if (!this.relayAudio || !this.engine) this.setState('speaking');
        return;
      }
      case 'audio_segment':
        this.replies.segment(message.turn_id, message.text);
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
        this.engine?.endTurn(message.turn_id);
        if (this.replies.done(message.turn_id, message.text, message.interrupted, message.metrics))
          this.settle();
        return;
      case 'error':
        if (message.turn_id !== undefined) {
          this.engine?.endTurn(message.turn_id);
          this.replies.failed(message.turn_id);
        }
        this.fail(
          new VoiceBotError(message.code, message.message, {
            fatal: message.fatal,
            ...(message.turn_id !== undefined ? { turnId: message.turn_id } : {}),
          }),
        );
        if (!message.fatal && this.replies.status === 'idle') this.settle();
        return;
      case 'status':
        // A greeting is turn 1 of a new conversation: the relay says `thinking` first, else `listening`.
        if (this.greetingTurn === 0)
          this.greetingTurn = message.state === 'thinking' ? 1 : undefined;
        if (message.state === 'thinking' && this.stateValue !== 'user-speaking')
          this.setState('thinking');
        return;
      case 'handoff': {
        const { type: _, turn_id, targets, ...rest } = message;
        const { chat_url, ...ways } = targets;
        this.emit('handoff', { ...rest, turnId: turn_id, targets: { ...ways, chatUrl: chat_url } });
        return;
      }
      case 'tool_call':
      case 'tool_cancel':
        this.toolRunner ??= import('./client/page-tools.js').then(
          ({ PageToolRunner }) => new PageToolRunner(this.tools, (m) => this.transport.send(m)),
        );
        void this.toolRunner.then((runner) => runner.handle(message));
        return;
      case 'pong':
        return;
    }
  }

  /** A reply counts as said (`text`: what was heard). */
  private announceReply(
    turnId: number,
    text: string,
    interrupted: boolean,
    metrics: ClientMetrics,
  ): void {
    // The greeting stays first, even when the visitor typed before it arrived.
    if (text)
      this.pushMessage(
        { role: 'assistant', text, ...(interrupted ? { interrupted: true } : {}) },
        turnId === this.greetingTurn,
      );
    this.emit('message', { turnId, text, interrupted });
    if (!interrupted) this.speech?.reply(turnId, text, true);
    this.emit('metrics', metrics);
  }

  private onAudio(pcm: ArrayBuffer): void {
    if (!this.engine) return;
    const turnId = this.replies.audio(pcm.byteLength);
    if (turnId === undefined) return;
    this.engine.play(pcm, turnId);
    if (this.stateValue !== 'user-speaking') this.setState('speaking');
  }

  private onPlayed(report: PlaybackReport & { level: number }): void {
    this.replies.played(report.turnId, report.playedMs);
    this.emit('level', { input: this.inputLevel, output: report.level });
    this.watch?.output(report.level);
  }

  private onDrained(report: PlaybackReport & Partial<PlaybackStats>): void {
    if (!this.replies.drained(report.turnId, report)) return;
    this.emit('level', { input: this.inputLevel, output: 0 });
    this.watch?.output(0);
    this.settle();
  }

  private onMicFrame(pcm: Int16Array, level: number, referenceLevel: number): void {
    this.inputLevel = level;
    if (this.replies.playing === undefined) this.emit('level', { input: level, output: 0 });
    this.watch?.input(level, this.replies.playing !== undefined);
    const vad = this.vad;
    if (!vad || this.muted || !this.connection.ready) return;
    const notEcho =
      this.echoGate?.admit(level, referenceLevel, this.gate.status === 'confirmed') ?? true;
    this.vadQueue = this.vadQueue.then(async () => {
      const events = await vad.process(pcm);
      this.onVadFrame(pcm, events, notEcho && vad.voiced);
    });
  }

  /** `voiced`: this frame sounds like the visitor (speech, and more than the bot's echo). (bench/pages/timeline.html wraps it.) */
  private onVadFrame(frame: Int16Array, events: VadEvent[], voiced: boolean): void {
    this.gate.process(frame, events, voiced);
    if (this.gate.status === 'confirmed') this.turns.silenceAfterFrame(this.vad?.silenceMs ?? 0);
  }

  /** Turn-taking ends the utterance before the detector would: the detector ends it now, the gate acts on that. */
  private endSpeechNow(): void {
    const event = this.vad?.endSpeech();
    this.gate.apply([event ?? { type: 'speech-end', durationMs: 0 }]);
  }

  /** Real speech (long enough not to be a cough): barge in if the bot talks, then stream it. */
  private confirmSpeech(held: Int16Array[]): void {
    this.speech?.cancel();
    if (this.replies.status !== 'idle') void this.interrupt();
    for (const frame of held) this.sendUtteranceAudio(frame);
    this.setState('user-speaking');
  }

  private sendUtteranceAudio(frame: Int16Array): void {
    if (this.browserStt) this.whisper?.push(frame);
    else this.uplink.push(frame);
  }

  private endUtterance(): void {
    const silenceMs = this.turns.committed();
    const whisper = this.browserStt ? this.whisper : undefined;
    if (whisper) void this.transcribe(whisper, whisper.take());
    else this.commitUtterance();
    this.replies.awaitReply(performance.now(), silenceMs);
    this.resetUtterance();
    this.setState('thinking');
  }

  private commitUtterance(): void {
    this.uplink.flush();
    this.transport.send({ type: 'commit' });
  }

  /** @internal */
  resetUtterance(): void {
    // A speculative turn of the abandoned utterance must not be confirmed by the next commit.
    if (this.turns.abandon()) this.transport.send({ type: 'resume' });
    this.uplink.discard();
    this.gate.reset();
    this.whisper?.clear();
  }

  /** `stt: 'browser'`: the utterance's words go to the relay as text (or, after a fallback, its audio to the relay's STT). */
  private async transcribe(whisper: BrowserSttSession, frames: Int16Array[]): Promise<void> {
    const outcome = await whisper.recognize(frames, (words) => this.sendUserText(words, 'speech'));
    if (outcome.kind === 'sent') return;
    if (outcome.kind === 'relay') {
      for (const frame of outcome.frames) this.uplink.push(frame);
      this.replies.awaitReply(); // a turn of the new socket (its start reset the turn state)
      this.commitUtterance();
      return;
    }
    this.replies.cancel();
    if (outcome.kind === 'failed' && outcome.error) this.emit('error', outcome.error);
    this.settle();
  }

  /** The session was started with `input: 'text'`; a new one (same conversation) accepts audio. */
  private async restartWithRelayStt(): Promise<void> {
    this.connection.set('connecting');
    this.transport.close();
    await this.connect();
  }

  /**
   * Stops the bot mid-reply: playback goes silent within one render quantum and the relay keeps
   * only what was actually heard.
   */
  async interrupt(): Promise<void> {
    this.speech?.cancel();
    const ticket = this.replies.startInterrupt();
    if (!ticket) return;
    const report: Partial<PlaybackStats> & { playedMs: number } = this.engine
      ? await this.engine.stopPlayback()
      : { playedMs: 0 };
    // A new socket started meanwhile: the ticket's turn id was the old socket's, and names another turn on this one.
    if (!this.replies.isCurrent(ticket)) return;
    const playedMs =
      this.relayAudio && this.engine !== undefined
        ? Math.round(report.playedMs)
        : Number.MAX_SAFE_INTEGER;
    this.transport.send({ type: 'interrupt', turn_id: ticket.turnId, played_ms: playedMs });
    this.replies.finishInterrupt(ticket, playedMs, report);
    this.settle();
  }

  /**
   * Rates a reply: `turnId` is the `message` event's (a turn of the current connection), `comment`
   * at most {@link MAX_FEEDBACK_COMMENT_CHARS} characters. Only when `ready.features` lists
   * `'feedback'` (the bot keeps records and takes feedback); otherwise, or for a turn the relay did
   * not record on this connection, an `error` event follows (`feedback_unavailable`, `unknown_turn`).
   */
  sendFeedback(turnId: number, rating: 'up' | 'down', comment?: string): void {
    if (!Number.isInteger(turnId) || turnId < 0)
      throw new VoiceBotError('invalid_message', 'turnId must be the turn id of a reply');
    const trimmed = comment?.trim().slice(0, MAX_FEEDBACK_COMMENT_CHARS);
    const sent = this.transport.send({
      type: 'feedback',
      turn_id: turnId,
      rating,
      ...(trimmed ? { comment: trimmed } : {}),
    });
    if (!sent) throw new VoiceBotError('not_connected', 'Not connected to the voice assistant.');
  }

  /** Sends typed text (interrupting the bot if it is talking). */
  sendText(text: string): Promise<void> {
    return this.sendUserText(text, 'typed');
  }

  /** `speech`: the page's own transcript of an utterance (barge-in already happened on speech onset). */
  private async sendUserText(text: string, source: 'typed' | 'speech'): Promise<void> {
    const trimmed = text.trim();
    if (!trimmed) return;
    if (source === 'typed') this.speech?.cancel();
    if (!this.connection.ready) await this.connect();
    if (source === 'typed' && this.replies.status !== 'idle') await this.interrupt();
    this.pushMessage({ role: 'user', text: trimmed });
    this.emit('transcript', { turnId: -1, text: trimmed, final: true });
    this.replies.awaitReply(source === 'typed' ? performance.now() : undefined);
    if (!this.transport.send({ type: 'text', text: trimmed, source })) {
      this.replies.cancel();
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

  private pushMessage(message: HistoryMessage, first?: boolean): void {
    this.record.push(message, first);
    this.emit('history', [...this.record.messages]);
  }

  /** Forgets the conversation (here and for the next connect). */
  async clearHistory(): Promise<void> {
    const cleared = this.record.clear();
    this.emit('history', []);
    await cleared;
  }

  /** Ends the conversation: releases microphone, audio, detectors and the socket. */
  async stop(): Promise<void> {
    this.speech?.cancel();
    this.transport.close();
    this.vad?.dispose?.();
    this.vad = undefined;
    this.whisper?.stop();
    const engine = this.engine;
    this.engine = undefined;
    this.watch?.dispose();
    this.watch = undefined;
    await engine?.close();
    this.connection.set('idle');
    this.replies.stop();
    this.resetUtterance();
    this.setState('idle');
  }

  private devices(): Promise<typeof import('./client/devices.js')> {
    return import('./client/devices.js');
  }

  /** The page's microphones and speakers (labels once the page has microphone permission). */
  async listDevices(): Promise<AudioDevices> {
    return (await this.devices()).listDevices();
  }

  /**
   * Uses this microphone (`deviceId` from `listDevices()`; undefined: the default), now if a session
   * runs — without dropping it — and for later sessions.
   */
  async setInputDevice(deviceId: string | undefined): Promise<void> {
    this.inputDevice = deviceId;
    await (await this.devices()).switchMic(this, deviceId);
    this.watch?.watchTrack();
  }

  /**
   * Plays the replies on this speaker (`''`: the default), now and for later sessions. Throws
   * `output_unsupported` where the browser cannot choose (`listDevices().canChooseOutput`).
   */
  async setOutputDevice(deviceId: string): Promise<void> {
    await (await this.devices()).setOutput(this.engine, deviceId);
    this.outputDevice = deviceId;
  }

  /**
   * The replies' audio as a `MediaStream` (for an avatar's lip sync, a meter, a recorder), once
   * `start()` resolved; undefined before. Each `start()` makes a new one.
   */
  outputStream(): MediaStream | undefined {
    return this.watch?.outputStream();
  }

  /** Same as `stop()`. */
  disconnect(): Promise<void> {
    return this.stop();
  }
}

/** The turn-taking settings from the client's options (validated by `TurnTaking`). */
function turnTakingSettings(options: VoiceBotOptions): TurnTakingSettings {
  const endOfTurn = options.endOfTurn ?? {};
  const fallbackMs = options.vad?.redemptionMs ?? DEFAULT_REDEMPTION_MS;
  const maxSilenceMs =
    endOfTurn.maxSilenceMs ?? options.vad?.redemptionMs ?? DEFAULT_MAX_SILENCE_MS;
  const policyFallbackMs = Math.min(DEFAULT_REDEMPTION_MS, maxSilenceMs);
  return {
    pauseMs: endOfTurn.pauseMs ?? DEFAULT_PAUSE_MS,
    minSilenceMs: endOfTurn.minSilenceMs ?? Math.min(DEFAULT_MIN_SILENCE_MS, maxSilenceMs),
    maxSilenceMs,
    fallbackMs,
    policy: endOfTurn.policy ?? new DefaultPolicy(policyFallbackMs, maxSilenceMs),
    language: () =>
      endOfTurn.language ??
      options.whisper?.language ??
      options.speechSynthesis?.lang ??
      pageLanguage(),
  };
}

/** The page's `<html lang>`, else the browser's language. */
function pageLanguage(): string | undefined {
  const lang = typeof document === 'undefined' ? '' : document.documentElement.lang;
  if (lang) return lang;
  return typeof navigator === 'undefined' ? undefined : navigator.language;
}
