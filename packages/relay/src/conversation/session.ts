import {
  CLOSE_CODES,
  DEFAULT_OUTPUT_SAMPLE_RATE,
  FEATURE_CLIENT_TOOLS,
  FEATURE_FEEDBACK,
  FEATURE_HANDOFF,
  FEATURE_SPECULATION,
  INPUT_BYTES_PER_MS,
  INPUT_SAMPLE_RATE,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeServerMessage,
  isCompatibleVersion,
  parseClientMessage,
  type ClientMessage,
  type ErrorCode,
  type FeedbackMessage,
  type ServerMessage,
  type StartMessage,
  type VisitorClaims,
} from '@voice-bot/protocol';
import type { BotConfig, LimitsConfig, ProvidersConfig } from '../config/config.js';
import type { Conversation, ConversationStore, OpenedConversation } from './conversations.js';
import type { Logger } from '../logger.js';
import type { ProviderClients } from '../providers/providers.js';
import { MetadataError, templateData, validatePageMetadata } from './metadata.js';
import type { ToolRunner } from '../tools/runner.js';
import { PageToolCalls } from '../tools/client-tool.js';
import { renderTemplate } from '../tools/template.js';
import { Turn, type TurnInput } from './turn.js';
import type { ProviderCost } from '../policy/usage.js';
import { HeldOutput } from './held-output.js';
import type { ConversationRecords } from '../records/records.js';
import type { SessionRecorder } from '../records/recorder.js';

/** The relay's view of one client WebSocket (the raw `ws` socket satisfies it). */
export interface SessionSocket {
  send(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
  /** Bytes queued towards the client and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Drops the connection without a closing handshake. */
  terminate(): void;
}

/** A refusal the session answers with; `close` makes it fatal (the socket closes with that code). */
export interface SessionRefusal {
  code: ErrorCode;
  message: string;
  close?: { code: number; reason: string };
}

/**
 * What a session asks before it spends or counts (limits, quotas, usage, metrics: `policy/`).
 * Decisions only: the policy never acts on the session; the session answers a refusal itself.
 */
export interface SessionPolicy {
  /** PCM bytes about to be buffered for the utterance. */
  audioIn(bytes: number): SessionRefusal | undefined;
  /** Input is about to start a turn (`say` = the scripted greeting). */
  beforeTurn(kind: TurnInput['kind']): SessionRefusal | undefined;
  /** A provider request is about to be sent: its estimated cost is charged, or refused. */
  charge(cost: ProviderCost): SessionRefusal | undefined;
  /** Cost learned after a request: the provider's usage minus the estimate, output streamed. */
  count(cost: ProviderCost): void;
  /** Every message the session has just sent; a refusal when it took the key over a quota. */
  sent(message: ServerMessage): SessionRefusal | undefined;
  /** A `pause` would start a speculative turn: may it (budget, quota, draining)? A no is silent. */
  speculate(): boolean;
  /** A speculative turn was confirmed by `commit`, or discarded (its requests stay charged). */
  speculationEnded(outcome: 'confirmed' | 'discarded'): void;
}

export interface SessionDeps {
  id: string;
  keyId: string;
  bot: BotConfig;
  providers: ProvidersConfig;
  clients: ProviderClients;
  conversations: ConversationStore;
  tools: ToolRunner;
  limits: LimitsConfig;
  /** See `RelayOptions.textDeltaIntervalMs`. */
  textDeltaIntervalMs: number;
  socket: SessionSocket;
  log: Logger;
  policy?: SessionPolicy;
  /** Conversation records (bots with `records`). */
  records?: Pick<ConversationRecords, 'open'> | undefined;
  /** A signed-in visitor's trusted claims (from the site's visitor token), for prompts and tools. */
  user?: VisitorClaims | undefined;
}

/** Frames kept while `start` waits for its conversation; more are dropped. */
const MAX_HELD_FRAMES = 256;
/** `ready.history` carries at most this many recent messages. */
const MAX_HISTORY_IN_READY = 50;
/** How often a socket over its queue bound is checked for room. */
const ROOM_POLL_MS = 20;

/** A signed-in visitor's id (their token's `sub`, kept as the `id` claim). */
const visitorId = (user: VisitorClaims | undefined): string | undefined =>
  typeof user?.['id'] === 'string' ? user['id'] : undefined;
/** A slow client closed with 4006 has this long to read the close frame before the connection is dropped. */
const SLOW_CLIENT_GRACE_MS = 1_000;
/** A `pause` with less utterance audio than this starts no speculative turn. */
export const MIN_SPECULATION_AUDIO_MS = 300;
/** A speculative turn neither confirmed nor resumed within this long is discarded. */
export const MAX_SPECULATION_MS = 10_000;

/** A turn started at a `pause` over the utterance so far, its output held until `commit`. */
interface Speculation {
  turn: Turn;
  hold: HeldOutput;
  /** Utterance bytes at the `pause`: the turn is confirmed only if no audio came after. */
  bytes: number;
  startedAt: number;
  running: Promise<void>;
  timer: NodeJS.Timeout;
}

/**
 * One visitor connection: validates every frame, buffers the utterance, and runs turns one at a
 * time (new input interrupts the turn in progress). Bad input is answered with a typed `error`;
 * only a protocol version mismatch or a missing `start` closes the socket.
 */
export class TalkSession {
  private started: StartMessage | undefined;
  private conversation: Conversation | undefined;
  private utterance: Uint8Array[] = [];
  private utteranceBytes = 0;
  private utteranceOverflowed = false;
  private turnCounter = 0;
  private currentTurn: Turn | undefined;
  private lastTurn: Turn | undefined;
  /** The turn before `lastTurn`: a client may interrupt it just after sending new input. */
  private previousTurn: Turn | undefined;
  /** Settles when the latest turn has finished; turns run strictly one after another. */
  private turnChain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly startTimer: NodeJS.Timeout;
  /** Frames that arrived while the conversation was being fetched (from a cluster's primary). */
  private waiting: (() => void)[] | undefined;
  /** Settles when a socket over its queue bound has room again (or is closed). */
  private roomWait: Promise<void> | undefined;
  /** At most one at a time; see {@link pause}. */
  private speculation: Speculation | undefined;
  /** This socket's part of the conversation's record, when its bot keeps records. */
  private recorder: SessionRecorder | undefined;
  /** Page-side tools the page registered, and their calls waiting for `tool_result`. */
  private readonly page = new PageToolCalls();

