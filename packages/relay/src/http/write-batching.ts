import type { Socket } from 'node:net';

interface HeldSocket {
  socket: Socket;
  held: boolean;
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
  private corked: HeldSocket[] = [];
  private scheduled = false;
  /** `send` calls, and the batches (socket writes) they became. */
  messages = 0;
  batches = 0;

  /** A `send` for a `ws` WebSocket that goes through the batcher. */
  sender(ws: { send(data: string | Uint8Array): void }): (data: string | Uint8Array) => void {
    // `ws` keeps its transport on the private `_socket`; there is no public accessor.
    const socket = (ws as unknown as { _socket?: Socket | null })._socket;
    if (!socket) return (data) => ws.send(data);
    const entry: HeldSocket = { socket, held: false };
    return (data) => {
      this.messages++;
      if (!entry.held && !socket.destroyed) {
        entry.held = true;
        socket.cork();
        this.corked.push(entry);
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(this.flush);
        }
      }
      ws.send(data);
    };
  }

  private readonly flush = (): void => {
    const held = this.corked;
    this.corked = [];
    this.scheduled = false;
    this.batches += held.length;
    for (const entry of held) {
      entry.held = false;
      // Harmless on a destroyed socket: its buffered writes were discarded with it.
      entry.socket.uncork();
    }
  };
}
