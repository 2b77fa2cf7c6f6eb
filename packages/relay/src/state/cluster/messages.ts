/**
 * The messages between a cluster's workers and its primary process (over Node's IPC channel).
 * Requests carry an `id` and get one reply; notices get none.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { OpenedConversation, Conversation } from '../../conversation/conversations.js';
import type { SlotCount } from '../shared-state.js';
import type { DayUsage, QuotaTotals, UsageDays } from '../../policy/usage.js';

/** Tells these messages apart from others on the channel (prom-client's, rate-limiter-flexible's). */
export const CHANNEL = 'voicebot-cluster';

/** What each request carries and what its reply holds. */
export interface Requests {
  'token.claim': { args: { jti: string; expiresAt: number }; result: boolean };
  'slots.reserve': { args: { keyId: string; max: number }; result: boolean };
  'slots.count': { args: { keyId: string }; result: SlotCount };
  /** A worker's usage since its last sync; the reply is today's totals of every worker. */
  'usage.sync': { args: { seq: number; days: UsageDays }; result: QuotaTotals };
  'usage.history': { args: { keyId: string; days: number }; result: DayUsage[] };
  'conversation.open': {
    args: { requestedId: string | undefined; keyId: string; bot: string; userId?: string };
    result: OpenedConversation;
  };
  /** Prometheus text of every worker's registry, summed. */
  metrics: { args: Record<string, never>; result: string };
}

export interface Notices {
  'slots.cancel': { keyId: string };
  'slots.opened': { keyId: string };
  'slots.closed': { keyId: string };
  'conversation.put': { conversation: Conversation };
  /** Worker → primary: this worker revoked a key. Primary → the other workers: close its sockets. */
  'key.revoked': { keyId: string };
  /** Primary → worker: stop gracefully (as on SIGTERM). */
  shutdown: Record<string, never>;
  /** Primary → worker: send your metrics (`metrics.json`) for a scrape. */
  'metrics.collect': { requestId: number };
  'metrics.json': { requestId: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };
}

export type RequestOp = keyof Requests;
export type NoticeOp = keyof Notices;

export type RequestMessage = {
  [Op in RequestOp]: { channel: typeof CHANNEL; id: number; op: Op; args: Requests[Op]['args'] };
}[RequestOp];
export type NoticeMessage = {
  [Op in NoticeOp]: { channel: typeof CHANNEL; op: Op; args: Notices[Op] };
}[NoticeOp];
export type ReplyMessage =
  | { channel: typeof CHANNEL; id: number; ok: true; result: unknown }
  | { channel: typeof CHANNEL; id: number; ok: false; error: string };

export type ClusterMessage = RequestMessage | NoticeMessage | ReplyMessage;

export function isClusterMessage(message: unknown): message is ClusterMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { channel?: unknown }).channel === CHANNEL
  );
}