  constructor(private readonly deps: SessionDeps) {
    this.startTimer = setTimeout(
      () => this.close(CLOSE_CODES.startTimeout, 'no start message'),
      deps.limits.startTimeoutMs,
    );
    this.startTimer.unref();
  }

  private send(message: ServerMessage): void {
    if (this.closed) return;
    this.deps.socket.send(encodeServerMessage(message));
    const refused = this.deps.policy?.sent(message);
    // After what is being sent now (e.g. the `done` that crossed a quota) has gone out.
    if (refused) queueMicrotask(() => this.refuse(refused));
  }

  /** Answers a refusal of the policy: a typed error, and for a fatal one the close. */
  private refuse(refusal: SessionRefusal): void {
    this.reject(refusal.code, refusal.message, refusal.close);
  }

  /** Sends a typed error; with `close`, it is fatal and the socket is closed right after. */
  reject(code: ErrorCode, message: string, close?: { code: number; reason: string }): void {
    this.sendError(code, message, { fatal: close !== undefined });
    if (close) this.close(close.code, close.reason);
  }

  /**
   * Backpressure towards the page: undefined while the socket's queue is under `maxBufferedBytes`;
   * otherwise a promise that settles when it is back under (turns stop pulling from the providers
   * meanwhile). A client that stays over the bound for `slowClientTimeoutMs` is closed with 4006.
   */
  room(): Promise<void> | undefined {
    if (this.closed || this.deps.socket.bufferedAmount <= this.deps.limits.maxBufferedBytes)
      return undefined;
    this.roomWait ??= new Promise<void>((resolve) => {
      const since = performance.now();
      const timer = setInterval(() => {
        const stalled = performance.now() - since >= this.deps.limits.slowClientTimeoutMs;
        if (
          !this.closed &&
          this.deps.socket.bufferedAmount > this.deps.limits.maxBufferedBytes &&
          !stalled
        )
          return;
        clearInterval(timer);
        this.roomWait = undefined;
        if (stalled && !this.closed) this.dropSlowClient();
        resolve();
      }, ROOM_POLL_MS);
    });
    return this.roomWait;
  }

