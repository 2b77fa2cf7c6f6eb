import type { ValidateFunction } from 'ajv';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import { createAjv } from './json-schema.js';
import { ToolError, type PageTools, type ToolContext, type ToolDefinition } from './types.js';

export interface ToolCall {
  id: string;
  name: string;
  /** The model's arguments, as streamed: a JSON string (possibly invalid). */
  arguments: string;
}

export type ToolOutcome =
  | { ok: true; content: string; args: unknown; result: unknown }
  | { ok: false; content: string; args: unknown; error: string };

const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest tool output the model is shown. */
const MAX_CONTENT_CHARS = 8_000;

function truncate(text: string): string {
  return text.length > MAX_CONTENT_CHARS ? `${text.slice(0, MAX_CONTENT_CHARS)}…(truncated)` : text;
}

/** Validates a model's tool call against the tool's JSON Schema, runs it with a time limit, and words the outcome for the model. */
export class ToolRunner {
  private readonly byName = new Map<string, { tool: ToolDefinition; validate: ValidateFunction }>();

  constructor(tools: readonly ToolDefinition[]) {
    if (tools.length === 0) return;
    const ajv = createAjv({ allErrors: true, strict: false });
    for (const tool of tools) {
      if (this.byName.has(tool.name)) throw new Error(`tool ${tool.name} is defined twice`);
      this.byName.set(tool.name, { tool, validate: ajv.compile(tool.parameters) });
    }
  }

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The bot has page-side tools (`ready.features` lists `client_tools`). */
  get hasClientTools(): boolean {
    return [...this.byName.values()].some(({ tool }) => tool.client === true);
  }

  isPublic(name: string): boolean {
    return this.byName.get(name)?.tool.public === true;
  }

  /**
   * The `tools` parameter of a chat completion request. Page-side tools are offered only when
   * `page` has them (a page that registered none gets none).
   */
  definitions(page?: Pick<PageTools, 'has'>): ChatCompletionTool[] {
    return [...this.byName.values()]
      .filter(({ tool }) => !tool.client || page?.has(tool.name) === true)
      .map(({ tool }) => ({
        type: 'function',
        function: { name: tool.name, description: tool.description, parameters: tool.parameters },
      }));
  }

  async run(
    call: ToolCall,
    context: Omit<ToolContext, 'signal'> & { signal: AbortSignal },
  ): Promise<ToolOutcome> {
    const entry = this.byName.get(call.name);
    if (!entry)
      return {
        ok: false,
        args: undefined,
        error: 'unknown_tool',
        content: `Error: there is no tool named ${call.name}.`,
      };
    let args: unknown;
    try {
      args = call.arguments.trim() ? JSON.parse(call.arguments) : {};
    } catch {
      return {
        ok: false,
        args: call.arguments,
        error: 'invalid_arguments',
        content:
          'Error: the arguments were not valid JSON. Call the tool again with valid JSON arguments.',
      };
    }
    if (!entry.validate(args)) {
      const problems = (entry.validate.errors ?? [])
        .map((e) => `${e.instancePath || 'arguments'} ${e.message ?? 'is invalid'}`)
        .join('; ');
      return {
        ok: false,
        args,
        error: 'invalid_arguments',
        content: `Error: invalid arguments (${problems}). Call the tool again with corrected arguments.`,
      };
    }
    const timeoutMs = entry.tool.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = AbortSignal.any([context.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        const onAbort = () =>
          reject(
            context.signal.aborted
              ? new ToolError('cancelled')
              : new ToolError(`timed out after ${timeoutMs} ms`),
          );
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        Promise.resolve()
          .then(() => entry.tool.execute(args as Record<string, unknown>, { ...context, signal }))
          .then(resolve, reject)
          .finally(() => signal.removeEventListener('abort', onAbort));
      });
      return {
        ok: true,
        args,
        result,
        content: truncate(typeof result === 'string' ? result : JSON.stringify(result ?? null)),
      };
    } catch (error) {
      if (context.signal.aborted) throw error;
      const message = error instanceof ToolError ? error.message : 'the tool failed';
      return { ok: false, args, error: message, content: `Error: ${message}.` };
    }
  }
}
