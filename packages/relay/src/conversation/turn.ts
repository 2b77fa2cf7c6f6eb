import { setMaxListeners } from 'node:events';
// The error classes only: the SDK's client (and all its resources) is not loaded for them.
import { APIConnectionTimeoutError, APIError } from 'openai/core/error';
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import {
  INPUT_SAMPLE_RATE,
  heardText,
  type ErrorCode,
  type ServerMessage,
  type TurnMetrics,
} from '@voice-bot/protocol';
import { DEFAULT_FIRST_CLAUSE, SentenceChunker, stripMarkdown } from '../pipeline/chunker.js';
import type { BotConfig, ProvidersConfig } from '../config/config.js';
import type { Conversation, ConversationMessage, MetadataValue } from './conversations.js';

import type { Logger } from '../logger.js';
import type { ProviderClients } from '../providers/providers.js';
import {
  estimatePromptTokens,
  estimateTokens,
  streamChat,
  type ChatRound,
} from '../pipeline/stages/llm.js';
import { transcribe } from '../pipeline/stages/stt.js';
import { SpeechPipeline, type SpokenSegment } from '../pipeline/stages/tts.js';
import { pcm16DurationMs } from '../pipeline/wav.js';
import { metadataView, setToolMetadata, templateData } from './metadata.js';
import type { ToolCall, ToolOutcome, ToolRunner } from '../tools/runner.js';
import { renderTemplate } from '../tools/template.js';
import type { PageTools } from '../tools/types.js';
import type { ProviderCost } from '../policy/usage.js';
import type { TurnObserver } from '../records/recorder.js';

/** Messages a conversation keeps (the model sees the last `maxHistoryMessages` of them). */
const MAX_STORED_MESSAGES = 200;
/** Unanswered visitor messages in a row that the conversation keeps (the latest ones). */
const MAX_UNANSWERED = 3;

/** Why a finished turn's signal is aborted (anything of it still in flight stops). */
const TURN_OVER = new Error('turn over');

/** The provider request was not sent: a quota is used up (the session has been told, and is closing). */
class ChargeRefused extends Error {
  constructor() {
    super('quota used up');
  }
}

export type TurnInput =
  | { kind: 'audio'; frames: readonly Uint8Array[]; bytes: number }
  | { kind: 'text'; text: string }
  /** A scripted assistant line (the bot's greeting): no STT, no LLM. */
  | { kind: 'say'; text: string };

export interface TurnDeps {
  bot: BotConfig;
  providers: ProvidersConfig;
  clients: ProviderClients;
  conversation: Conversation;
  output: 'audio' | 'text';
  outputSampleRate: number;
  maxHistoryMessages: number;
  tools: ToolRunner;
  maxToolRounds: number;
  /** The session's page, for page-side tools (only those it registered are offered). */
  page?: PageTools | undefined;
  /** A signed-in visitor's trusted claims (prompt templates' `{{user.…}}`, tools' `context.user`). */
  user?: Readonly<Record<string, MetadataValue>> | undefined;
  /** Reply text is sent at most once per this many ms after the first piece (0: every piece as it streams). */
  textDeltaIntervalMs: number;
  /** Backpressure: undefined when the client's socket has room, else a promise that settles when it has. */
  room(): Promise<void> | undefined;
  /** Charges a provider request before it is sent; false = refused (the session is closing). */
  charge(cost: ProviderCost): boolean;
  /** Counts what a request cost beyond its charge. */
  count(cost: ProviderCost): void;
  send(message: ServerMessage): void;
  sendAudio(pcm: Uint8Array): void;
  log: Logger;
  /**
   * Started at a `pause`, before the visitor's `commit`: the conversation is left as it is and no
   * tool runs until {@link Turn.confirm}; {@link Turn.discard} drops the turn without a trace.
   * (Holding its messages back from the client is the session's part.)
   */
  speculative?: boolean;
  /** A speculative turn's transcript, for the client while the turn is not confirmed yet. */
  tentative?(text: string): void;
  /** The conversation's record (bots with `records`): tool calls and the ended turn. */
  observer?: TurnObserver | undefined;
}

/** What a speculative turn has not done yet because it is not confirmed. */
interface Unconfirmed {
  /** Changes to the conversation (and the closing `done`), made in order on confirmation. */
  deferred: (() => void)[];
  confirmed: Promise<void>;
  resolve: () => void;
}

