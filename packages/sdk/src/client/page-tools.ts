import {
  MAX_TOOL_RESULT_BYTES,
  type ClientMessageInput,
  type ServerMessageOf,
} from '../protocol/index.js';

/** A page-side tool (`client.registerTool`): the bot's config lists it in `clientTools`. */
export interface ClientTool {
  /** As the bot's `clientTools` name it (1-64 letters, digits, _ or -). */
  name: string;
  /** For your own reference: the model sees the description and parameters of the bot's config. */
  description?: string;
  parameters?: Record<string, unknown>;
  /**
   * Runs the call and returns its result for the model (JSON-serialisable, at most 8 KB of JSON).
   * Throw to tell the model it failed. `signal` aborts when the relay stops waiting (interrupt,
   * timeout, end of the turn).
   */
  handler(args: unknown, context: { signal: AbortSignal; turnId: number }): unknown;
}

/**
 * Answers the relay's `tool_call`s with the page's registered tools: each call gets one
 * `tool_result`, unless the relay cancelled it (`tool_cancel`) first. Loaded on the first call.
 */
export class PageToolRunner {
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly tools: ReadonlyMap<string, ClientTool>,
    private readonly send: (message: ClientMessageInput) => boolean,
  ) {}

  handle(message: ServerMessageOf<'tool_call'> | ServerMessageOf<'tool_cancel'>): void {
    if (message.type === 'tool_call') {
      void this.run(message);
      return;
    }
    this.running.get(message.call_id)?.abort();
    this.running.delete(message.call_id);
  }

  /** The socket closed: the relay waits for nothing any more. */
  cancelAll(): void {
    for (const controller of this.running.values()) controller.abort();
    this.running.clear();
  }

  private async run({ call_id, name, args, turn_id }: ServerMessageOf<'tool_call'>): Promise<void> {
    const controller = new AbortController();
    this.running.set(call_id, controller);
    let answer: ClientMessageInput;
    try {
      const tool = this.tools.get(name);
      if (!tool) throw new Error(`${name} is not registered on this page`);
      const json = JSON.stringify(
        (await tool.handler(args, { signal: controller.signal, turnId: turn_id })) ?? null,
      );
      const bytes = new TextEncoder().encode(json).byteLength;
      if (bytes > MAX_TOOL_RESULT_BYTES)
        throw new Error(
          `the result is ${bytes} bytes of JSON; the limit is ${MAX_TOOL_RESULT_BYTES}`,
        );
      answer = { type: 'tool_result', call_id, ok: true, result: JSON.parse(json) as unknown };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      answer = { type: 'tool_result', call_id, ok: false, error: message.slice(0, 500) };
    }
    // Cancelled meanwhile: the relay has told the model already.
    if (this.running.delete(call_id)) this.send(answer);
  }
}
