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