type Stage = 'stt' | 'llm' | 'tts';

class StageError extends Error {
  constructor(
    readonly stage: Stage,
    override readonly cause: unknown,
  ) {
    super(`${stage} failed`);
  }
}

async function inStage<T>(stage: Stage, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw error instanceof StageError ? error : new StageError(stage, error);
  }
}

const STAGE_NAMES: Record<Stage, string> = {
  stt: 'speech recognition',
  llm: 'language model',
  tts: 'speech synthesis',
};

function describeFailure(error: StageError): { code: ErrorCode; message: string } {
  const what = STAGE_NAMES[error.stage];
  const cause = error.cause;
  if (cause instanceof APIConnectionTimeoutError)
    return {
      code: 'upstream_timeout',
      message: `The ${what} service timed out. Please try again.`,
    };
  if (cause instanceof APIError && cause.status !== undefined) {
    return {
      code: `upstream_${error.stage}`,
      message: `The ${what} service failed (HTTP ${cause.status}). Please try again.`,
    };
  }
  return {
    code: `upstream_${error.stage}`,
    message: `The ${what} service could not be reached or broke off. Please try again.`,
  };
}

/**
 * One exchange: the visitor's utterance (or text) → transcript → streamed reply → sentence chunks
 * → speech, all forwarded as they happen. A turn ends with exactly one `done` or one `error`.
 */
export class Turn {
  private readonly controller = new AbortController();
  private readonly startedAt = performance.now();
  private readonly metrics: Partial<TurnMetrics> = {};
  private speech: SpeechPipeline | undefined;
  private replyText = '';
  private interruptedAtMs: number | undefined;
  /** Cancelled with its session: ends without a `done`. */
  private silent = false;
  private userMessage: ConversationMessage | undefined;
  private audioBytesOut = 0;
  /** Reply text not yet sent as a `text_delta`, and when the last one went out. */
  private pendingText = '';
  private textTimer: NodeJS.Timeout | undefined;
  private lastTextAt = Number.NEGATIVE_INFINITY;
  /** This turn's completed tool calls and results, kept (hidden from the page) for later LLM calls. */
  private toolExchange: ChatCompletionMessageParam[] | undefined;
  /** The stored assistant message, kept so a late `interrupt` can still truncate it. */
  assistantMessage: ConversationMessage | undefined;
  finished = false;
  readonly speculative: boolean;
  /** Set while a speculative turn waits for its confirmation. */
  private unconfirmed: Unconfirmed | undefined;
  /** A speculative turn's user message: in the model's history, not yet in the conversation. */
  private pendingUser: ConversationMessage | undefined;
  private discarded = false;

  constructor(
    readonly id: number,
    private readonly deps: TurnDeps,
  ) {
    // Every upstream request of the turn listens to this signal while it runs: a reply of many
    // sentences can have more in flight than Node's default 10 (a warning, not a leak past the turn).
    setMaxListeners(0, this.controller.signal);
    this.speculative = deps.speculative === true;
    if (this.speculative) {
      let resolve = () => {};
      const confirmed = new Promise<void>((r) => (resolve = r));
      this.unconfirmed = { deferred: [], confirmed, resolve };
    }
  }

  /**
   * The visitor's `commit` confirmed this speculative turn, `heldMs` after it started: what it
   * deferred happens now (its user and assistant messages join the conversation, a `done` it had
   * reached goes out), and a tool call it is waiting on runs.
   */
  confirm(heldMs: number): void {
    const pending = this.unconfirmed;
    if (!pending || this.discarded) return;
    this.unconfirmed = undefined;
    this.metrics.held_ms = heldMs;
    for (const change of pending.deferred) change();
    pending.resolve();
  }

  /** Drops an unconfirmed speculative turn: every request aborted, nothing sent, nothing stored. */
  discard(): void {
    if (!this.unconfirmed) return;
    this.discarded = true;
    this.unconfirmed.deferred = [];
    this.cancel();
  }

  /** Runs `change` now, or on confirmation for a speculative turn (never for a discarded one). */
  private afterConfirm(change: () => void): void {
    if (this.discarded) return;
    if (this.unconfirmed) this.unconfirmed.deferred.push(change);
    else change();
  }

