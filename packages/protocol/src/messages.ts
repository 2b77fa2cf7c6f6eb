import * as v from 'valibot';
import type { ErrorCodeOrUnknown } from './errors.js';

/** Semver of the wire protocol. Peers must share the major version. */
export const PROTOCOL_VERSION = '1.2.0';
/** WebSocket subprotocol the relay selects; the session token travels as `bearer.<token>` beside it. */
export const SUBPROTOCOL = 'voicebot.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'bearer.';
/**
 * Every HTTP error response carries its `error.code` in this header too: a refused WebSocket
 * upgrade has no body (the WebSocket server answers with the status and headers only).
 */
export const ERROR_HEADER = 'X-Voicebot-Error';
/** Client → relay audio: PCM16LE mono at this rate, in binary frames. */
export const INPUT_SAMPLE_RATE = 16_000;
/** Relay → client audio default (OpenAI `response_format: "pcm"`). The relay announces the real rate in `ready`. */
export const DEFAULT_OUTPUT_SAMPLE_RATE = 24_000;

const TurnId = v.pipe(v.number(), v.integer(), v.minValue(0));
const Modality = v.picklist(['audio', 'text']);
const Metadata = v.record(v.string(), v.union([v.string(), v.number(), v.boolean()]));
/** Most page-side tools one page may announce. */
export const MAX_CLIENT_TOOLS = 32;
const ClientToolName = v.pipe(v.string(), v.regex(/^[a-zA-Z0-9_-]{1,64}$/, 'invalid tool name'));
const ClientToolNames = v.pipe(v.array(ClientToolName), v.maxLength(MAX_CLIENT_TOOLS));
const CallId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
/** Largest `tool_result.result` the relay hands to the model (bytes of its JSON). */
export const MAX_TOOL_RESULT_BYTES = 8 * 1024;

// ---- client → relay ----------------------------------------------------------------------

export const StartSchema = v.object({
  type: v.literal('start'),
  protocol_version: v.string(),
  conversation_id: v.optional(v.pipe(v.string(), v.maxLength(128))),
  input: v.optional(Modality, 'audio'),
  output: v.optional(Modality, 'audio'),
  metadata: v.optional(Metadata),
  /** Page-side tools the page has registered (protocol ≥ 1.2; names, see {@link ClientToolsSchema}). */
  client_tools: v.optional(ClientToolNames),
});
export const CommitSchema = v.object({ type: v.literal('commit') });
export const TextSchema = v.object({
  type: v.literal('text'),
  text: v.string(),
  /** `speech` when the page transcribed the visitor's voice itself (in-browser STT). */
  source: v.optional(v.picklist(['typed', 'speech']), 'typed'),
});
export const InterruptSchema = v.object({
  type: v.literal('interrupt'),
  turn_id: TurnId,
  played_ms: v.pipe(v.number(), v.minValue(0)),
});
export const StopSchema = v.object({ type: v.literal('stop') });
/**
 * The visitor went quiet during an utterance: a tentative end of turn. Only for a relay that lists
 * {@link FEATURE_SPECULATION} in `ready.features` (an older relay answers `unknown_type`).
 */
export const PauseSchema = v.object({
  type: v.literal('pause'),
  /**
   * The client's number for this pause, echoed in the `tentative_transcript` it leads to
   * (protocol ≥ 1.2; an older relay ignores it).
   */
  pause_id: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
});
/** Speech resumed after a `pause`: the speculative turn it started is dropped. */
export const ResumeSchema = v.object({ type: v.literal('resume') });
export const PingSchema = v.object({ type: v.literal('ping'), t: v.optional(v.number()) });
/** Longest `feedback.comment`, in characters. */
export const MAX_FEEDBACK_COMMENT_CHARS = 500;
/**
 * The visitor rated a reply. Only for a relay that lists {@link FEATURE_FEEDBACK} in
 * `ready.features`; stored with the conversation's record.
 */
export const FeedbackSchema = v.object({
  type: v.literal('feedback'),
  turn_id: TurnId,
  rating: v.picklist(['up', 'down']),
  comment: v.optional(v.pipe(v.string(), v.maxLength(MAX_FEEDBACK_COMMENT_CHARS))),
});

