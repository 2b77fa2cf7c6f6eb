/** The client's options and events (the public surface of `VoiceBotClient`). */
import type { EchoGateOptions } from '../audio/echo-gate.js';
import type { MicOptions } from '../audio/engine.js';
import type { VoiceBotError } from '../errors.js';
import type { ConversationPersistence } from '../persistence.js';
import type { HandoffUrgency, HistoryMessage, ToolState } from '../protocol/index.js';
import type { SttProgress, WhisperOptions } from '../stt.js';
import type { ReconnectOptions, TransportFactory } from '../transport.js';
import type { VadSettings } from '../vad.js';
import type { EndOfTurnPolicy } from './end-of-turn.js';
import type { AudioDevices } from './devices.js';
import type { ClientMetrics } from './reply-tracker.js';
import type { VoiceBotState } from './status.js';

export type { ClientTool } from './page-tools.js';

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
  /**
   * Speculative turns (default true): with a relay that offers them and the relay's STT, a short
   * silence (`endOfTurn.pauseMs`) starts the reply on the relay while the client decides from the
   * words so far whether the visitor has finished; the reply comes out only once they have.
   * `false`: the turn ends after `vad.redemptionMs` of silence, as with older relays.
   */
  speculation?: boolean;
  /** When the visitor's turn ends (with speculative turns). */
  endOfTurn?: EndOfTurnOptions;
  /** The reply's playback buffer (`false`: play each chunk as it arrives, no buffer). */
  jitterBuffer?: JitterBufferOptions | false;
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
  /**
   * While the tab is hidden, pause the microphone and stop a reply playing (default true); listening
   * resumes when it is shown again. Mobile browsers suspend a hidden page's audio anyway.
   */
  pauseWhenHidden?: boolean;
  /** Keep the conversation across page loads in IndexedDB (default true). */
  persistence?: boolean | ConversationPersistence;
  reconnect?: ReconnectOptions;
  /** How long the session request and the WebSocket handshake may each take before the attempt fails (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Non-secret context for the bot (page URL, a signed-in visitor's first name…). Untrusted: the page sets it. */
  metadata?: Record<string, string | number | boolean>;
  /**
   * A signed-in visitor: the visitor token your server signed with the key's visitor secret (README
   * "Signed-in visitors"), or a function returning a fresh one (called before every session
   * request, reconnects included: tokens live at most 10 minutes).
   */
  visitorToken?: string | (() => string | undefined | Promise<string | undefined>);
  /**
   * Who turns speech into text. `relay` (default): audio goes to the relay. `browser`: Whisper
   * runs in the page (a Web Worker) and only text leaves the device.
   */
  stt?: 'relay' | 'browser';
  /** In-browser Whisper settings (`stt: 'browser'`). */
  whisper?: WhisperOptions;
  /**
   * Who speaks the replies (with `output: 'audio'`). `relay` (default): the relay's TTS, played by
   * the SDK. `browser`: the browser's `speechSynthesis` speaks each completed sentence; the session's
   * output is text, so the relay sends (and bills) no audio.
   */
  tts?: 'relay' | 'browser';
  /** Browser speech synthesis settings (`tts: 'browser'`). */
  speechSynthesis?: SpeechSynthesisSettings;
  /**
   * Makes the relay connection from the client's settings (default: `new RelayTransport(options)`).
   * Wrap or replace it for a custom path to the relay, or in tests (`@voice-bot/sdk/testing`).
   */
  transport?: TransportFactory;
}

export interface EndOfTurnOptions {
  /** Silence inside speech that starts a speculative turn (default 128 ms: four Silero frames). */
  pauseMs?: number;
  /** Shortest silence that ends a turn, whatever the policy says (default 300 ms). */
  minSilenceMs?: number;
  /**
   * Longest silence before the turn ends (default `vad.redemptionMs`, else 1200 ms): the detector's
   * own end of speech when speculative turns are on.
   */
  maxSilenceMs?: number;
  /**
   * Decides the silence from the tentative transcript (default: `rulesEndOfTurnPolicy()`: 350 ms
   * after a complete sentence, 1200 ms after a trailing "and", "um" or comma, 700 ms otherwise).
   */
  policy?: EndOfTurnPolicy;
  /**
   * Language of the conversation for the policy's word lists (BCP 47). Default: `whisper.language`,
   * `speechSynthesis.lang`, the page's `<html lang>`, the browser's language.
   */
  language?: string;
}

/**
 * Playback starts once a reply has been streaming for `targetMs` (or is complete, or is ahead:
 * the target plus its largest chunk is buffered), so that audio arriving a little late does not
 * leave a gap. After a gap the target grows (up to `maxMs`); while
 * the stream stays ahead it shrinks slowly (down to `minMs`).
 */
export interface JitterBufferOptions {
  /** Initial target (default 50 ms). */
  targetMs?: number;
  /** Default 50 ms. */
  minMs?: number;
  /** Default 400 ms. */
  maxMs?: number;
}

export interface SpeechSynthesisSettings {
  /** BCP 47 language of the voice (`es-ES`); default: the browser's choice (the page's language). */
  lang?: string;
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

/** The bot handed the conversation to a person (the relay's `handoff` tool). */
export interface HandoffEvent {
  turnId: number;
  /** Why, in the model's words (e.g. "asked for a person"). */
  reason: string;
  urgency: HandoffUrgency;
  /** A short summary of the conversation, e.g. to open your own live chat with. */
  summary: string;
  /** How the visitor can reach a person, as the bot's config lists them. */
  targets: { phone?: string; email?: string; chatUrl?: string };
  /** What happens next, in the site owner's words. */
  message?: string;
}

export interface VoiceBotEvents {
  state: VoiceBotState;
  ready: {
    conversationId: string;
    resumed: boolean;
    history: HistoryMessage[];
    /** What the relay offers in this session (`ready.features`), e.g. `handoff`, `feedback`. */
    features: string[];
    /** Hosts replies may link to besides the page's own (`ready.link_hosts`). */
    linkHosts: string[];
  };
  /** What the visitor said (from the relay's STT) or typed. */
  transcript: { turnId: number; text: string; final: boolean };
  'text-delta': { turnId: number; delta: string; text: string };
  /** The assistant's reply is complete (`interrupted`: cut short; `text` is what was heard). */
  message: { turnId: number; text: string; interrupted: boolean };
  /** A tool the bot runs on the relay; `args` and `result` only for tools the relay marks public. */
  tool: ToolEvent;
  /** The bot handed the conversation to a person: show the ways to reach them, or open your own live chat. */
  handoff: HandoffEvent;
  /** Microphone and playback levels, 0..1, for a visualiser (every 20 ms frame). */
  level: { input: number; output: number };
  /**
   * The microphone's level (RMS, 0..1; dBFS = 20·log10), at most 20 times a second, only computed
   * while someone listens. For meters and avatars.
   */
  'input-level': number;
  /** The replies' playback level (RMS, 0..1), at most 20 times a second; 0 when a reply ends. */
  'output-level': number;
  /**
   * `true`: the tab was hidden during a voice session, so the microphone is paused and a reply
   * playing was stopped (the relay keeps what was heard); `false`: shown again, listening resumed.
   */
  paused: boolean;
  /** The audio devices changed during a voice session (a headset plugged in or out). */
  devices: AudioDevices;
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
