export type WebhookEvent = 'conversation.ended' | 'handoff.requested';

export const WEBHOOK_EVENTS: readonly WebhookEvent[] = ['conversation.ended', 'handoff.requested'];

/**
 * Where events for site owners' webhooks go. The relay's instance writes one outbox row per
 * matching endpoint (the bot's and the global ones); a dispatcher delivers them later.
 * `data` must be JSON-serialisable; it becomes the body's `data` field.
 */
export interface WebhookSink {
  enqueue(event: WebhookEvent, bot: string, data: Record<string, unknown>): Promise<void>;
}

/** The sink used when no webhook is configured anywhere: drops events. */
export const noWebhooks: WebhookSink = {
  enqueue: () => Promise.resolve(),
};

/** An endpoint with its secret read from the environment (never logged, never stored). */
export interface WebhookEndpoint {
  url: string;
  events: readonly WebhookEvent[];
  /** The environment variable the secret came from: stored with each row to find the secret again. */
  secretEnv: string;
  secret: string;
}

export interface WebhookEndpoints {
  global: readonly WebhookEndpoint[];
  byBot: ReadonlyMap<string, readonly WebhookEndpoint[]>;
}

export interface EnqueueOptions {
  /**
   * Makes the event's `webhook-id` deterministic: enqueueing the same event twice (a relay that
   * crashed half-way and another that took over) then writes one row per endpoint.
   */
  idempotencyKey?: string;
}