/** The page-side tools the page has now (replaces the set sent in `start.client_tools`). */
export const ClientToolsSchema = v.object({
  type: v.literal('client_tools'),
  names: ClientToolNames,
});
/** The page's answer to a `tool_call`: a JSON result, or an error message for the model. */
export const ToolResultSchema = v.object({
  type: v.literal('tool_result'),
  call_id: CallId,
  ok: v.boolean(),
  result: v.optional(v.unknown()),
  error: v.optional(v.pipe(v.string(), v.maxLength(500))),
});

export const ClientMessageSchema = v.variant('type', [
  StartSchema,
  CommitSchema,
  TextSchema,
  InterruptSchema,
  StopSchema,
  PingSchema,
  PauseSchema,
  ResumeSchema,
  FeedbackSchema,
  ClientToolsSchema,
  ToolResultSchema,
]);

export type StartMessage = v.InferOutput<typeof StartSchema>;
export type StartMessageInput = v.InferInput<typeof StartSchema>;
export type CommitMessage = v.InferOutput<typeof CommitSchema>;
export type TextMessage = v.InferOutput<typeof TextSchema>;
export type TextMessageInput = v.InferInput<typeof TextSchema>;
export type InterruptMessage = v.InferOutput<typeof InterruptSchema>;
export type StopMessage = v.InferOutput<typeof StopSchema>;
export type PingMessage = v.InferOutput<typeof PingSchema>;
export type PauseMessage = v.InferOutput<typeof PauseSchema>;
export type ResumeMessage = v.InferOutput<typeof ResumeSchema>;
export type FeedbackMessage = v.InferOutput<typeof FeedbackSchema>;
export type ClientToolsMessage = v.InferOutput<typeof ClientToolsSchema>;
export type ToolResultMessage = v.InferOutput<typeof ToolResultSchema>;
export type ClientMessage = v.InferOutput<typeof ClientMessageSchema>;
/** What a client may write (defaults not yet applied). */
export type ClientMessageInput = v.InferInput<typeof ClientMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = [
  'start',
  'commit',
  'text',
  'interrupt',
  'stop',
  'ping',
  'pause',
  'resume',
  'feedback',
  'client_tools',
  'tool_result',
];

/** `ready.features` entry: the relay acts on `pause`/`resume` in this session (protocol ≥ 1.1.0). */
export const FEATURE_SPECULATION = 'speculation';
/** `ready.features` entry: the relay stores `feedback` on replies in this session. */
export const FEATURE_FEEDBACK = 'feedback';
/** `ready.features` entry: the bot may hand the conversation to a person (`handoff` messages; protocol ≥ 1.2.0). */
export const FEATURE_HANDOFF = 'handoff';
/** `ready.features` entry: the bot may call page-side tools (`tool_call` messages; protocol ≥ 1.2.0). */
export const FEATURE_CLIENT_TOOLS = 'client_tools';

// ---- relay → client ----------------------------------------------------------------------

export const SESSION_STATES = ['listening', 'thinking', 'speaking'] as const;
export type SessionState = (typeof SESSION_STATES)[number];
export const TOOL_STATES = ['started', 'done', 'failed'] as const;
export type ToolState = (typeof TOOL_STATES)[number];
export const HANDOFF_URGENCIES = ['low', 'normal', 'high'] as const;
export type HandoffUrgency = (typeof HANDOFF_URGENCIES)[number];

export const HistoryMessageSchema = v.object({
  role: v.picklist(['user', 'assistant']),
  text: v.string(),
  interrupted: v.optional(v.boolean()),
});
export type HistoryMessage = v.InferOutput<typeof HistoryMessageSchema>;

/**
 * Per-turn timings in milliseconds, measured on the relay. `stt_ms`, `llm_ttft_ms` and `tts_ttfb_ms`
 * are durations of their own stage; `first_sentence_ms`, `first_audio_ms` and `total_ms` count from
 * the moment the turn started (commit or text received).
 */
export const TurnMetricsSchema = v.object({
  stt_ms: v.optional(v.number()),
  llm_ttft_ms: v.optional(v.number()),
  first_sentence_ms: v.optional(v.number()),
  tts_ttfb_ms: v.optional(v.number()),
  first_audio_ms: v.optional(v.number()),
  total_ms: v.number(),
  audio_in_ms: v.optional(v.number()),
  audio_out_ms: v.optional(v.number()),
  prompt_tokens: v.optional(v.number()),
  completion_tokens: v.optional(v.number()),
  /** The turn started speculatively at a `pause` and was confirmed by `commit` (relays ≥ 1.1.0 send it). */
  speculative: v.optional(v.boolean()),
  /** A speculative turn: ms from its `pause` to the `commit` that confirmed it (its output was held meanwhile). */
  held_ms: v.optional(v.number()),
});
export type TurnMetrics = v.InferOutput<typeof TurnMetricsSchema>;

