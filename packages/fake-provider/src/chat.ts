/**
 * `POST {base}/chat/completions`: a scripted {@link ChatScript} answered as OpenAI does, either as
 * one `chat.completion` or as server-sent `chat.completion.chunk`s (content split into words, tool
 * call arguments into fragments, an optional usage chunk, then `[DONE]`), paced by
 * `latency.llmTtftMs` and `latency.tokensPerSecond`. The default script echoes the last user message.
 */
import { randomUUID } from 'node:crypto';
import {
  encoder,
  isFailure,
  isRecord,
  readJsonObject,
  str,
  type Endpoint,
  type Step,
} from './exchange.js';
import type { ChatRequest, ChatScript } from './types.js';
import { structuredReply } from './structured.js';

/** Splits text into word-like pieces, each with its leading whitespace; joins back exactly. */
function splitWords(text: string): string[] {
  const pieces: string[] = text.match(/\s*\S+/g) ?? [];
  const used = pieces.reduce((n, p) => n + p.length, 0);
  if (used < text.length) {
    const rest = text.slice(used);
    if (pieces.length > 0) pieces[pieces.length - 1] += rest;
    else pieces.push(rest);
  }
  return pieces;
}

/** Splits by code points (never halves a surrogate pair). */
function splitChars(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out.length > 0 ? out : [''];
}

function lastUserText(messages: unknown[]): string | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (!isRecord(message) || message['role'] !== 'user') continue;
    const content = message['content'];
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content
        .map((part) => (isRecord(part) && part['type'] === 'text' ? (str(part['text']) ?? '') : ''))
        .join('');
    }
  }
  return undefined;
}

function defaultChat(req: ChatRequest): ChatScript {
  // `response_format: json_schema`: JSON that conforms to the schema (structured.ts).
  const structured = structuredReply(req.body);
  if (structured !== undefined) return { content: structured };
  const heard = lastUserText(req.messages)?.trim();
  return {
    content: heard
      ? `You said: ${heard} This is a scripted reply from the offline demo.`
      : 'Hello! This is a scripted reply from the offline demo.',
  };
}

export function registerChat({ app, base, options, latency, begin }: Endpoint): void {
  app.post(`${base}/chat/completions`, async (c) => {
    const ex = begin(c, 'chat');
    const body = await readJsonObject(c, ex);
    if (body instanceof Response) return body;
    const model = str(body['model']);
    const messages = body['messages'];
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!Array.isArray(messages) || messages.length === 0)
      return ex.error(400, "Missing required parameter: 'messages'.", 'messages');
    const tools = Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : undefined;
    const stream = body['stream'] === true;
    const streamOptions = body['stream_options'];
    const includeUsage = isRecord(streamOptions) && streamOptions['include_usage'] === true;
    const request: ChatRequest = { model, messages, ...(tools ? { tools } : {}), stream, body };
    const result = await (options.chat ?? defaultChat)(request);

    const id = `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const ttft = latency.llmTtftMs ?? 0;
    const interval = latency.tokensPerSecond ? 1000 / latency.tokensPerSecond : 0;

    const plan = (script: ChatScript) => {
      const pieces =
        script.contentChunks ?? (script.content !== undefined ? splitWords(script.content) : []);
      const content = script.contentChunks ? script.contentChunks.join('') : script.content;
      const calls = (script.toolCalls ?? []).map((call, i) => ({
        id: call.id ?? `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
        name: call.name,
        arguments: call.arguments,
        fragments: splitChars(call.arguments, Math.max(1, script.chunkSize ?? 8)),
        index: i,
      }));
      const finishReason = calls.length > 0 ? 'tool_calls' : 'stop';
      const promptTokens =
        script.usage?.prompt_tokens ?? Math.ceil(JSON.stringify(messages).length / 4);
      const completionTokens =
        script.usage?.completion_tokens ??
        Math.max(
          1,
          pieces.length +
            calls.reduce(
              (n, call) => n + Math.ceil((call.name.length + call.arguments.length) / 4),
              0,
            ),
        );
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };
      return { pieces, content, calls, finishReason, usage };
    };

    const sse = (script: ChatScript): Step[] => {
      const { pieces, calls, finishReason, usage } = plan(script);
      const steps: Step[] = [];
      let tick = 0;
      const push = (payload: Record<string, unknown>, paced: boolean) => {
        if (paced && steps.length > 0) tick++;
        const chunk = {
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          service_tier: 'default',
          system_fingerprint: 'fp_fake',
          ...payload,
          ...(includeUsage && !('usage' in payload) ? { usage: null } : {}),
        };
        steps.push({
          data: encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`),
          at: ttft + tick * interval,
        });
      };
      const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      });
      push(
        choice({
          role: 'assistant',
          content: calls.length > 0 && pieces.length === 0 ? null : '',
          refusal: null,
        }),
        false,
      );
      pieces.forEach((piece, i) => push(choice({ content: piece }), i > 0));
      const header = (call: (typeof calls)[number]) =>
        choice({
          tool_calls: [
            {
              index: call.index,
              id: call.id,
              type: 'function',
              function: { name: call.name, arguments: '' },
            },
          ],
        });
      const fragment = (call: (typeof calls)[number], text: string) =>
        choice({ tool_calls: [{ index: call.index, function: { arguments: text } }] });
      if (script.interleaveToolCalls) {
        calls.forEach((call) => push(header(call), true));
        const rounds = Math.max(0, ...calls.map((call) => call.fragments.length));
        for (let r = 0; r < rounds; r++) {
          for (const call of calls) {
            const text = call.fragments[r];
            if (text !== undefined) push(fragment(call, text), true);
          }
        }
      } else {
        for (const call of calls) {
          push(header(call), true);
          for (const text of call.fragments) push(fragment(call, text), true);
        }
      }
      push(choice({}, finishReason), false);
      if (includeUsage) push({ choices: [], usage }, false);
      steps.push({ data: encoder.encode('data: [DONE]\n\n'), at: ttft + tick * interval });
      return steps;
    };

    const completion = (script: ChatScript): string => {
      const { content, calls, finishReason, usage } = plan(script);
      return JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: content ?? null,
              refusal: null,
              annotations: [],
              ...(calls.length > 0
                ? {
                    tool_calls: calls.map((call) => ({
                      id: call.id,
                      type: 'function',
                      function: { name: call.name, arguments: call.arguments },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
      });
    };

    if (isFailure(result)) {
      return ex.failure(result, () => {
        const script = defaultChat(request);
        return stream
          ? { steps: sse(script), contentType: 'text/event-stream; charset=utf-8' }
          : {
              steps: [{ data: encoder.encode(completion(script)), at: ttft }],
              contentType: 'application/json',
            };
      });
    }
    if (stream)
      return ex.stream(sse(result), 'text/event-stream; charset=utf-8', undefined, {
        'cache-control': 'no-cache',
      });
    const tokens = plan(result).pieces.length;
    return ex.respond(
      ttft + Math.max(0, tokens - 1) * interval,
      completion(result),
      'application/json',
    );
  });
}
