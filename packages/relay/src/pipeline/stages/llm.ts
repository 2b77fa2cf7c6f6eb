import type OpenAI from 'openai';
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import type { ToolCall } from '../../tools/runner.js';

export interface ChatRequest {
  model: string;
  messages: ChatCompletionMessageParam[];
  tools?: ChatCompletionTool[];
  temperature?: number;
  maxTokens?: number;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatRound {
  usage: ChatUsage | undefined;
  /** Tool calls the model asked for (assembled from streamed deltas by index). */
  toolCalls: ToolCall[];
}

/** Tokens in a text, estimated before the provider counts them: ~4 bytes of UTF-8 per token. */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text) / 4);
}

/**
 * The prompt tokens of a request, estimated from what is sent (history, tool definitions and
 * JSON framing included) so the quota is charged before the request goes out. Generous on
 * purpose: the provider's reported usage replaces it when the reply ends.
 */
export function estimatePromptTokens(request: ChatRequest): number {
  return (
    estimateTokens(JSON.stringify(request.messages)) +
    (request.tools?.length ? estimateTokens(JSON.stringify(request.tools)) : 0)
  );
}

/** Streams the assistant's text as it is generated; returns usage and any tool calls when the stream ends. */
export async function* streamChat(
  client: OpenAI,
  request: ChatRequest,
  signal: AbortSignal,
): AsyncGenerator<string, ChatRound> {
  const stream = await client.chat.completions.create(
    {
      model: request.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(request.tools?.length ? { tools: request.tools } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.maxTokens !== undefined ? { max_completion_tokens: request.maxTokens } : {}),
    },
    { signal },
  );
  let usage: ChatUsage | undefined;
  const calls = new Map<number, ToolCall>();
  for await (const chunk of stream) {
    if (chunk.usage)
      usage = {
        promptTokens: chunk.usage.prompt_tokens,
        completionTokens: chunk.usage.completion_tokens,
      };
    const delta = chunk.choices[0]?.delta;
    for (const part of delta?.tool_calls ?? []) {
      const call = calls.get(part.index) ?? { id: '', name: '', arguments: '' };
      if (part.id) call.id = part.id;
      if (part.function?.name) call.name += part.function.name;
      if (part.function?.arguments) call.arguments += part.function.arguments;
      calls.set(part.index, call);
    }
    if (delta?.content) yield delta.content;
  }
  // The SDK ends the iteration quietly when aborted; make the abort visible to the caller.
  signal.throwIfAborted();
  const toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, call]) => ({ ...call, id: call.id || `call_${index}` }));
  return { usage, toolCalls };
}