  private dropSlowClient(): void {
    const { socket, limits, log } = this.deps;
    log.warn(
      { buffered_bytes: socket.bufferedAmount, waited_ms: limits.slowClientTimeoutMs },
      'client not reading; closing',
    );
    this.reject(
      'slow_client',
      `the page did not read the relay's messages for ${limits.slowClientTimeoutMs / 1000} s; the session is closed`,
      {
        code: CLOSE_CODES.slowClient,
        reason: 'client not reading',
      },
    );
    // The close frame waits behind everything queued; a client that reads nothing never gets it.
    setTimeout(() => socket.terminate(), SLOW_CLIENT_GRACE_MS).unref();
  }

  /** A turn is running. */
  get busy(): boolean {
    return this.currentTurn !== undefined;
  }

  /** Settles when the turns started so far have finished. */
  settled(): Promise<void> {
    return this.turnChain;
  }

  private sendError(
    code: ErrorCode,
    message: string,
    extra: { fatal?: boolean; turn_id?: number } = {},
  ): void {
    this.send({
      type: 'error',
      code,
      message,
      fatal: extra.fatal ?? false,
      ...(extra.turn_id !== undefined ? { turn_id: extra.turn_id } : {}),
    });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.startTimer);
    this.currentTurn?.cancel();
    this.page.cancelAll();
    this.dropSpeculation('closed');
    // A revoked key cannot resume the conversation: its record ends now, not after the TTL.
    this.endRecording(code === CLOSE_CODES.keyRevoked);
    this.deps.socket.close(code, reason);
  }

  /** The socket closed (either side). */
  onClose(): void {
    this.closed = true;
    clearTimeout(this.startTimer);
    this.currentTurn?.cancel();
    this.page.cancelAll();
    this.dropSpeculation('closed');
    this.endRecording();
  }

  /** The record learns the socket closed once its last turn has ended (and been recorded). */
  private endRecording(final = false): void {
    const recorder = this.recorder;
    this.recorder = undefined;
    if (recorder) void this.turnChain.finally(() => recorder.closed(final));
  }

  /** `feedback`: stored with the record, or a typed error. */
  private feedback(message: FeedbackMessage): void {
    const recorder = this.recorder;
    if (!recorder?.feedback) {
      this.sendError('feedback_unavailable', 'this bot does not take feedback');
      return;
    }
    void recorder.rate(message.turn_id, message.rating, message.comment).then((result) => {
      if (result === 'unknown_turn')
        this.sendError(
          'unknown_turn',
          `turn ${message.turn_id} has not been recorded on this socket`,
        );
    });
  }

  onText(raw: string): void {
    if (this.closed) return;
    if (this.waiting) {
      this.hold(() => this.onText(raw));
      return;
    }
    if (Buffer.byteLength(raw) > this.deps.limits.maxJsonBytes) {
      this.sendError(
        'message_too_large',
        `control messages are limited to ${this.deps.limits.maxJsonBytes} bytes`,
      );
      return;
    }
    let message: ClientMessage;
    try {
      message = parseClientMessage(raw);
    } catch (error) {
      if (error instanceof ProtocolError) this.sendError(error.code, error.message);
      else throw error;
      return;
    }
    this.dispatch(message);
  }

