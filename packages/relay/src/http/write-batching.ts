import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { SessionSocket } from '../conversation/session.js';

/** A client socket the batcher may hold (cork) until the loop's check phase. */
interface Holdable {
  readonly transport: Socket;
  held: boolean;
}

/** Where a client socket's outgoing payload bytes are counted (`RelayMetrics` has this). */
export interface BytesOutCounter {
  bytesOut(kind: 'audio' | 'json', bytes: number): void;
}

/** `ws` keeps its transport on the private `_socket`; there is no public accessor. */
function transportOf(ws: object): Socket | undefined {
  return (ws as unknown as { _socket?: Socket | null })._socket ?? undefined;
}

/**
 * Coalesces each client socket's writes within one turn of the event loop: the first message sent
 * to a socket corks it, and every corked socket is uncorked in the loop's check phase
 * (`setImmediate`), right after the I/O callbacks that produced the messages. Messages that one
 * batch of upstream reads produces for a client (a transcript and a status, a text delta and an
 * audio chunk) then leave in one `writev` instead of one system call each. Each message is still
 * its own WebSocket frame, and nothing waits on a timer: under light load a batch holds one message
 * for microseconds; under heavy load, when many callbacks run per loop turn, batches grow on their own.
 */
export class WriteBatcher {
  private corked: Holdable[] = [];
  private scheduled = false;
  /** `send` calls, and the batches (socket writes) they became. */
  messages = 0;
  batches = 0;

  /** A `send` for a `ws` WebSocket that goes through the batcher. */
  sender(ws: { send(data: string | Uint8Array): void }): (data: string | Uint8Array) => void {
    const transport = transportOf(ws);
    if (!transport) return (data) => ws.send(data);
    const entry: Holdable = { transport, held: false };
    return (data) => {
      this.hold(entry);
      ws.send(data);
    };
  }

  /**
   * The session's view of a client's `ws` socket, in one object: each message is counted (bytes
   * out, by kind), held in the batch and framed by `ws`; `bufferedAmount` is `ws`'s own. (It is
   * called for every audio chunk, so it is one call with no wrappers in between.)
   */
  socket(ws: WebSocket, counter: BytesOutCounter): SessionSocket {
    return new BatchedSocket(ws, this, counter);
  }

  /** A message is about to be written to `entry`'s socket: cork it until the check phase. */
  hold(entry: Holdable): void {
    this.messages++;
    if (entry.held || entry.transport.destroyed) return;
    entry.held = true;
    entry.transport.cork();
    this.corked.push(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    const held = this.corked;
    this.corked = [];
    this.scheduled = false;
    this.batches += held.length;
    for (const entry of held) {
      entry.held = false;
      // Harmless on a destroyed socket: its buffered writes were discarded with it.
      entry.transport.uncork();
    }
  };
}

class BatchedSocket implements SessionSocket {
  /** Undefined when `ws` has no transport to cork: then messages go straight to `ws`. */
  private readonly entry: Holdable | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly batcher: WriteBatcher,
    private readonly counter: BytesOutCounter,
  ) {
    const transport = transportOf(ws);
    this.entry = transport && { transport, held: false };
  }

  send(data: string | Uint8Array): void {
    if (this.entry) this.batcher.hold(this.entry);
    this.ws.send(data);
    if (typeof data === 'string') this.counter.bytesOut('json', Buffer.byteLength(data));
    else this.counter.bytesOut('audio', data.byteLength);
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}
