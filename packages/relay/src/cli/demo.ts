import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createFakeUpstream,
  type ChatRequest,
  type TranscriptionRequest,
} from '@voice-bot/fake-provider';
import type { KeyStore } from '../auth/keys.js';
import type { ProvidersConfig } from '../config/config.js';

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
  let turn = 0;
  const upstream = createFakeUpstream({
    latency: { sttMs: 150, llmTtftMs: 200, tokensPerSecond: 40, ttsTtfbMs: 80, ttsRealtime: false },
    transcribe: (request: TranscriptionRequest) =>
      `(demo: I heard ${(request.wav.durationMs / 1000).toFixed(1)} seconds of speech)`,
    chat: (request: ChatRequest) => {
      const said = lastUserText(request);
      // Typed questions about opening hours go through the bot's HTTP tool, as a real model would.
      const fromTool = toolResult(request);
      if (fromTool)
        return {
          content: `${fromTool} (That came from the clinic's system through the relay's HTTP tool.)`,
        };
      const offersHours = (request.tools ?? []).some(
        (t) => (t as { function?: { name?: string } }).function?.name === 'opening_hours',
      );
      if (offersHours && /\b(hours?|open|close)/i.test(said)) {
        const day = DAYS.find((d) => said.toLowerCase().includes(d)) ?? 'saturday';
        return { toolCalls: [{ name: 'opening_hours', arguments: JSON.stringify({ day }) }] };
      }
      const reply = DEMO_REPLIES[turn++ % DEMO_REPLIES.length] ?? '';
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
