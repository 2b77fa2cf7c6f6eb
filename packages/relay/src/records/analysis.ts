/**
 * The end-of-conversation analysis: one chat completion with JSON-schema structured output over
 * the recorded transcript (truncated to a token budget), checked against that schema.
 */
import type { Ajv, ValidateFunction } from 'ajv';
import type { BotConfig } from '../config/config.js';
import { estimateTokens } from '../pipeline/stages/llm.js';
import type { ProviderClient } from '../providers/failover.js';
import { JSON_TYPE, readBody } from '../providers/upstream.js';
import type { Analysis, FullRecord, Sentiment, Urgency } from './store.js';
import { createAjv } from '../tools/json-schema.js';

/** Transcript tokens sent at most (the latest turns are kept, with the first). */
export const TRANSCRIPT_TOKEN_BUDGET = 6_000;
/** The analysis's reply tokens at most. */
export const MAX_ANALYSIS_TOKENS = 800;
/** Largest analysis response read (bytes). */
const MAX_RESPONSE_BYTES = 256 * 1024;

export const SENTIMENTS: readonly Sentiment[] = ['positive', 'neutral', 'negative'];
export const URGENCIES: readonly Urgency[] = ['low', 'normal', 'high'];

const SYSTEM_PROMPT =
  "You review a finished conversation between a website visitor and the website's voice assistant. " +
  'Answer with JSON matching the schema: "summary" in one to three sentences (what the visitor wanted and what happened), ' +
  '"sentiment" of the visitor (positive, neutral or negative), "urgency" of any follow-up (low, normal or high)' +
  ', and in "extracted" the fields the schema describes, taken only from what the visitor said; null when the conversation does not say.';

/** A field's schema that also admits null (strict structured output wants every field required). */
function nullable(schema: Record<string, unknown>): Record<string, unknown> {
  const type = schema['type'];
  if (typeof type === 'string' && type !== 'null' && !('enum' in schema))
    return { ...schema, type: [type, 'null'] };
  if (Array.isArray(type) && !('enum' in schema))
    return type.includes('null') ? schema : { ...schema, type: [...type, 'null'] };
  return { anyOf: [schema, { type: 'null' }] };
}

/** The JSON Schema the model must answer with, for one bot. */
export function analysisSchema(bot: BotConfig): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    summary: { type: 'string' },
    sentiment: { type: 'string', enum: SENTIMENTS },
    urgency: { type: 'string', enum: URGENCIES },
  };
  const required = ['summary', 'sentiment', 'urgency'];
  const fields = bot.extract?.['properties'] as Record<string, Record<string, unknown>> | undefined;
  if (fields) {
    properties['extracted'] = {
      type: 'object',
      properties: Object.fromEntries(
        Object.entries(fields).map(([name, schema]) => [name, nullable(schema)]),
      ),
      required: Object.keys(fields),
      additionalProperties: false,
    };
    required.push('extracted');
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/** "Visitor: …" / "Assistant: …" lines, the oldest dropped (the first kept) beyond the budget. */
export function transcriptText(record: FullRecord, budget = TRANSCRIPT_TOKEN_BUDGET): string {
  const lines: string[] = [];
  for (const turn of record.turns) {
    if (turn.user) lines.push(`Visitor: ${turn.user}`);
    for (const tool of turn.tools) lines.push(`(tool ${tool.name}: ${tool.ok ? 'ok' : 'failed'})`);
    if (turn.assistant)
      lines.push(`Assistant: ${turn.assistant}${turn.interrupted ? ' [interrupted]' : ''}`);
  }
  let total = lines.reduce((n, line) => n + estimateTokens(line) + 1, 0);
  if (total <= budget) return lines.join('\n');
  const first = lines.shift() as string;
  let dropped = 0;
  total -= estimateTokens(first) + 1;
  while (lines.length > 0 && total > budget - estimateTokens(first) - 20) {
    total -= estimateTokens(lines.shift() as string) + 1;
    dropped++;
  }
  // A single line over the budget: cut it.
  const rest = lines.join('\n').slice(-budget * 4);
  return `${first.slice(0, budget * 2)}\n[… ${dropped} lines left out …]\n${rest}`;
}

export interface AnalysisRequest {
  body: string;
  /** Estimated prompt tokens, charged before the call. */
  estimate: number;
}

export function analysisRequest(
  bot: BotConfig,
  model: string,
  record: FullRecord,
): AnalysisRequest {
  const messages = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: `The conversation:\n\n${transcriptText(record)}` },
  ];
  const schema = analysisSchema(bot);
  return {
    body: JSON.stringify({
      model,
      messages,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'conversation_analysis', strict: true, schema },
      },
      max_completion_tokens: MAX_ANALYSIS_TOKENS,
    }),
    estimate: estimateTokens(JSON.stringify(messages)) + estimateTokens(JSON.stringify(schema)),
  };
}

const validators = new WeakMap<BotConfig, ValidateFunction>();
let ajv: Ajv | undefined;

export interface AnalysisOutcome {
  analysis: Analysis;
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/** Parses and checks the model's answer. */
export function parseAnalysis(bot: BotConfig, content: string): Analysis {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    throw new Error('the analysis was not JSON');
  }
  let validate = validators.get(bot);
  if (!validate) {
    ajv ??= createAjv({ strict: false, allErrors: false });
    validate = ajv.compile(analysisSchema(bot));
    validators.set(bot, validate);
  }
  if (!validate(value)) {
    const problem = validate.errors?.[0];
    throw new Error(
      `the analysis does not match its schema (${problem?.instancePath || '/'} ${problem?.message ?? ''})`,
    );
  }
  const out = value as {
    summary: string;
    sentiment: Sentiment;
    urgency: Urgency;
    extracted?: Record<string, unknown>;
  };
  return {
    summary: out.summary.slice(0, 2_000),
    sentiment: out.sentiment,
    urgency: out.urgency,
    extracted: out.extracted ?? null,
  };
}

/** Sends the request and reads the answer (throws on an upstream failure or a bad answer). */
export async function runAnalysis(
  client: ProviderClient,
  bot: BotConfig,
  request: AnalysisRequest,
  signal: AbortSignal,
): Promise<AnalysisOutcome> {
  const response = await client.post('/chat/completions', request.body, JSON_TYPE, signal);
  const text = await readBody(response.body, MAX_RESPONSE_BYTES);
  let parsed: {
    choices?: { message?: { content?: string | null; refusal?: string | null } }[];
    usage?: { prompt_tokens: number; completion_tokens: number };
  };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new Error('the provider answered with something other than JSON');
  }
  const message = parsed.choices?.[0]?.message;
  if (message?.refusal) throw new Error(`the model refused: ${message.refusal.slice(0, 200)}`);
  const analysis = parseAnalysis(bot, message?.content ?? '');
  return { analysis, ...(parsed.usage ? { usage: parsed.usage } : {}) };
}
