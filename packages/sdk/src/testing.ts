/**
 * `@voice-bot/sdk/testing`: helpers for tests of apps (and of this repository) that use the SDK.
 * Not for production pages.
 *
 * ```ts
 * import { VoiceBotClient } from '@voice-bot/sdk';
 * import { droppableTransport } from '@voice-bot/sdk/testing';
 *
 * const network = droppableTransport();
 * const client = new VoiceBotClient({ relayUrl, clientKey, transport: network.transport });
 * await client.connect();
 * network.drop(); // the socket closes as a network failure would: the client reconnects and resumes
 * ```
 */
import { RelayTransport, type TransportOptions } from './transport.js';

/** A `RelayTransport` whose socket a test can drop (close code 4999, which reconnects). */
export class DroppableTransport extends RelayTransport {
  private readonly latest: () => WebSocket | undefined;

  constructor(options: TransportOptions) {
    let latest: WebSocket | undefined;
    const Native = options.WebSocketImpl;
    // A constructor that returns the socket it made, so the transport's own code runs unchanged.
    const Tracking = function (url: string | URL, protocols?: string | string[]) {
      latest = new (Native ?? WebSocket)(url, protocols);
      return latest;
    } as unknown as typeof WebSocket;
    super({ ...options, WebSocketImpl: Tracking });
    this.latest = () => latest;
  }

  /** Closes the current socket as a network failure would: the transport reconnects. */
  drop(): void {
    this.latest()?.close(4999, 'dropped by test');
  }
}

export interface DroppableNetwork {
  /** For the client's `transport` option. */
  transport(options: TransportOptions): DroppableTransport;
  /** The transport the client made (after it was constructed). */
  readonly current: DroppableTransport | undefined;
  /** Drops the client's socket (see `DroppableTransport.drop`). */
  drop(): void;
}

/** A `transport` option whose socket a test can drop, with `drop()` to do it. */
export function droppableTransport(): DroppableNetwork {
  let current: DroppableTransport | undefined;
  return {
    transport: (options) => (current = new DroppableTransport(options)),
    get current() {
      return current;
    },
    drop: () => current?.drop(),
  };
}
