import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createFakeUpstream,
  structuredReply,
  type ChatRequest,
  type TranscriptionRequest,
} from '@voice-bot/fake-provider';
import type { KeyStore } from '../auth/keys.js';
import type { ProvidersConfig } from '../config/config.js';
import type { IngestReport, KnowledgeBase } from '../knowledge/knowledge-base.js';
import { SEARCH_KNOWLEDGE_TOOL, type KnowledgeToolResult } from '../knowledge/tool.js';

export const DEMO_KEY_LABEL = 'development key for the demo page';

interface DemoKeyFile {
  id: string;
  key: string;
  origins: string[];
}

/**
 * The demo page needs a client key it can embed. Keys are stored hashed, so the demo key's secret
 * is kept beside them in `demo-key.json` (development only). A key that no longer covers the
 * current port, or was revoked, is replaced.
 */
export async function ensureDemoKey(
  keys: KeyStore,
  dataDir: string,
  origins: string[],
): Promise<{ id: string; key: string; created: boolean }> {
  const file = join(dataDir, 'demo-key.json');
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as DemoKeyFile;
    const record = await keys.get(saved.id);
    if (record && !record.revoked_at && origins.every((o) => record.origins.includes(o)))
      return { id: saved.id, key: saved.key, created: false };
    if (record && !record.revoked_at) await keys.revoke(saved.id);
  } catch {
    // no usable demo key yet
  }
  const { record, secret } = await keys.create({ origins, label: DEMO_KEY_LABEL });
  const body: DemoKeyFile = { id: record.id, key: secret, origins };
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  return { id: record.id, key: secret, created: true };
}

function lastUserText(request: ChatRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i] as { role?: unknown; content?: unknown };
    if (message.role === 'user' && typeof message.content === 'string') return message.content;
  }
  return '';
}

const HOURS: Record<string, string> = {
  monday: 'open from 9 a.m. to 5 p.m.',
  tuesday: 'open from 9 a.m. to 5 p.m.',
  wednesday: 'open from 9 a.m. to 5 p.m.',
  thursday: 'open from 9 a.m. to 7 p.m.',
  friday: 'open from 9 a.m. to 5 p.m.',
  saturday: 'open from 10 a.m. to 2 p.m.',
  sunday: 'closed',
};

/** The demo clinic's "booking system" API, which the demo bot's HTTP tool calls. */
export function clinicHours(day: string | undefined): { day: string; summary: string } {
  const key = (day ?? '').toLowerCase();
  return { day: key || 'that day', summary: HOURS[key] ?? 'not a day I know' };
}

const DAYS = Object.keys(HOURS);

function toolResult(request: ChatRequest): string | undefined {
  const last = request.messages.at(-1) as { role?: unknown; content?: unknown } | undefined;
  return last?.role === 'tool' && typeof last.content === 'string' ? last.content : undefined;
}

/** The visitor asks for a person: the demo model calls the bot's `handoff` tool, as a real one would. */
const ASKS_FOR_PERSON = /\b(person|human|someone|somebody|receptionist|real people|staff|agent)\b/i;

const offers = (request: ChatRequest, name: string): boolean =>
  (request.tools ?? []).some(
    (t) => (t as { function?: { name?: string } }).function?.name === name,
  );

/** A phone number or email address the visitor typed, as the handoff's `contact`. */
function contactIn(said: string): { contact?: { phone?: string; email?: string } } {
  const phone = /\+?\d[\d\s().-]{5,}\d/.exec(said)?.[0];
  const email = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/.exec(said)?.[0];
  if (!phone && !email) return {};
  return { contact: { ...(phone ? { phone } : {}), ...(email ? { email } : {}) } };
}

/** The demo model's words after its `handoff` call: what the tool said happens next. */
function afterHandoff(result: string): string | undefined {
  try {
    const parsed = JSON.parse(result) as { status?: unknown; next?: unknown };
    if (parsed.status === 'handed_off' && typeof parsed.next === 'string')
      return `Of course. ${parsed.next.replaceAll('the visitor', 'you')}`;
  } catch {
    // not the handoff tool's result
  }
  return undefined;
}

const SHOW_PRICES = /\b(?:show|scroll)\b.*\b(?:prices?|pricing)\b/i;

/** The demo model's words after the page's `show_section` ran: `{ shown }` is its result. */
function afterShowSection(result: string): string | undefined {
  try {
    const { shown } = JSON.parse(result) as { shown?: unknown };
    if (typeof shown === 'string')
      return `Here you go: the page now shows the ${shown}. (The page did that itself: a page-side tool.)`;
  } catch {
    // not the page tool's result
  }
  return undefined;
}

/** The demo knowledge base: the clinic's own pages (demo/clinic/*.html). */
export const DEMO_COLLECTION = 'clinic';

/**
 * Indexes the demo clinic's pages from disk (the relay serves the same files), citing them at
 * `<baseUrl>/clinic/…`. Unchanged pages are not embedded again on the next start.
 */
export function ingestDemoClinic(
  knowledge: KnowledgeBase,
  demoDir: string,
  baseUrl: string,
): Promise<IngestReport> {
  return knowledge.add([join(demoDir, 'clinic')], {
    collection: DEMO_COLLECTION,
    baseUrl: `${baseUrl}/clinic/`,
  });
}

