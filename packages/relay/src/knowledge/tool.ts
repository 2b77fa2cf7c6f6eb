/**
 * `search_knowledge`: the built-in tool a bot gets when its config lists `knowledge` collections.
 * The model decides when to look something up; results carry their page's URL so the reply can
 * cite it. Public: the page sees the query and the sources (the widget links them).
 */
import { ToolError, type ToolDefinition } from '../tools/types.js';
import type { KnowledgeBase } from './knowledge-base.js';
import { MAX_QUERY_CHARS } from './search.js';

export const SEARCH_KNOWLEDGE_TOOL = 'search_knowledge';
/** Results the model gets, and characters of each result's text. */
const RESULTS = 4;
const RESULT_CHARS = 1_500;

export interface KnowledgeToolResult {
  results: { title: string; url: string | null; heading: string; text: string; score: number }[];
}

export function searchKnowledgeTool(
  knowledge: KnowledgeBase,
  collections: readonly string[],
): ToolDefinition<{ query: string }> {
  return {
    name: SEARCH_KNOWLEDGE_TOOL,
    description:
      "Search this website's own pages (services, prices, policies, practical information) for facts to answer the visitor. " +
      'Use it before answering any question about the business; answer only from the results, and mention the page (url) you used.',
    parameters: {
      type: 'object',
      properties: {
        query: {
          type: 'string',
          minLength: 1,
          maxLength: MAX_QUERY_CHARS,
          description: 'What to look up, in a few words (e.g. "parking near the clinic").',
        },
      },
      required: ['query'],
      additionalProperties: false,
    },
    timeoutMs: 10_000,
    public: true,
    async execute(args, context): Promise<KnowledgeToolResult> {
      let results;
      try {
        results = await knowledge.search(collections, args.query, {
          limit: RESULTS,
          signal: context.signal,
        });
      } catch (error) {
        if (context.signal.aborted) throw error;
        throw new ToolError('the knowledge base could not be searched');
      }
      return {
        results: results.map((r) => ({
          title: r.title,
          url: r.url,
          heading: r.heading,
          text: r.text.length > RESULT_CHARS ? `${r.text.slice(0, RESULT_CHARS)}…` : r.text,
          score: r.score,
        })),
      };
    },
  };
}
