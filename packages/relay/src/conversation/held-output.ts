import type { ServerMessage } from '@voice-bot/protocol';

/**
 * What a speculative turn sends while it is not confirmed: kept in order (JSON messages and audio
 * frames alike) until {@link release} hands it over for the client, or {@link drop} throws it
 * away. Bounded like a slow client's socket: past `maxBytes`, {@link room} answers with a promise
 * that settles only when the turn is confirmed or dropped, so the turn stops pulling from its
 * providers meanwhile.
 */
export class HeldOutput {
  private items: (ServerMessage | Uint8Array)[] = [];
  private bytes = 0;
  private state: 'holding' | 'released' | 'dropped' = 'holding';
  private wake: (() => void) | undefined;
  private waiting: Promise<void> | undefined;

  constructor(private readonly maxBytes: number) {}

  /** Still holding: what the turn sends is kept here. */
  get holding(): boolean {
    return this.state === 'holding';
  }

  get dropped(): boolean {
    return this.state === 'dropped';
  }

  /** Bytes held (JSON as encoded, audio as is). */
  get size(): number {
    return this.bytes;
  }

  message(message: ServerMessage): void {
    if (this.state !== 'holding') return;
    this.items.push(message);
    this.bytes += Buffer.byteLength(JSON.stringify(message));
  }

  audio(pcm: Uint8Array): void {
    if (this.state !== 'holding') return;
    this.items.push(pcm);
    this.bytes += pcm.byteLength;
  }

  /** Undefined while under the bound (or no longer holding); otherwise settles on release or drop. */
  room(): Promise<void> | undefined {
    if (this.state !== 'holding' || this.bytes <= this.maxBytes) return undefined;
    this.waiting ??= new Promise<void>((resolve) => (this.wake = resolve));
    return this.waiting;
  }

  /** The turn is confirmed: everything held, in order; from now on its output goes straight out. */
  release(): (ServerMessage | Uint8Array)[] {
    return this.end('released');
  }

  /** The turn is discarded: what was held and whatever it still sends is thrown away. */
  drop(): void {
    this.end('dropped');
  }

  private end(state: 'released' | 'dropped'): (ServerMessage | Uint8Array)[] {
    if (this.state !== 'holding') return [];
    this.state = state;
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    this.waiting = undefined;
    this.wake?.();
    this.wake = undefined;
    return items;
  }
}