  onBinary(data: Uint8Array): void {
    if (this.closed) return;
    if (this.waiting) {
      this.hold(() => this.onBinary(data));
      return;
    }
    if (!this.started) {
      this.sendError('not_started', 'send start before audio');
      return;
    }
    if (this.started.input !== 'audio') {
      this.sendError(
        'binary_not_expected',
        'this session was started with input "text"; audio frames are ignored',
      );
      return;
    }
    if (data.byteLength % 2 !== 0) {
      this.sendError(
        'bad_audio_frame',
        'audio frames must hold whole 16-bit samples (even byte length)',
      );
      return;
    }
    if (this.utteranceOverflowed) return;
    if (
      this.utteranceBytes + data.byteLength >
      this.deps.limits.maxUtteranceMs * INPUT_BYTES_PER_MS
    ) {
      this.utteranceOverflowed = true;
      this.resetUtterance(true);
      this.sendError(
        'utterance_too_long',
        `an utterance may last at most ${this.deps.limits.maxUtteranceMs / 1000} s; it was dropped — send commit and speak again`,
      );
      return;
    }
    const refused = this.deps.policy?.audioIn(data.byteLength);
    if (refused) {
      this.refuse(refused);
      return;
    }
    // Speech after a `pause` without `resume`: the speculative turn can no longer be confirmed.
    if (this.speculation) this.dropSpeculation('audio');
    this.utterance.push(data);
    this.utteranceBytes += data.byteLength;
  }

  /** Keeps a frame until `start` has its conversation; the rate limits bound how many arrive meanwhile. */
  private hold(frame: () => void): void {
    const waiting = this.waiting as (() => void)[];
    if (waiting.length >= MAX_HELD_FRAMES) {
      this.sendError('rate_limited', 'too many messages before ready; some were dropped');
      return;
    }
    waiting.push(frame);
  }

  private resetUtterance(keepOverflow = false): void {
    this.dropSpeculation('utterance');
    this.utterance = [];
    this.utteranceBytes = 0;
    if (!keepOverflow) this.utteranceOverflowed = false;
  }

  private dispatch(message: ClientMessage): void {
    if (message.type === 'ping') {
      this.send({ type: 'pong', ...(message.t !== undefined ? { t: message.t } : {}) });
      return;
    }
    if (message.type === 'start') {
      this.start(message);
      return;
    }
    if (!this.started) {
      this.sendError('not_started', `send start before ${message.type}`);
      return;
    }
    switch (message.type) {
      case 'commit':
        this.commit();
        return;
      case 'text':
        if (message.text.length > this.deps.limits.maxTextChars) {
          this.sendError(
            'text_too_long',
            `text is limited to ${this.deps.limits.maxTextChars} characters`,
          );
          return;
        }
        if (!message.text.trim()) {
          this.sendError('invalid_message', 'text must not be empty');
          return;
        }
        this.beginTurn({ kind: 'text', text: message.text.trim() });
        return;
      case 'interrupt':
        this.interrupt(message.turn_id, message.played_ms);
        return;
      case 'pause':
        this.pause(message.pause_id);
        return;
      case 'resume':
        this.dropSpeculation('resume');
        return;
      case 'feedback':
        this.feedback(message);
        return;
      case 'client_tools':
        this.page.announce(message.names);
        return;
      case 'tool_result':
        if (!this.page.settle(message))
          this.sendError(
            'unknown_tool_call',
            `no page tool call ${message.call_id} is waiting (answered, cancelled or timed out)`,
          );
        return;
      case 'stop':
        this.close(CLOSE_CODES.normal, 'stopped');
        return;
    }
  }

