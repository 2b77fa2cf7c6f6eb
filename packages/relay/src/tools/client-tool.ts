import { randomBytes } from 'node:crypto';
import {
  MAX_TOOL_RESULT_BYTES,
  type ServerMessage,
  type ToolResultMessage,
} from '@voice-bot/protocol';
import {
  ToolError,
  type JsonSchema,
  type PageTools,
  type ToolContext,
  type ToolDefinition,
} from './types.js';

/** A page-side tool a bot may call (`clientTools` in the bot config): the page runs it. */
export interface ClientToolConfig {
  name: string;
  description: string;
  /** JSON Schema of the arguments (default: an object with no required fields). */
  parameters?: JsonSchema;
  /** How long the page has to answer (default 10 s, at most 60 s). */
  timeoutMs?: number;
}

/** Largest page result the model is given (bytes of its JSON). */
export const MAX_CLIENT_RESULT_BYTES = MAX_TOOL_RESULT_BYTES;
/** Page-side calls one socket may have waiting at once. */
export const MAX_PENDING_CLIENT_CALLS = 8;
export const DEFAULT_CLIENT_TOOL_TIMEOUT_MS = 10_000;

interface Pending {
  name: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/**
 * One socket's page-side tools: the names the page announced, and the calls waiting for its
 * `tool_result`. Every call ends: answered, refused at once, cancelled, or timed out by the runner.
 */
export class PageToolCalls implements PageTools {
  private names = new Set<string>();
  private readonly pending = new Map<string, Pending>();

  /** The page's current tools (`start.client_tools`, then each `client_tools`). */
  announce(names: readonly string[]): void {
    this.names = new Set(names);
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  get waiting(): number {
    return this.pending.size;
  }

  /** Sends `tool_call` to the page and waits for its answer (until `signal` aborts). */
  call(
    name: string,
    args: unknown,
    context: Pick<ToolContext, 'turnId' | 'notify' | 'signal'>,
  ): Promise<unknown> {
    if (!this.has(name))
      return Promise.reject(new ToolError(`${name} is not available on this page`));
    if (this.pending.size >= MAX_PENDING_CLIENT_CALLS)
      return Promise.reject(new ToolError('too many page tool calls are waiting'));
    const callId = `call_${randomBytes(9).toString('base64url')}`;
    return new Promise<unknown>((resolve, reject) => {
      const { signal } = context;
      const onAbort = () => {
        if (!this.pending.delete(callId)) return;
        context.notify({ type: 'tool_cancel', call_id: callId });
        reject(new ToolError('cancelled'));
      };
      const settle =
        <T>(fn: (value: T) => void) =>
        (value: T) => {
          signal.removeEventListener('abort', onAbort);
          fn(value);
        };
      this.pending.set(callId, { name, resolve: settle(resolve), reject: settle(reject) });
      signal.addEventListener('abort', onAbort, { once: true });
      const message: ServerMessage = {
        type: 'tool_call',
        turn_id: context.turnId,
        call_id: callId,
        name,
        args,
      };
      context.notify(message);
      if (signal.aborted) onAbort();
    });
  }

  /** The page answered: false when no call with that id is waiting. */
  settle(message: ToolResultMessage): boolean {
    const entry = this.pending.get(message.call_id);
    if (!entry) return false;
    this.pending.delete(message.call_id);
    if (!message.ok) {
      entry.reject(
        new ToolError(
          `the page could not run ${entry.name}: ${message.error ?? 'no reason given'}`,
        ),
      );
      return true;
    }
    const json = JSON.stringify(message.result ?? null);
    if (Buffer.byteLength(json) > MAX_CLIENT_RESULT_BYTES)
      entry.reject(
        new ToolError(`the page's result is larger than ${MAX_CLIENT_RESULT_BYTES} bytes`),
      );
    else entry.resolve(message.result ?? null);
    return true;
  }

  /** The socket closed: nothing will answer. */
  cancelAll(): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) entry.reject(new ToolError('cancelled'));
  }
}

/** The relay's side of a page-side tool: its call goes to the session's page. */
export function clientTool(config: ClientToolConfig): ToolDefinition {
  return {
    name: config.name,
    description: config.description,
    parameters: config.parameters ?? { type: 'object', properties: {} },
    timeoutMs: config.timeoutMs ?? DEFAULT_CLIENT_TOOL_TIMEOUT_MS,
    client: true,
    // The page ran it: it knows the arguments and result already.
    public: true,
    execute(args, context) {
      if (!context.page) throw new ToolError(`${config.name} is not available on this page`);
      return context.page.call(config.name, args, context);
    },
  };
}