  /** Settles when the turn is confirmed (at once when it is not speculative); rejects when it is aborted first. */
  private untilConfirmed(): Promise<void> | undefined {
    const pending = this.unconfirmed;
    if (!pending) return undefined;
    const signal = this.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      void pending.confirmed.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get segments(): readonly SpokenSegment[] {
    return this.speech?.segments ?? [];
  }

  /** The visitor cut the reply off after hearing `playedMs` of it. */
  interrupt(playedMs: number): void {
    if (this.finished) {
      this.truncateTo(playedMs);
      return;
    }
    this.interruptedAtMs ??= playedMs;
    this.controller.abort(new Error('interrupted'));
  }

  /** A provider request was refused by a quota: the session is closing, the turn ends silently. */
  private refuse(): never {
    this.cancel();
    throw new ChargeRefused();
  }

  /** Ends the turn without a trace for the client (session closing). */
  cancel(): void {
    this.silent = true;
    this.interruptedAtMs ??= Number.POSITIVE_INFINITY;
    this.controller.abort(new Error('cancelled'));
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  run(input: TurnInput): Promise<void> {
    // A suspended async function keeps its arguments: the audio travels in a copy of `input` that
    // is emptied once transcribed, so the utterance is not held for the rest of the reply.
    return this.execute({ ...input });
  }

  private async execute(input: TurnInput): Promise<void> {
    const { deps } = this;
    this.send({ type: 'status', state: 'thinking' });
    try {
      let userText: string | undefined;
      if (input.kind === 'audio') {
        this.metrics.audio_in_ms = Math.round(pcm16DurationMs(input.bytes, INPUT_SAMPLE_RATE));
        const started = performance.now();
        userText = await inStage('stt', () =>
          transcribe(
            deps.clients.stt,
            {
              frames: input.frames,
              model: deps.bot.sttModel ?? deps.providers.stt.model,
              ...(deps.bot.language ? { language: deps.bot.language } : {}),
            },
            this.signal,
          ),
        );
        input.frames = [];
        this.metrics.stt_ms = Math.round(performance.now() - started);
        if (this.unconfirmed && !this.discarded) deps.tentative?.(userText);
        this.send({ type: 'transcript', turn_id: this.id, text: userText, final: true });
        if (!userText) {
          this.send({
            type: 'error',
            code: 'empty_utterance',
            message: 'No speech was recognised in that utterance.',
            fatal: false,
            turn_id: this.id,
          });
          return;
        }
      } else if (input.kind === 'text') {
        userText = input.text;
      }
      if (userText !== undefined) this.rememberUser(userText);
      await this.reply(input.kind === 'say' ? input.text : undefined);
      this.finish();
    } catch (error) {
      if (this.interruptedAtMs !== undefined) {
        this.finish();
        return;
      }
      const failure =
        error instanceof StageError
          ? describeFailure(error)
          : { code: 'internal' as const, message: 'Something went wrong on the relay.' };
      deps.log.warn(
        {
          turn: this.id,
          code: failure.code,
          err: error instanceof StageError ? String(error.cause) : String(error),
        },
        'turn failed',
      );
      this.recordAssistant(this.replyText.trim(), false);
      this.observe(this.replyText.trim(), false, { error: failure.code });
      this.send({
        type: 'error',
        code: failure.code,
        message: failure.message,
        fatal: false,
        turn_id: this.id,
      });
    } finally {
      this.finished = true;
      // A shared reason: `abort()` without one builds a DOMException (and its stack) every turn.
      this.controller.abort(TURN_OVER);
      // Sent before `done`/`error` when there was one; a cancelled turn sends nothing more.
      clearTimeout(this.textTimer);
      this.textTimer = undefined;
    }
  }

  private async reply(scripted: string | undefined): Promise<void> {
    const { deps } = this;
    const speech =
      deps.output === 'audio'
        ? new SpeechPipeline(
            deps.clients.tts,
            {
              model: deps.bot.ttsModel ?? deps.providers.tts.model,
              voice: deps.bot.voice ?? deps.providers.tts.voice,
            },
            this.signal,
            { charge: (text) => deps.charge({ tts_chars: text.length }), room: deps.room },
          )
        : undefined;
    this.speech = speech;
    // The first chunk may be a clause: speech starts before the first sentence is complete.
    const chunker = new SentenceChunker({ firstClause: DEFAULT_FIRST_CLAUSE });
    const speak = (chunks: string[]) => {
      for (const chunk of chunks) {
        const spoken = stripMarkdown(chunk);
        if (!spoken) continue;
        this.metrics.first_sentence_ms ??= this.elapsed();
        speech?.enqueue(spoken);
      }
    };
    let spokeOnce = false;
    const playing = speech
      ? inStage('tts', () =>
          speech.run(
            (segment) =>
              this.send({
                type: 'audio_segment',
                turn_id: this.id,
                index: segment.index,
                text: segment.text,
              }),
            (pcm) => {
              if (!spokeOnce) {
                spokeOnce = true;
                this.metrics.first_audio_ms = this.elapsed();
                this.send({ type: 'status', state: 'speaking' });
              }
              this.audioBytesOut += pcm.byteLength;
              deps.sendAudio(pcm);
            },
          ),
        )
      : Promise.resolve();
    // Whichever stage fails first stops the other; only that first failure is reported.
    let firstFailure: unknown;
    const stopAll = (error: unknown) => {
      firstFailure ??= error;
      this.controller.abort(new Error('stage failed'));
    };
    playing.catch(stopAll);

    const producing = (async () => {
      try {
        if (scripted !== undefined) {
          this.emitText(scripted);
          speak(chunker.push(scripted));
        } else {
          await this.converse(chunker, speak);
        }
        speak(chunker.flush());
      } finally {
        speech?.end();
      }
    })();

    producing.catch(stopAll);
    await Promise.allSettled([producing, playing]);
    if (firstFailure !== undefined) throw firstFailure;
  }

  /**
   * Reply text for the client. The first piece goes out at once; later ones wait until
   * `textDeltaIntervalMs` has passed since the last `text_delta` (or until another JSON message of
   * the turn goes out), so a model streaming a token at a time costs one message per interval,
   * not one per token, on the socket and in the page. Audio frames do not wait for text, nor flush it.
   */
  private emitText(delta: string): void {
    this.replyText += delta;
    this.pendingText += delta;
    if (this.textTimer) return;
    const wait = this.deps.textDeltaIntervalMs - (performance.now() - this.lastTextAt);
    if (wait <= 0) this.flushText();
    // Whole ms: Node keeps a timer list per distinct delay, and a fractional one makes a new list every time.
    else this.textTimer = setTimeout(this.onTextTimer, Math.ceil(wait));
  }

  /** Outside the turn's try/catch: a failure here is logged, never thrown into the event loop. */
  private readonly onTextTimer = (): void => {
    try {
      this.flushText();
    } catch (error) {
      this.deps.log.warn({ turn: this.id, err: String(error) }, 'text_delta not sent');
    }
  };

  private flushText(): void {
    clearTimeout(this.textTimer);
    this.textTimer = undefined;
    if (!this.pendingText) return;
    const delta = this.pendingText;
    this.pendingText = '';
    this.lastTextAt = performance.now();
    this.deps.send({ type: 'text_delta', turn_id: this.id, delta });
  }

  /** Every JSON message of the turn leaves after the reply text produced before it. */
  private send(message: ServerMessage): void {
    this.flushText();
    this.deps.send(message);
  }

  /**
   * LLM rounds: stream text (spoken as it comes), and when the model calls tools, run them on the
   * relay and go again with their results — at most `maxToolRounds` times per turn.
   */
  private async converse(
    chunker: SentenceChunker,
    speak: (chunks: string[]) => void,
  ): Promise<void> {
    const { deps } = this;
    const exchange: ChatCompletionMessageParam[] = [];
    for (let round = 0; ; round++) {
      const tools = round < deps.maxToolRounds ? deps.tools.definitions(deps.page) : [];
      const offerTools = tools.length > 0;
      const request = this.chatRequest(exchange, tools);
      const estimate = estimatePromptTokens(request);
      // A turn interrupted before its request went out sends nothing, and is charged nothing.
      this.signal.throwIfAborted();
      if (!deps.charge({ prompt_tokens: estimate })) this.refuse();
      const llmStarted = performance.now();
      let roundText = '';
      let result: ChatRound | undefined;
      try {
        result = await inStage('llm', () =>
          streamChat(deps.clients.llm, request, this.signal, (text) => {
            this.metrics.llm_ttft_ms ??= Math.round(performance.now() - llmStarted);
            roundText += text;
            this.emitText(text);
            speak(chunker.push(text));
            return deps.room();
          }),
        );
      } finally {
        // The provider's usage replaces the estimate; without it (cut short, or not reported) the
        // estimate stands and the streamed text is counted.
        const usage = result?.usage;
        deps.count(
          usage
            ? {
                prompt_tokens: usage.promptTokens - estimate,
                completion_tokens: usage.completionTokens,
              }
            : { completion_tokens: estimateTokens(roundText) },
        );
      }
      if (result.usage) {
        this.metrics.prompt_tokens = (this.metrics.prompt_tokens ?? 0) + result.usage.promptTokens;
        this.metrics.completion_tokens =
          (this.metrics.completion_tokens ?? 0) + result.usage.completionTokens;
      }
      if (!offerTools || result.toolCalls.length === 0) return;
      // Say the preamble now, or a filler, so the visitor doesn't wait in silence.
      speak(chunker.flush());
      if (!roundText.trim() && deps.bot.toolFiller) speak([deps.bot.toolFiller]);
      // A tool may act on the world: a speculative turn runs none before the visitor confirms it.
      await this.untilConfirmed();
      const outcomes = await Promise.all(result.toolCalls.map((call) => this.runTool(call)));
      exchange.push({
        role: 'assistant',
        content: roundText || null,
        tool_calls: result.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      });
      result.toolCalls.forEach((call, i) =>
        exchange.push({ role: 'tool', tool_call_id: call.id, content: outcomes[i]?.content ?? '' }),
      );
      this.toolExchange = exchange;
      if (roundText && !/\s$/.test(roundText)) this.emitText(' ');
    }
  }

  private async runTool(call: ToolCall): Promise<ToolOutcome> {
    const { deps } = this;
    const isPublic = deps.tools.isPublic(call.name);
    this.send({ type: 'tool', turn_id: this.id, name: call.name, state: 'started' });
    const outcome = await deps.tools.run(call, {
      conversationId: deps.conversation.id,
      bot: deps.bot.id,
      metadata: metadataView(deps.conversation),
      setMetadata: (values) => setToolMetadata(deps.conversation, values),
      signal: this.signal,
      turnId: this.id,
      notify: (message) => this.send(message),
      user: deps.user,
      page: deps.page,
    });
    deps.log.info(
      {
        turn: this.id,
        tool: call.name,
        ok: outcome.ok,
        ...(outcome.ok ? {} : { reason: outcome.error }),
      },
      'tool call',
    );
    deps.observer?.toolCalled(this.id, call.name, outcome);
    this.send({
      type: 'tool',
      turn_id: this.id,
      name: call.name,
      state: outcome.ok ? 'done' : 'failed',
      ...(isPublic
        ? { args: outcome.args, ...(outcome.ok ? { result: outcome.result } : {}) }
        : {}),
    });
    return outcome;
  }

  private chatRequest(exchange: ChatCompletionMessageParam[], tools: ChatCompletionTool[]) {
    const { bot, conversation, maxHistoryMessages } = this.deps;
    const messages = this.pendingUser
      ? [...conversation.messages, this.pendingUser]
      : conversation.messages;
    const history: ChatCompletionMessageParam[] = messages
      .slice(-maxHistoryMessages)
      .flatMap((m): ChatCompletionMessageParam[] => {
        const toolPart = m.role === 'assistant' ? (m.toolExchange ?? []) : [];
        return m.text ? [...toolPart, { role: m.role, content: m.text }] : [];
      });
    return {
      model: bot.chatModel ?? this.deps.providers.llm.model,
      messages: [
        {
          role: 'system' as const,
          content: renderTemplate(bot.systemPrompt, templateData(conversation, this.deps.user)),
        },
        ...history,
        ...exchange,
      ],
      ...(tools.length > 0 ? { tools } : {}),
      ...(bot.temperature !== undefined ? { temperature: bot.temperature } : {}),
      ...(bot.maxTokens !== undefined ? { maxTokens: bot.maxTokens } : {}),
    };
  }

  /** What the visitor heard after `playedMs` of playback (Infinity: everything that was sent). */
  private heard(playedMs: number): string {
    if (this.deps.output === 'text') return this.replyText.trim();
    if (!Number.isFinite(playedMs))
      return this.segments
        .filter((s) => s.bytes > 0)
        .map((s) => s.text)
        .join(' ');
    return heardText(this.segments, playedMs, this.deps.outputSampleRate);
  }

  /** The visitor's words join the conversation (a speculative turn's once it is confirmed). */
  private rememberUser(text: string): void {
    if (this.unconfirmed) this.pendingUser = { role: 'user', text, turnId: this.id };
    this.afterConfirm(() => {
      this.pendingUser = undefined;
      this.userMessage = rememberUserText(this.deps.conversation, text, this.id);
    });
  }

  private recordAssistant(text: string, interrupted: boolean): void {
    if (!text) return;
    const message: ConversationMessage = {
      role: 'assistant',
      text,
      turnId: this.id,
      ...(interrupted ? { interrupted: true } : {}),
      ...(this.toolExchange ? { toolExchange: this.toolExchange } : {}),
    };
    this.afterConfirm(() => {
      this.assistantMessage = message;
      remember(this.deps.conversation, message);
    });
  }

  /** A late interrupt: the reply was fully sent, but the visitor stopped it while it was still playing. */
  private truncateTo(playedMs: number): void {
    const message = this.assistantMessage;
    if (!message || message.interrupted) return;
    const heard = this.heard(playedMs);
    if (heard.length >= message.text.length) return;
    message.text = heard;
    message.interrupted = true;
  }

  private finish(): void {
    const interrupted = this.interruptedAtMs !== undefined;
    const text = interrupted ? this.heard(this.interruptedAtMs ?? 0) : this.replyText.trim();
    this.recordAssistant(text, interrupted);
    this.finished = true;
    if (this.silent) {
      this.observe(text, interrupted);
      return;
    }
    const metrics: TurnMetrics = {
      ...this.metrics,
      total_ms: this.elapsed(),
      speculative: this.speculative,
    };
    if (this.speech?.firstRequestAt !== undefined && this.speech.firstByteAt !== undefined) {
      metrics.tts_ttfb_ms = Math.round(this.speech.firstByteAt - this.speech.firstRequestAt);
    }
    if (this.audioBytesOut > 0)
      metrics.audio_out_ms = Math.round(
        pcm16DurationMs(this.audioBytesOut, this.deps.outputSampleRate),
      );
    // A speculative turn that got here before its commit ends when it is confirmed.
    this.afterConfirm(() => {
      if (this.metrics.held_ms !== undefined) metrics.held_ms = this.metrics.held_ms;
      this.send({ type: 'done', turn_id: this.id, text, interrupted, metrics });
    });
    this.observe(text, interrupted, { metrics });
  }

  /** Reports the ended turn to the conversation's record (a speculative one once it is confirmed). */
  private observe(
    assistant: string,
    interrupted: boolean,
    extra: { metrics?: TurnMetrics; error?: ErrorCode } = {},
  ): void {
    const observer = this.deps.observer;
    if (!observer) return;
    this.afterConfirm(() =>
      observer.turnEnded({
        turnId: this.id,
        user: this.userMessage?.text,
        assistant: assistant || undefined,
        interrupted,
        ...extra,
      }),
    );
  }
}

/** Keeps a message, dropping the oldest beyond {@link MAX_STORED_MESSAGES}. */
function remember(conversation: Conversation, message: ConversationMessage): void {
  conversation.messages.push(message);
  const excess = conversation.messages.length - MAX_STORED_MESSAGES;
  if (excess > 0) conversation.messages.splice(0, excess);
}

/**
 * The visitor's words join the conversation. Questions that got no answer at all (the visitor
 * spoke again before the reply started, or the provider failed) stay as they were said, but only
 * the last {@link MAX_UNANSWERED} of such a run are kept, so rapid-fire input cannot grow the history.
 */
export function rememberUserText(
  conversation: Conversation,
  text: string,
  turnId: number,
): ConversationMessage {
  const { messages } = conversation;
  let run = 0;
  while (run < messages.length && messages[messages.length - 1 - run]?.role === 'user') run++;
  if (run >= MAX_UNANSWERED) messages.splice(messages.length - run, run - MAX_UNANSWERED + 1);
  const message: ConversationMessage = { role: 'user', text, turnId };
  remember(conversation, message);
  return message;
}