/** A question (rather than small talk): what the demo model looks up. */
const ASKS_SOMETHING =
  /\?|^\s*(how|what|where|when|which|who|why|do|does|can|is|are|tell)\b|\b(price|cost|park|insurance|service|crown|whiten)/i;

/** The demo model's answer from `search_knowledge` results: the top passage, and its page. */
function fromKnowledge(result: string): string | undefined {
  let parsed: KnowledgeToolResult;
  try {
    parsed = JSON.parse(result) as KnowledgeToolResult;
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed.results)) return undefined;
  const top = parsed.results[0];
  if (!top) return "I couldn't find that on the clinic's pages.";
  const sentences = top.text.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]*/g) ?? [top.text];
  const excerpt = sentences.slice(0, 2).join('').trim();
  return `${excerpt} (From our ${top.title} page${top.url ? `: ${top.url}` : ''}.)`;
}

const DEMO_REPLIES = [
  'This is the offline demo, so my answers are scripted. To talk to a real model, set OPENAI_API_KEY and restart the relay.',
  'Still the scripted demo here. Everything you see is the real pipeline: your audio went to the relay, and this reply is streamed and spoken sentence by sentence.',
  'In demo mode I cannot understand words, only measure them. Configure any OpenAI-compatible provider, such as Ollama or speaches, to get real answers.',
];

/**
 * An offline stand-in for an OpenAI-compatible provider, so `npm start` works without a key. It
 * says plainly that it is scripted: STT reports only what it can honestly know (how long you
 * spoke), the LLM replies from a script, and TTS is a synthetic tone rather than a voice.
 */
export async function startDemoUpstream(): Promise<{
  providers: ProvidersConfig;
  close(): Promise<void>;
}> {
  const upstream = createFakeUpstream({
    latency: { sttMs: 150, llmTtftMs: 200, tokensPerSecond: 40, ttsTtfbMs: 80, ttsRealtime: false },
    transcribe: (request: TranscriptionRequest) =>
      `(demo: I heard ${(request.wav.durationMs / 1000).toFixed(1)} seconds of speech)`,
    chat: (request: ChatRequest) => {
      // The end-of-conversation analysis of a bot with `records` (structured output).
      const structured = structuredReply(request.body);
      if (structured !== undefined) return { content: structured };
      const said = lastUserText(request);
      // Typed questions about opening hours go through the bot's HTTP tool, as a real model would.
      const fromTool = toolResult(request);
      const handedOff = fromTool === undefined ? undefined : afterHandoff(fromTool);
      if (handedOff) return { content: handedOff };
      const shown = fromTool === undefined ? undefined : afterShowSection(fromTool);
      if (shown) return { content: shown };
      const looked = fromTool === undefined ? undefined : fromKnowledge(fromTool);
      if (looked) return { content: looked };
      if (fromTool)
        return {
          content: `${fromTool} (That came from the clinic's system through the relay's HTTP tool.)`,
        };
      if (offers(request, 'handoff') && ASKS_FOR_PERSON.test(said)) {
        const summary = `The visitor wrote: "${said.slice(0, 200)}"`;
        const contact = contactIn(said);
        const args = { reason: 'asked for a person', urgency: 'normal', summary, ...contact };
        return { toolCalls: [{ name: 'handoff', arguments: JSON.stringify(args) }] };
      }
      // "Show me the prices": the page's own `show_section` tool scrolls to them (a page-side tool).
      if (SHOW_PRICES.test(said) && offers(request, 'show_section'))
        return {
          toolCalls: [{ name: 'show_section', arguments: JSON.stringify({ section: 'prices' }) }],
        };
      const offersHours = offers(request, 'opening_hours');
      if (offersHours && /\b(hours?|open|close)/i.test(said)) {
        const day = DAYS.find((d) => said.toLowerCase().includes(d)) ?? 'saturday';
        return { toolCalls: [{ name: 'opening_hours', arguments: JSON.stringify({ day }) }] };
      }
      // Other typed questions: the model looks them up in the clinic's pages (the knowledge base).
      const offersKnowledge = (request.tools ?? []).some(
        (t) => (t as { function?: { name?: string } }).function?.name === SEARCH_KNOWLEDGE_TOOL,
      );
      if (offersKnowledge && !said.startsWith('(demo:') && ASKS_SOMETHING.test(said))
        return {
          toolCalls: [{ name: SEARCH_KNOWLEDGE_TOOL, arguments: JSON.stringify({ query: said }) }],
        };
      // By the visitor's turn in this conversation, so a speculative request that was discarded
      // (the visitor talked on) and the confirmed one give the same reply.
      const visitorTurns = request.messages.filter(
        (m) => (m as { role?: unknown }).role === 'user',
      ).length;
      const reply = DEMO_REPLIES[Math.max(0, visitorTurns - 1) % DEMO_REPLIES.length] ?? '';
      const echo = said.startsWith('(demo:') ? '' : ` You wrote ${said.length} characters.`;
      return { content: `${reply}${echo}` };
    },
  });
  const { url, close } = await upstream.listen(0);
  const stage = { baseURL: url, apiKey: 'demo', timeoutMs: 30_000, maxRetries: 0 };
  return {
    providers: {
      stt: { ...stage, model: 'demo-stt' },
      llm: { ...stage, model: 'demo-llm' },
      tts: { ...stage, model: 'demo-tts', voice: 'demo' },
    },
    close,
  };
}
