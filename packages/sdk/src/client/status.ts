/**
 * The client's state, as explicit statuses rather than booleans: one for the relay session, one for
 * the visitor's speech (the speech gate), one for the bot's reply (reply tracking). The public
 * `VoiceBotState` is derived from them. No DOM: unit-tested in Node.
 */
import type { VoiceBotError } from '../errors.js';

export type VoiceBotState =
  'idle' | 'connecting' | 'listening' | 'user-speaking' | 'thinking' | 'speaking' | 'error';

/**
 * The relay session. `ready`: the relay answered `start` on the current socket (input is accepted);
 * `connecting`: a socket is being opened, or is open and waiting for `ready` (first connect,
 * reconnect); `closed`: the socket is gone and nothing reopens it; `idle`: never connected, or stopped.
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'ready' | 'closed';

/**
 * The visitor's speech. `pending`: the detector heard speech start, but it is not yet long and voiced
 * enough to count (its audio is held back); `confirmed`: it counts, its audio streams, it interrupts.
 */
export type SpeechStatus = 'silent' | 'pending' | 'confirmed';

/**
 * The bot's side, on the current socket. `awaiting`: the visitor's turn is committed (utterance or
 * text sent) and the relay's reply to it is not done; `playing`: nothing is awaited but a reply is
 * still coming out of the speaker; `idle`: neither.
 */
export type ReplyStatus = 'idle' | 'awaiting' | 'playing';

/**
 * The state to show once nothing more specific is going on (after a reply, a misfire, an
 * interruption): the visitor speaking, else the bot thinking, else listening (`idle` without a
 * microphone or typed input).
 */
export function restingState(
  speech: SpeechStatus,
  reply: ReplyStatus,
  accepting: boolean,
): VoiceBotState {
  if (speech === 'confirmed') return 'user-speaking';
  if (reply === 'awaiting') return 'thinking';
  return accepting ? 'listening' : 'idle';
}

/** The connection status and the `connect()` calls waiting for `ready`. */
export class Connection {
  private value: ConnectionStatus = 'idle';
  private waiters: { resolve: () => void; reject: (error: VoiceBotError) => void }[] = [];

  get status(): ConnectionStatus {
    return this.value;
  }

  get ready(): boolean {
    return this.value === 'ready';
  }

  /** Settles at the next `ready` (or rejects at `reject()`); a rejection nobody awaits is not unhandled. */
  whenReady(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    ready.catch(() => undefined);
    return ready;
  }

  set(status: ConnectionStatus): void {
    this.value = status;
    if (status === 'ready') for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  /** A fatal error: whoever waits for `ready` gets it. */
  reject(error: VoiceBotError): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
