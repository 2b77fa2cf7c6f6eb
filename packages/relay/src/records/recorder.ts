/**
 * What a session records of its conversation: each ended turn (text, tool calls, `done.metrics`),
 * the visitor's feedback, and when the socket closed. Writes leave the turn at once and go to the
 * database in order, one session's after another; the texts are redacted before they are stored.
 */
import type { TurnMetrics } from '@voice-bot/protocol';
import type { RecordsConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { ToolOutcome } from '../tools/runner.js';
import { redactText, redactValue } from './redact.js';
import type { HandoffDetail, RecordStore, RecordedTool } from './store.js';

/** What a turn reports as it runs (turn.ts). */
export interface TurnObserver {
  toolCalled(turnId: number, name: string, outcome: ToolOutcome): void;
  turnEnded(turn: EndedTurn): void;
}

export interface EndedTurn {
  turnId: number;
  user?: string | undefined;
  assistant?: string | undefined;
  interrupted: boolean;
  /** The error code of a failed turn. */
  error?: string | undefined;
  metrics?: TurnMetrics | undefined;
}

/** What a session holds while it records (session.ts). */
export interface SessionRecorder extends TurnObserver {
  /** The bot takes `feedback` (it is in `ready.features`). */
  readonly feedback: boolean;
  /** Stores a rating; `unknown_turn` when this socket recorded no such turn. */
  rate(
    turnId: number,
    rating: 'up' | 'down',
    comment: string | undefined,
  ): Promise<'ok' | 'unknown_turn' | 'failed'>;
  /**
   * The socket closed. `final`: the conversation cannot be resumed (its key was revoked), so it
   * ends now rather than after the TTL a visitor has to come back.
   */
  closed(final?: boolean): void;
}

/** The name of the built-in tool whose call marks a record as handed off. */
export const HANDOFF_TOOL = 'handoff';
/** Tool calls recorded per turn at most. */
const MAX_TOOLS_PER_TURN = 16;
/** A tool's arguments or result, as stored, at most (characters of JSON). */
const MAX_TOOL_JSON = 4_000;
/** Writes of one session waiting at most; beyond it a turn is not recorded (logged). */
const MAX_QUEUED_WRITES = 32;

function bounded(value: unknown): unknown {
  const text = JSON.stringify(value ?? null) ?? 'null';
  return text.length <= MAX_TOOL_JSON
    ? value
    : { truncated: true, preview: text.slice(0, MAX_TOOL_JSON) };
}

export interface SessionRecordDeps {
  store: RecordStore;
  config: RecordsConfig;
  feedback: boolean;
  conversationId: string;
  keyId: string;
  bot: string;
  sessionId: string;
  /** How long a conversation waits for a socket to resume it after the last one closed. */
  ttlMs: number;
  /** The longest a socket stays open (its end is at most this far away while it is). */
  openMs: number;
  log: Logger;
  /** The socket's closing was written: nothing more will be (`final`: the conversation is due now). */
  onClosed?: (final: boolean) => void;
}

export class SessionRecord implements SessionRecorder {
  readonly feedback: boolean;
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readonly tools = new Map<number, RecordedTool[]>();
  private readonly handoffs = new Map<number, HandoffDetail>();
  private readonly redact: RecordsConfig['redact'] & object;

  constructor(private readonly deps: SessionRecordDeps) {
    this.feedback = deps.feedback;
    this.redact = deps.config.redact ?? [];
    const now = Date.now();
    void this.run(() =>
      deps.store.opened({
        id: deps.conversationId,
        keyId: deps.keyId,
        bot: deps.bot,
        transcripts: deps.config.transcripts,
        now,
        endsAt: now + deps.openMs,
        expiresAt: this.expiresAt(now),
      }),
    );
  }

  private expiresAt(now: number): number {
    return now + this.deps.config.retentionDays * 86_400_000;
  }

  /** Queues a write after the ones before it; failures are logged, never thrown. */
  private run<T>(write: () => Promise<T>): Promise<T | undefined> {
    if (this.queued >= MAX_QUEUED_WRITES) {
      this.deps.log.error(
        { conversation: this.deps.conversationId },
        'record write dropped: too many waiting',
      );
      return Promise.resolve(undefined);
    }
    this.queued++;
    const next = this.chain
      .then(write)
      .catch((error: unknown) => {
        this.deps.log.warn({ err: String(error) }, 'record write failed');
        return undefined;
      })
      .finally(() => {
        this.queued--;
      });
    this.chain = next;
    return next;
  }

  toolCalled(turnId: number, name: string, outcome: ToolOutcome): void {
    if (name === HANDOFF_TOOL) {
      const args = (outcome.args ?? {}) as Record<string, unknown>;
      const text = (value: unknown) =>
        typeof value === 'string' ? redactText(value.slice(0, 300), this.redact) : undefined;
      this.handoffs.set(turnId, {
        ...(text(args['reason']) !== undefined ? { reason: text(args['reason']) } : {}),
        ...(text(args['urgency']) !== undefined ? { urgency: text(args['urgency']) } : {}),
      });
    }
    const list = this.tools.get(turnId) ?? [];
    if (list.length >= MAX_TOOLS_PER_TURN) return;
    if (!this.tools.has(turnId)) {
      // Turns report their tools before they end; only a few are ever in progress at once.
      if (this.tools.size >= 4) this.tools.delete(this.tools.keys().next().value as number);
      this.tools.set(turnId, list);
    }
    list.push({
      name,
      ok: outcome.ok,
      args: bounded(redactValue(outcome.args, this.redact)),
      ...(outcome.ok
        ? { result: bounded(redactValue(outcome.result, this.redact)) }
        : { error: redactText(outcome.error, this.redact) }),
    });
  }

  turnEnded(turn: EndedTurn): void {
    const tools = this.tools.get(turn.turnId) ?? [];
    this.tools.delete(turn.turnId);
    const handoff = this.handoffs.get(turn.turnId);
    this.handoffs.delete(turn.turnId);
    if (!turn.user && !turn.assistant && tools.length === 0 && !turn.error) return;
    const now = Date.now();
    const { store, conversationId, sessionId } = this.deps;
    void this.run(() =>
      store.turn(
        conversationId,
        {
          sessionId,
          turnId: turn.turnId,
          at: now,
          user: turn.user && redactText(turn.user, this.redact),
          assistant: turn.assistant && redactText(turn.assistant, this.redact),
          interrupted: turn.interrupted,
          error: turn.error,
          metrics: turn.metrics,
          tools,
        },
        { now, expiresAt: this.expiresAt(now), handoff },
      ),
    );
  }

  async rate(
    turnId: number,
    rating: 'up' | 'down',
    comment: string | undefined,
  ): Promise<'ok' | 'unknown_turn' | 'failed'> {
    const { store, conversationId, sessionId } = this.deps;
    const text = comment?.trim() ? redactText(comment.trim(), this.redact) : undefined;
    const found = await this.run(() =>
      store.feedback(conversationId, sessionId, turnId, rating, text, Date.now()),
    );
    if (found === undefined) return 'failed';
    return found ? 'ok' : 'unknown_turn';
  }

  closed(final = false): void {
    const { store, conversationId, ttlMs, onClosed } = this.deps;
    void this.run(() => store.closed(conversationId, Date.now() + (final ? 0 : ttlMs))).finally(
      () => onClosed?.(final),
    );
  }

  /** Settles when the writes queued so far are done (tests, shutdown). */
  settled(): Promise<unknown> {
    return this.chain;
  }
}
