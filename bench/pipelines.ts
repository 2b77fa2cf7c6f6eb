/**
 * Reference pipelines that talk to the fake upstream directly with the `openai` SDK (no relay, no
 * WebSocket), timed from "utterance complete" (the moment a client would send `commit`):
 *
 * - `sequential`: what simpler voice bots do. Full transcript → full (non-streamed) LLM reply →
 *   one TTS request for the whole reply. Reports when the TTS response's first byte arrived
 *   (a bot that streams that one file into its player) and when the whole file had arrived (a bot
 *   that plays the downloaded file — the usual "sequential" design).
 * - `directStreaming`: the relay's algorithm without the relay: streamed LLM reply, the relay's own
 *   `SentenceChunker`, TTS of the first sentence as soon as it is complete. Its time to first audio
 *   is the floor any relay could reach on this upstream (HTTP client + upstream timer slop only).
 */
import OpenAI, { toFile } from 'openai';
import { SentenceChunker, createUpstreamFetch, stripMarkdown } from '@voice-bot/relay';
import { pcm16ToWav } from '@voice-bot/fake-provider';

/** An SDK client on the relay's own HTTP client, so the floor differs from the relay only by the relay. */
export function upstreamClient(baseURL: string): OpenAI {
  return new OpenAI({
    baseURL,
    apiKey: 'sk-bench',
    maxRetries: 0,
    timeout: 30_000,
    fetch: createUpstreamFetch(),
  });
}

const SYSTEM = { role: 'system' as const, content: 'You are a helpful voice assistant.' };

export interface SequentialTiming {
  sttMs: number;
  /** transcript → complete reply */
  llmMs: number;
  /** utterance complete → first byte of the whole-reply TTS */
  firstByteMs: number;
  /** utterance complete → the whole reply's audio downloaded (playback starts) */
  completeMs: number;
  audioBytes: number;
}

export async function sequential(client: OpenAI, pcm: Uint8Array): Promise<SequentialTiming> {
  const t0 = performance.now();
  const file = await toFile(pcm16ToWav(pcm, 16_000), 'utterance.wav', { type: 'audio/wav' });
  const transcript = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
  const t1 = performance.now();
  const completion = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [SYSTEM, { role: 'user', content: transcript.text }],
  });
  const reply = completion.choices[0]?.message.content ?? '';
  const t2 = performance.now();
  const response = await client.audio.speech
    .create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: reply, response_format: 'pcm' })
    .asResponse();
  let firstByteAt: number | undefined;
  let audioBytes = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    firstByteAt ??= performance.now();
    audioBytes += chunk.byteLength;
  }
  const t4 = performance.now();
  return {
    sttMs: t1 - t0,
    llmMs: t2 - t1,
    firstByteMs: (firstByteAt ?? t4) - t0,
    completeMs: t4 - t0,
    audioBytes,
  };
}

export interface StreamingTiming {
  sttMs: number;
  firstSentenceMs: number;
  firstAudioMs: number;
}

export async function directStreaming(client: OpenAI, pcm: Uint8Array): Promise<StreamingTiming> {
  const controller = new AbortController();
  const t0 = performance.now();
  const file = await toFile(pcm16ToWav(pcm, 16_000), 'utterance.wav', { type: 'audio/wav' });
  const transcript = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
  const t1 = performance.now();
  const stream = await client.chat.completions.create(
    {
      model: 'gpt-4o-mini',
      messages: [SYSTEM, { role: 'user', content: transcript.text }],
      stream: true,
    },
    { signal: controller.signal },
  );
  const chunker = new SentenceChunker();
  let first: string | undefined;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta?.content;
    if (!delta) continue;
    first = chunker.push(delta).map(stripMarkdown).find(Boolean);
    if (first) break;
  }
  first ??= chunker.flush().map(stripMarkdown).find(Boolean) ?? '';
  const t2 = performance.now();
  const response = await client.audio.speech
    .create(
      { model: 'gpt-4o-mini-tts', voice: 'alloy', input: first, response_format: 'pcm' },
      { signal: controller.signal },
    )
    .asResponse();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  const t3 = performance.now();
  controller.abort();
  await reader.cancel().catch(() => undefined);
  return { sttMs: t1 - t0, firstSentenceMs: t2 - t0, firstAudioMs: t3 - t0 };
}
