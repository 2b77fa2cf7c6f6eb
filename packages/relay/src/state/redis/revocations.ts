/**
 * Revocation fan-out: a relay that revokes a key publishes it; every other relay's subscriber
 * connection hears it and closes the key's sockets. A relay ignores its own messages: the admin
 * route that revoked the key has already closed the sockets of this relay.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';

/** Key ids are short; anything longer on the channel is not ours. */
const MAX_MESSAGE_CHARS = 1024;

interface RevokedMessage {
  relay: string;
  keyId: string;
}

function parse(text: string): RevokedMessage | undefined {
  if (text.length > MAX_MESSAGE_CHARS) return undefined;
  try {
    const value = JSON.parse(text) as Partial<RevokedMessage> | null;
    return value && typeof value.relay === 'string' && typeof value.keyId === 'string'
      ? { relay: value.relay, keyId: value.keyId }
      : undefined;
  } catch {
    return undefined;
  }
}

export class RevocationChannel {
  private readonly listeners: ((keyId: string) => void)[] = [];

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly relayId: string,
    private readonly logger?: Logger,
  ) {
    subscriber.on('message', (from: string, text: string) => {
      if (from !== this.channel) return;
      const message = parse(text);
      if (!message || message.relay === this.relayId) return;
      for (const listener of this.listeners) listener(message.keyId);
    });
  }

  /** Subscribes (resolves once Redis confirmed; ioredis subscribes again after a reconnect). */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.channel);
  }

  announce(keyId: string): void {
    const message: RevokedMessage = { relay: this.relayId, keyId };
    this.publisher.publish(this.channel, JSON.stringify(message)).catch((error: unknown) => {
      // The other relays still close the key's sockets on their revocation poll.
      this.logger?.warn(
        { key_id: keyId, err: (error as Error).message },
        'redis: could not announce a revocation',
      );
    });
  }

  onRevoked(listener: (keyId: string) => void): void {
    this.listeners.push(listener);
  }
}