  private start(message: StartMessage): void {
    if (this.started) {
      this.sendError('already_started', 'this session has already started');
      return;
    }
    if (!isCompatibleVersion(message.protocol_version)) {
      this.sendError(
        'protocol_version',
        `protocol ${message.protocol_version} is not supported; this relay speaks ${PROTOCOL_VERSION}`,
        { fatal: true },
      );
      this.close(CLOSE_CODES.protocolVersion, 'protocol version mismatch');
      return;
    }
    let pageMetadata: StartMessage['metadata'];
    try {
      pageMetadata = message.metadata && validatePageMetadata(message.metadata);
    } catch (error) {
      if (!(error instanceof MetadataError)) throw error;
      this.sendError('invalid_message', error.message);
      return;
    }
    clearTimeout(this.startTimer);
    this.started = message;
    this.page.announce(message.client_tools ?? []);
    const opened = this.deps.conversations.open(
      message.conversation_id,
      this.deps.keyId,
      this.deps.bot.id,
      visitorId(this.deps.user),
    );
    if (!(opened instanceof Promise)) {
      this.sendReady(opened, pageMetadata);
      return;
    }
    this.waiting = [];
    opened.then(
      (result) => {
        const held = this.waiting ?? [];
        this.waiting = undefined;
        if (this.closed) return;
        // Off the socket's own call stack: a throw here must not become an unhandled rejection.
        for (const step of [() => this.sendReady(result, pageMetadata), ...held]) {
          try {
            step();
          } catch (error) {
            this.deps.log.error({ err: String(error) }, 'frame handling failed');
          }
        }
      },
      (error: unknown) => {
        this.waiting = undefined;
        this.deps.log.error({ err: String(error) }, 'conversation store failed');
        this.reject('internal', 'the conversation could not be opened; please reconnect', {
          code: CLOSE_CODES.internalError,
          reason: 'conversation store failed',
        });
      },
    );
  }

  private sendReady(
    { conversation, resumed }: OpenedConversation,
    pageMetadata: StartMessage['metadata'],
  ): void {
    if (pageMetadata) {
      conversation.pageMetadata = pageMetadata;
      this.deps.conversations.touch(conversation);
    }
    this.conversation = conversation;
    this.recorder = this.deps.records?.open({
      bot: this.deps.bot,
      conversationId: conversation.id,
      keyId: this.deps.keyId,
      sessionId: this.deps.id,
      log: this.deps.log,
    });
    const { input, output } = this.started as StartMessage;
    this.deps.log.info(
      { conversation: conversation.id, resumed, input, output },
      'session started',
    );
    this.send({
      type: 'ready',
      session_id: this.deps.id,
      conversation_id: conversation.id,
      protocol_version: PROTOCOL_VERSION,
      input_sample_rate: INPUT_SAMPLE_RATE,
      output_sample_rate: DEFAULT_OUTPUT_SAMPLE_RATE,
      resumed,
      history: conversation.messages
        .slice(-MAX_HISTORY_IN_READY)
        .map(({ role, text, interrupted }) => ({
          role,
          text,
          ...(interrupted ? { interrupted } : {}),
        })),
      features: [
        ...(this.speculationOffered() ? [FEATURE_SPECULATION] : []),
        ...(this.deps.bot.handoff ? [FEATURE_HANDOFF] : []),
        ...(this.recorder?.feedback ? [FEATURE_FEEDBACK] : []),
        ...(this.deps.tools.hasClientTools ? [FEATURE_CLIENT_TOOLS] : []),
      ],
      ...(this.deps.bot.linkHosts?.length ? { link_hosts: this.deps.bot.linkHosts } : {}),
    });
    const greeting =
      this.deps.bot.greeting &&
      renderTemplate(this.deps.bot.greeting, templateData(conversation, this.deps.user)).trim();
    if (!resumed && greeting) this.beginTurn({ kind: 'say', text: greeting });
    else this.send({ type: 'status', state: 'listening' });
  }

  private commit(): void {
    if (this.started?.input !== 'audio') {
      this.sendError('invalid_message', 'commit is only valid in audio input sessions');
      return;
    }
    if (this.utteranceOverflowed) {
      this.resetUtterance();
      return;
    }
    if (this.utteranceBytes === 0) {
      this.sendError(
        'empty_utterance',
        'commit received but no audio was sent since the last commit',
      );
      return;
    }
    const speculation = this.speculation;
    if (speculation && speculation.bytes === this.utteranceBytes) {
      this.confirm(speculation);
      return;
    }
    const input = { kind: 'audio' as const, frames: this.utterance, bytes: this.utteranceBytes };
    this.resetUtterance();
    this.beginTurn(input);
  }

