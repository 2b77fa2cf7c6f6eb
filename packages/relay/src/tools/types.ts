import type { ServerMessage } from '@voice-bot/protocol';

/** A JSON Schema object describing a tool's arguments (as OpenAI function calling expects). */
export type JsonSchema = Record<string, unknown>;

export interface ToolContext {
  conversationId: string;
  bot: string;
  /** Conversation metadata (from the page's `start.metadata` and earlier tool mappings). Read-only. */
  metadata: Readonly<Record<string, string | number | boolean>>;
  /** Aborted when the visitor interrupts, the session ends, or the tool times out. */
  signal: AbortSignal;
  /** Sets conversation metadata (flat keys, e.g. `customer.first_name`), usable in prompt templates. */
  setMetadata(values: Record<string, string | number | boolean>): void;
  /** The turn the call belongs to (`turn_id` of the messages it sends). */
  turnId: number;
  /** Sends a protocol message to the page of this session (e.g. `handoff`), in order with the turn's. */
  notify(message: ServerMessage): void;
  /**
   * Trusted claims of a signed-in visitor (a visitor token the site signed; `id` is its subject),
   * or undefined for an anonymous one. Unlike `metadata`, the page cannot change these.
   */
  user?: Readonly<Record<string, string | number | boolean>> | undefined;
  /** The session's page, for page-side tools (`clientTools`). */
  page?: PageTools | undefined;
}

/** The page of a session, as page-side tools see it. */
export interface PageTools {
  /** The page has registered a tool of this name. */
  has(name: string): boolean;
  /** Sends the call to the page and resolves with its result (rejects with a `ToolError`). */
  call(
    name: string,
    args: unknown,
    context: Pick<ToolContext, 'turnId' | 'notify' | 'signal'>,
  ): Promise<unknown>;
}

export interface ToolDefinition<Args = Record<string, unknown>> {
  name: string;
  description: string;
  parameters: JsonSchema;
  /** Returns what the model sees (JSON-serialisable). Throw to report a failure to the model. */
  execute(args: Args, context: ToolContext): Promise<unknown> | unknown;
  /** Per-call time limit (default 10 s). */
  timeoutMs?: number;
  /** Public tools may show their arguments and result to the page; others show only name and state. */
  public?: boolean;
  /** A page-side tool: offered to the model only when the session's page has registered it. */
  client?: boolean;
}

/** Declares a code tool for `createRelay({ tools })`. */
export function defineTool<Args = Record<string, unknown>>(
  tool: ToolDefinition<Args>,
): ToolDefinition<Args> {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(tool.name))
    throw new Error(`tool name ${JSON.stringify(tool.name)} must be 1-64 letters, digits, _ or -`);
  return tool;
}

export class ToolError extends Error {
  override readonly name = 'ToolError';
}
