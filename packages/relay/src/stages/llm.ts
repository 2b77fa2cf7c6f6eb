import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';

export interface ChatRequest {
  model: string;
  messages: ChatCompletionMessageParam[];
  temperature?: number;
  maxTokens?: number;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
}

/** Streams the assistant's text as it is generated. Returns token usage when the provider reports it. */
export async function* streamChat(
  client: OpenAI,
  request: ChatRequest,
  signal: AbortSignal,
): AsyncGenerator<string, ChatUsage | undefined> {
  const stream = await client.chat.completions.create(
    {
      model: request.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.maxTokens !== undefined ? { max_completion_tokens: request.maxTokens } : {}),
    },
    { signal },
  );
  let usage: ChatUsage | undefined;
  for await (const chunk of stream) {
    if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
    const delta = chunk.choices[0]?.delta?.content;
    if (delta) yield delta;
  }
  // The SDK ends the iteration quietly when aborted; make the abort visible to the caller.
  signal.throwIfAborted();
  return usage;
}