  private interrupt(turnId: number, playedMs: number): void {
    // `received_at_ms` is this process's monotonic clock (`performance.now()`): it lines up with
    // other in-process timings, e.g. the benchmark's fake upstream seeing its requests aborted.
    this.deps.log.debug({ turn: turnId, received_at_ms: performance.now() }, 'interrupt received');
    const target = [this.currentTurn, this.lastTurn, this.previousTurn].find(
      (t) => t?.id === turnId,
    );
    if (!target) {
      this.sendError('stale_turn', `turn ${turnId} is not the current or the last turn`);
      return;
    }
    this.deps.log.info({ turn: turnId, played_ms: Math.round(playedMs) }, 'interrupted');
    target.interrupt(playedMs);
    // A turn that has already ended trims its stored reply now: keep the store (a cluster's primary) up to date.
    if (this.conversation) this.deps.conversations.touch(this.conversation);
  }

  private beginTurn(input: TurnInput): void {
    const conversation = this.conversation;
    if (!conversation || !this.started) return;
    this.dropSpeculation('input');
    const refused = this.deps.policy?.beforeTurn(input.kind);
    if (refused) {
      this.refuse(refused);
      return;
    }
    // New input while the bot is still answering interrupts it. Without an `interrupt` from the
    // client we assume the visitor heard all the audio that was sent.
    this.currentTurn?.interrupt(Number.POSITIVE_INFINITY);
    const turn = this.newTurn(conversation, this.started.output);
    // `bind`, not an arrow: an arrow would put `input` in the scope the `finally` callback keeps
    // until the turn ends, and with it the utterance's audio.
    this.track(turn, conversation, turn.run.bind(turn, input));
  }

  /** `turn` becomes the current one; `run` runs it once the turns before it have settled. */
  private track(turn: Turn, conversation: Conversation, run: () => Promise<void>): void {
    this.currentTurn = turn;
    this.previousTurn = this.lastTurn;
    this.lastTurn = turn;
    // The interrupted turn settles first, so history keeps its order: its reply, then the new input.
    this.turnChain = this.turnChain
      .then(run)
      .catch((error: unknown) => this.deps.log.error({ err: String(error) }, 'turn crashed'))
      .finally(() => {
        this.deps.conversations.touch(conversation);
        if (this.currentTurn === turn) {
          this.currentTurn = undefined;
          this.send({ type: 'status', state: 'listening' });
        }
      });
  }

  /** This session acts on `pause`: audio input, a bot and key that allow speculative turns. */
  private speculationOffered(): boolean {
    return (
      this.started?.input === 'audio' &&
      this.deps.bot.speculation !== false &&
      this.deps.limits.speculativeTurnsPerMinute > 0
    );
  }

  /**
   * A tentative end of turn: a speculative turn starts over the utterance so far, its output held
   * until `commit` confirms it. Ignored (silently) when speculation is off, one is running, a turn
   * is running, the utterance is shorter than {@link MIN_SPECULATION_AUDIO_MS}, or the policy says no.
   */
  private pause(pauseId: number | undefined): void {
    const conversation = this.conversation;
    if (
      !conversation ||
      !this.speculationOffered() ||
      this.speculation ||
      this.currentTurn ||
      this.utteranceOverflowed ||
      this.utteranceBytes < MIN_SPECULATION_AUDIO_MS * INPUT_BYTES_PER_MS
    )
      return;
    if (this.deps.policy && !this.deps.policy.speculate()) return;
    const hold = new HeldOutput(this.deps.limits.maxBufferedBytes);
    const turn = this.newTurn(conversation, (this.started as StartMessage).output, hold, pauseId);
    const timer = setTimeout(() => this.dropSpeculation('timeout'), MAX_SPECULATION_MS);
    timer.unref();
    this.speculation = {
      turn,
      hold,
      bytes: this.utteranceBytes,
      startedAt: performance.now(),
      running: this.runSpeculation(turn, {
        kind: 'audio',
        frames: this.utterance.slice(),
        bytes: this.utteranceBytes,
      }),
      timer,
    };
    this.deps.log.debug({ audio_ms: this.utteranceBytes / INPUT_BYTES_PER_MS }, 'speculating');
  }

  private runSpeculation(turn: Turn, input: TurnInput): Promise<void> {
    return turn
      .run(input)
      .catch((error: unknown) => this.deps.log.error({ err: String(error) }, 'turn crashed'));
  }

