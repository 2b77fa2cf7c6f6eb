import { StringDecoder } from 'node:string_decoder';
import { APIError, APIUserAbortError } from 'openai/core/error';
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import type { ToolCall } from '../../tools/runner.js';
import { SseParser } from '../../providers/sse.js';
import type { ProviderClient } from '../../providers/failover.js';
import { JSON_TYPE, discard, toHeaders } from '../../providers/upstream.js';

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

/**
 * Where streamed reply text goes. Returns a promise when the consumer wants no more for now: the
 * provider's body is paused (and with it its socket) until it settles.
 */
export type OnChatText = (text: string) => Promise<void> | undefined;

interface ChatChunk {
  choices?: {
    delta?: {
      content?: string | null;
      tool_calls?: {
        index: number;
        id?: string;
        function?: { name?: string; arguments?: string };
      }[];
    };
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: unknown;
}

/**
 * Streams a chat completion (`POST /chat/completions`, `stream: true`): the assistant's text goes to
 * `onText` as it is generated; resolves with the usage and any tool calls when the stream ends.
 * The server-sent events are parsed straight off the Node stream of the response body.
 */
export async function streamChat(
  client: ProviderClient,
  request: ChatRequest,
  signal: AbortSignal,
  onText: OnChatText,
): Promise<ChatRound> {
  const response = await client.post(
    '/chat/completions',
    JSON.stringify({
      model: request.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(request.tools?.length ? { tools: request.tools } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.maxTokens !== undefined ? { max_completion_tokens: request.maxTokens } : {}),
    }),
    JSON_TYPE,
    signal,
  );
  const { body } = response;
  let usage: ChatUsage | undefined;
  const calls = new Map<number, ToolCall>();
  let done = false;
  let waiting = false;
  return new Promise<ChatRound>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      discard(body);
      reject(signal.aborted ? new APIUserAbortError() : error);
    };
    const parser = new SseParser((data) => {
      if (done) return;
      if (data.startsWith('[DONE]')) {
        done = true;
        return;
      }
      const chunk = JSON.parse(data) as ChatChunk;
      if (chunk.error)
        throw new APIError(
          undefined,
          chunk.error as object,
          undefined,
          toHeaders(response.headers),
        );
      if (chunk.usage)
        usage = {
          promptTokens: chunk.usage.prompt_tokens,
          completionTokens: chunk.usage.completion_tokens,
        };
      const delta = chunk.choices?.[0]?.delta;
      if (!delta) return;
      if (delta.tool_calls)
        for (const part of delta.tool_calls) {
          const call = calls.get(part.index) ?? { id: '', name: '', arguments: '' };
          if (part.id) call.id = part.id;
          if (part.function?.name) call.name += part.function.name;
          if (part.function?.arguments) call.arguments += part.function.arguments;
          calls.set(part.index, call);
        }
      if (!delta.content) return;
      const room = onText(delta.content);
      if (room && !waiting) {
        waiting = true;
        body.pause();
        room.then(() => {
          waiting = false;
          if (!settled) body.resume();
        }, fail);
      }
    });
    // undici's body streams ignore `setEncoding`: UTF-8 split across chunks is joined here.
    const decoder = new StringDecoder('utf8');
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        parser.push(decoder.write(chunk));
      } catch (error) {
        fail(error);
      }
    });
    body.once('error', fail);
    body.once('end', () => {
      if (settled) return;
      if (signal.aborted) return fail(new APIUserAbortError());
      settled = true;
      const toolCalls = [...calls.entries()]
        .sort(([a], [b]) => a - b)
        .map(([index, call]) => ({ ...call, id: call.id || `call_${index}` }));
      resolve({ usage, toolCalls });
    });
  });
}
