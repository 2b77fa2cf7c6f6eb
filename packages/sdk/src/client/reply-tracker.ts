/**
 * Reply tracking: the bot's turns on the current socket, from the relay's messages and the
 * speaker's reports to the replies announced as said. A reply the relay has finished but the
 * speaker is still playing is announced once it has been heard (or cut short, with the words that
 * were heard). Turn ids belong to one socket (the relay numbers each socket's turns from 1), so
 * `reset()` starts afresh for every new socket. No DOM: unit-tested in Node.
 */
import {
  DEFAULT_OUTPUT_SAMPLE_RATE,
  heardText,
  type PlayedSegment,
  type TurnMetrics,
} from '../protocol/index.js';
import type { ReplyStatus } from './status.js';

export interface ClientMetrics extends TurnMetrics {
  turnId: number;
  /** End of the visitor's turn (the commit) → first reply audio played, measured in the page. */
  end_of_speech_to_first_audio_ms?: number;
  /**
   * Silence the client waited after the visitor's last speech before it ended the turn (spoken
   * turns): last speech → first reply audio is this plus `end_of_speech_to_first_audio_ms`.
   */
  end_of_turn_silence_ms?: number;
  /** Times the reply's audio ran out before its end while playing (audible gaps). */
  underruns?: number;
  /** The playback jitter buffer's target after this reply (ms; 0: no jitter buffer). */
  jitter_buffer_ms?: number;
}

/** How a reply's playback went, from the speaker. */
export interface PlaybackFigures {
  underruns?: number;
  targetMs?: number;
}

export interface ReplyTrackerHandlers {
  /** A reply counts as said; `text` is what was heard (cut short when `interrupted`). */
  announce(turnId: number, text: string, interrupted: boolean, metrics: ClientMetrics): void;
}

/** A turn being interrupted: valid while its socket is the current one. */
export interface InterruptTicket {
  readonly turnId: number;
  readonly socket: number;
}

export class ReplyTracker {
  /** Whether a reply is owed to the visitor's last turn (the stored half of `status`). */
  private owed = false;
  /** Counts sockets: an interruption that started on an earlier one must not touch this one's turns. */
  private socket = 0;
  private replyTurnId: number | undefined;
  private audioTurnId: number | undefined;
  private replyText = '';
  private readonly interruptedTurns = new Set<number>();
  private readonly doneTurns = new Set<number>();
  private playingTurnId: number | undefined;
  private readonly firstPlayedAt = new Map<number, number>();
  /** Replies the relay has finished but the speaker is still playing: announced when heard. */
  private readonly pendingReplies = new Map<number, { text: string; metrics: ClientMetrics }>();
  /** Audio segments of the turn being played, to work out what was heard when interrupted. */
  private segments: PlayedSegment[] = [];
  /** When the visitor's last turn ended (spoken or typed), for `end_of_speech_to_first_audio_ms`. */
  private turnEndedAt: number | undefined;
  /** The silence waited before that (spoken turns). */
  private turnSilenceMs: number | undefined;
  /** Playback figures of turns whose playback ended, until they are announced. */
  private readonly playbackFigures = new Map<number, PlaybackFigures>();
  /** The relay's playback rate (from `ready`). */
  outputSampleRate = DEFAULT_OUTPUT_SAMPLE_RATE;