  /** `commit` with no audio since the `pause`: the speculative turn is the visitor's next turn. */
  private confirm(speculation: Speculation): void {
    const conversation = this.conversation as Conversation;
    const { turn, hold, running } = speculation;
    const refused = this.deps.policy?.beforeTurn('audio');
    if (refused) {
      this.resetUtterance(); // discards the speculation too
      this.refuse(refused);
      return;
    }
    this.speculation = undefined;
    clearTimeout(speculation.timer);
    this.resetUtterance();
    this.turnCounter = turn.id;
    const heldMs = Math.round(performance.now() - speculation.startedAt);
    this.deps.log.debug({ turn: turn.id, held_ms: heldMs }, 'speculative turn confirmed');
    this.track(turn, conversation, () => running);
    for (const item of hold.release()) {
      if (!(item instanceof Uint8Array)) this.send(item);
      else if (!this.closed) this.deps.socket.send(item);
    }
    turn.confirm(heldMs);
    this.deps.policy?.speculationEnded('confirmed');
  }

  /** The speculative turn, if any, is discarded: upstream requests aborted, nothing sent or stored. */
  private dropSpeculation(
    reason: 'resume' | 'audio' | 'utterance' | 'input' | 'timeout' | 'closed',
  ): void {
    const speculation = this.speculation;
    if (!speculation) return;
    this.speculation = undefined;
    clearTimeout(speculation.timer);
    speculation.hold.drop();
    speculation.turn.discard();
    this.deps.policy?.speculationEnded('discarded');
    this.deps.log.debug(
      { reason, ran_ms: Math.round(performance.now() - speculation.startedAt) },
      'speculative turn discarded',
    );
  }

  /**
   * A turn and the callbacks it keeps. Made apart from `beginTurn` on purpose: closures made in one
   * function share its scope, so callbacks the turn keeps for its lifetime (and the session keeps
   * its last two turns) would also keep that function's `input` — the whole utterance's audio.
   * With `hold`, a speculative turn: it takes the next id without using it up (a discarded one
   * never does), and its output is held until it is confirmed; its `tentative_transcript` echoes
   * the `pause_id` of the `pause` that started it.
   */
  private newTurn(
    conversation: Conversation,
    output: StartMessage['output'],
    hold?: HeldOutput,
    pauseId?: number,
  ): Turn {
    const id = hold ? this.turnCounter + 1 : ++this.turnCounter;
    const turn: Turn = new Turn(id, {
      bot: this.deps.bot,
      providers: this.deps.providers,
      clients: this.deps.clients,
      conversation,
      output,
      outputSampleRate: DEFAULT_OUTPUT_SAMPLE_RATE,
      maxHistoryMessages: this.deps.limits.maxHistoryMessages,
      tools: this.deps.tools,
      page: this.page,
      user: this.deps.user,
      maxToolRounds: this.deps.bot.maxToolRounds ?? 3,
      textDeltaIntervalMs: this.deps.textDeltaIntervalMs,
      room: hold ? () => (hold.holding ? hold.room() : this.room()) : () => this.room(),
      charge: (cost) => {
        const refused = this.deps.policy?.charge(cost);
        if (refused) this.refuse(refused);
        return refused === undefined;
      },
      count: (cost) => this.deps.policy?.count(cost),
      send: hold
        ? (message) => {
            if (hold.holding) hold.message(message);
            else if (!hold.dropped) this.send(message);
          }
        : (message) => this.send(message),
      sendAudio: (pcm) => {
        if (hold?.holding) hold.audio(pcm);
        else if (!this.closed && this.currentTurn === turn) this.deps.socket.send(pcm);
      },
      log: this.deps.log,
      speculative: hold !== undefined,
      tentative: (text) => {
        if (hold?.holding)
          this.send({
            type: 'tentative_transcript',
            text,
            ...(pauseId !== undefined ? { pause_id: pauseId } : {}),
          });
      },
      observer: this.recorder,
    });
    return turn;
  }
}