export const ServerMessageSchema = v.variant('type', [
  v.object({
    type: v.literal('ready'),
    session_id: v.string(),
    conversation_id: v.string(),
    protocol_version: v.string(),
    input_sample_rate: v.number(),
    output_sample_rate: v.number(),
    resumed: v.boolean(),
    history: v.array(HistoryMessageSchema),
    /** Optional behaviours this relay offers in this session, e.g. {@link FEATURE_SPECULATION}. */
    features: v.optional(v.array(v.string())),
    /** Hosts (`example.com`, `*.example.com`) the page may link to in replies, besides its own (protocol ≥ 1.2.0). */
    link_hosts: v.optional(v.array(v.string())),
  }),
  v.object({ type: v.literal('status'), state: v.picklist(SESSION_STATES) }),
  v.object({
    type: v.literal('transcript'),
    turn_id: TurnId,
    text: v.string(),
    final: v.boolean(),
  }),
  /** The transcript of the speculative turn started by a `pause` (not a turn yet: no turn id). */
  v.object({
    type: v.literal('tentative_transcript'),
    text: v.string(),
    /** The `pause_id` of the `pause` that started it, when that `pause` had one (protocol ≥ 1.2). */
    pause_id: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
  }),
  v.object({ type: v.literal('text_delta'), turn_id: TurnId, delta: v.string() }),
  v.object({
    type: v.literal('audio_segment'),
    turn_id: TurnId,
    index: v.pipe(v.number(), v.integer()),
    text: v.string(),
  }),
  v.object({
    type: v.literal('tool'),
    turn_id: TurnId,
    name: v.string(),
    state: v.picklist(TOOL_STATES),
    /** Only for tools the bot config marks public. */
    args: v.optional(v.unknown()),
    result: v.optional(v.unknown()),
  }),
  v.object({
    type: v.literal('done'),
    turn_id: TurnId,
    text: v.string(),
    interrupted: v.boolean(),
    metrics: TurnMetricsSchema,
  }),
  v.object({
    type: v.literal('error'),
    code: v.custom<ErrorCodeOrUnknown>(
      (value) => typeof value === 'string',
      'code must be a string',
    ),
    message: v.string(),
    fatal: v.boolean(),
    turn_id: v.optional(TurnId),
  }),
  v.object({ type: v.literal('pong'), t: v.optional(v.number()) }),
  /** The bot handed the conversation to a person (its `handoff` tool): how the visitor reaches them. */
  v.object({
    type: v.literal('handoff'),
    turn_id: TurnId,
    reason: v.string(),
    urgency: v.picklist(HANDOFF_URGENCIES),
    /** A short summary of the conversation, for the person who takes over. */
    summary: v.string(),
    targets: v.object({
      phone: v.optional(v.string()),
      email: v.optional(v.string()),
      chat_url: v.optional(v.string()),
    }),
    /** What happens next, in the site owner's words. */
    message: v.optional(v.string()),
  }),
  /** The model called a page-side tool: the page runs it and answers `tool_result` with `call_id`. */
  v.object({
    type: v.literal('tool_call'),
    turn_id: TurnId,
    call_id: CallId,
    name: v.string(),
    args: v.unknown(),
  }),
  /** A `tool_call` is no longer awaited (interrupt, timeout, end of the turn): stop its work. */
  v.object({ type: v.literal('tool_cancel'), call_id: CallId }),
]);

export type ServerMessage = v.InferOutput<typeof ServerMessageSchema>;
export type ServerMessageType = ServerMessage['type'];
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;
export type ReadyMessage = ServerMessageOf<'ready'>;
export type DoneMessage = ServerMessageOf<'done'>;
export type ErrorMessage = ServerMessageOf<'error'>;
export type HandoffMessage = ServerMessageOf<'handoff'>;
export type ToolCallMessage = ServerMessageOf<'tool_call'>;