  constructor(
    private readonly handlers: ReplyTrackerHandlers,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get status(): ReplyStatus {
    if (this.owed) return 'awaiting';
    return this.playingTurnId === undefined ? 'idle' : 'playing';
  }

  /** The turn whose audio is coming out of the speaker. */
  get playing(): number | undefined {
    return this.playingTurnId;
  }

  /**
   * The visitor's turn is committed: a reply is owed. `endedAt`: when the visitor finished (for the
   * latency metric); `silenceMs`: the silence waited after their last speech before that.
   */
  awaitReply(endedAt?: number, silenceMs?: number): void {
    this.owed = true;
    if (endedAt !== undefined) {
      this.turnEndedAt = endedAt;
      this.turnSilenceMs = silenceMs;
    }
  }

  /** No reply will come for the visitor's last turn (nothing was said, or it could not be sent). */
  cancel(): void {
    this.owed = false;
  }

  /**
   * The socket dropped: a reply still owed is lost. Returns it (with the turn id, when the relay had
   * named it), or undefined when nothing was owed.
   */
  abandon(): { turnId: number | undefined } | undefined {
    if (!this.owed) return undefined;
    this.owed = false;
    return { turnId: this.replyTurnId };
  }

  /** The relay's `transcript` of turn `turnId`. */
  transcript(turnId: number): void {
    this.noteTurn(turnId);
  }

  /** A `text_delta`: the reply's text so far, or undefined when the turn was interrupted (drop it). */
  delta(turnId: number, delta: string): string | undefined {
    if (this.interruptedTurns.has(turnId)) return undefined;
    this.noteTurn(turnId);
    this.replyText += delta;
    return this.replyText;
  }

  /** An `audio_segment`: the text of the audio that follows. */
  segment(turnId: number, text: string): void {
    this.noteTurn(turnId);
    if (this.audioTurnId !== turnId) this.segments = [];
    this.audioTurnId = turnId;
    for (const segment of this.segments) segment.complete = true;
    this.segments.push({ text, bytes: 0, complete: false });
  }

  /** Reply audio arrived: the turn to play it as, or undefined to drop it (interrupted, or no turn). */
  audio(bytes: number): number | undefined {
    const turnId = this.audioTurnId ?? this.replyTurnId;
    if (turnId === undefined || this.interruptedTurns.has(turnId)) return undefined;
    const segment = this.segments.at(-1);
    if (segment) segment.bytes += bytes;
    this.playingTurnId = turnId;
    return turnId;
  }

  /** The speaker's report: `playedMs` of turn `turnId` have been heard. */
  played(turnId: number, playedMs: number): void {
    if (!this.firstPlayedAt.has(turnId)) this.firstPlayedAt.set(turnId, this.now() - playedMs);
  }

  /**
   * The speaker ran out of audio of `turnId`. True when that ends the turn's playback (the relay
   * had finished it): a reply waiting to be heard is announced.
   */
  drained(turnId: number, figures?: PlaybackFigures): boolean {
    if (turnId !== this.playingTurnId) return false;
    if (figures) this.playbackFigures.set(turnId, figures);
    // More audio of this turn may still be on its way: only a finished turn is over.
    if (!this.doneTurns.has(turnId)) return false;
    this.playingTurnId = undefined;
    this.announcePending(turnId);
    return true;
  }

  /**
   * The relay's `done`. True when the reply was announced now; false when it is still playing and
   * will be once heard.
   */
  done(turnId: number, text: string, interrupted: boolean, metrics: TurnMetrics): boolean {
    this.doneTurns.add(turnId);
    if (turnId === this.replyTurnId) this.owed = false;
    if (turnId === this.audioTurnId) for (const segment of this.segments) segment.complete = true;
    const clientMetrics: ClientMetrics = { ...metrics, turnId };
    const wasInterrupted = interrupted || this.interruptedTurns.has(turnId);
    if (this.playingTurnId === turnId && !wasInterrupted) {
      // Still playing: the reply counts as said once it has been heard (or cut short).
      this.pendingReplies.set(turnId, { text, metrics: clientMetrics });
      return false;
    }
    this.announce(turnId, text, wasInterrupted, clientMetrics);
    return true;
  }

  /** The relay's `error` for turn `turnId`: the turn is over. */
  failed(turnId: number): void {
    this.doneTurns.add(turnId);
    if (turnId === this.replyTurnId || this.replyTurnId === undefined) this.owed = false;
  }

  /**
   * Starts interrupting the reply being played (else the latest one): undefined when there is none
   * or it is already interrupted. Its text and audio are dropped from now on.
   */
  startInterrupt(): InterruptTicket | undefined {
    const turnId = this.playingTurnId ?? this.replyTurnId;
    if (turnId === undefined || this.interruptedTurns.has(turnId)) return undefined;
    this.interruptedTurns.add(turnId);
    return { turnId, socket: this.socket };
  }

  /** Whether the ticket's socket is still the current one (else its turn id names another turn now). */
  isCurrent(ticket: InterruptTicket): boolean {
    return ticket.socket === this.socket;
  }

  /**
   * The speaker stopped after `playedMs` of the interrupted turn (`Number.MAX_SAFE_INTEGER`
   * without audio): nothing is owed any more, and a reply the relay had finished is announced as
   * heard, cut short.
   */
  finishInterrupt(ticket: InterruptTicket, playedMs: number, figures?: PlaybackFigures): void {
    const { turnId } = ticket;
    if (figures) this.playbackFigures.set(turnId, figures);
    this.playingTurnId = undefined;
    this.owed = false;
    const reply = this.pendingReplies.get(turnId);
    if (!reply) return;
    // The relay already finished this turn; it truncates its copy the same way.
    this.pendingReplies.delete(turnId);
    const heard =
      turnId === this.audioTurnId
        ? heardText(this.segments, playedMs, this.outputSampleRate)
        : reply.text;
    this.announce(turnId, heard, true, reply.metrics);
  }

  /** The session ends: nothing is owed or playing; replies still playing count as said (the relay keeps them whole). */
  stop(): void {
    this.owed = false;
    this.playingTurnId = undefined;
    for (const turnId of [...this.pendingReplies.keys()]) this.announcePending(turnId);
  }

  /**
   * A new socket starts (first connect, reconnect, `start()` after `stop()`…): its turn ids start
   * at 1 again and mean other turns than the same ids on the earlier socket. Replies the earlier
   * socket had finished count as said, as in `stop()`; everything else is forgotten.
   */
  reset(): void {
    this.stop();
    this.socket++;
    this.interruptedTurns.clear();
    this.doneTurns.clear();
    this.firstPlayedAt.clear();
    this.playbackFigures.clear();
    this.replyTurnId = undefined;
    this.audioTurnId = undefined;
    this.replyText = '';
    this.segments = [];
  }

  private noteTurn(turnId: number): void {
    if (turnId !== this.replyTurnId) {
      this.replyTurnId = turnId;
      this.replyText = '';
    }
  }

  private announcePending(turnId: number): void {
    const reply = this.pendingReplies.get(turnId);
    if (!reply) return;
    this.pendingReplies.delete(turnId);
    this.announce(turnId, reply.text, false, reply.metrics);
  }

  private announce(
    turnId: number,
    text: string,
    interrupted: boolean,
    metrics: ClientMetrics,
  ): void {
    const firstPlayed = this.firstPlayedAt.get(turnId);
    if (
      firstPlayed !== undefined &&
      this.turnEndedAt !== undefined &&
      firstPlayed > this.turnEndedAt
    ) {
      metrics.end_of_speech_to_first_audio_ms = Math.round(firstPlayed - this.turnEndedAt);
      if (this.turnSilenceMs !== undefined)
        metrics.end_of_turn_silence_ms = Math.round(this.turnSilenceMs);
    }
    const figures = this.playbackFigures.get(turnId);
    if (figures) {
      metrics.underruns = figures.underruns;
      metrics.jitter_buffer_ms = figures.targetMs;
    }
    this.firstPlayedAt.delete(turnId);
    this.playbackFigures.delete(turnId);
    this.handlers.announce(turnId, text, interrupted, metrics);
  }
}
