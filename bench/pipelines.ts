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
import { SentenceChunker, stripMarkdown } from '@voice-bot/relay';

/** RIFF/WAVE header + 16 kHz mono PCM16. */
export function wav16k(pcm: Uint8Array): Uint8Array {
  const out = new Uint8Array(44 + pcm.byteLength);
  const view = new DataView(out.buffer);
  const ascii = (offset: number, text: string) => [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + pcm.byteLength, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, 16_000, true);
  view.setUint32(28, 32_000, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  ascii(36, 'data');
  view.setUint32(40, pcm.byteLength, true);
  out.set(pcm, 44);
  return out;
}

export function upstreamClient(baseURL: string): OpenAI {
  return new OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0, timeout: 30_000 });
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
  const file = await toFile(wav16k(pcm), 'utterance.wav', { type: 'audio/wav' });
  const transcript = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
  const t1 = performance.now();
  const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [SYSTEM, { role: 'user', content: transcript.text }] });
  const reply = completion.choices[0]?.message.content ?? '';
  const t2 = performance.now();
  const response = await client.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: reply, response_format: 'pcm' }).asResponse();
  let firstByteAt: number | undefined;
  let audioBytes = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    firstByteAt ??= performance.now();
    audioBytes += chunk.byteLength;
  }
  const t4 = performance.now();
  return { sttMs: t1 - t0, llmMs: t2 - t1, firstByteMs: (firstByteAt ?? t4) - t0, completeMs: t4 - t0, audioBytes };
}

export interface StreamingTiming {
  sttMs: number;
  firstSentenceMs: number;
  firstAudioMs: number;
}

export async function directStreaming(client: OpenAI, pcm: Uint8Array): Promise<StreamingTiming> {
  const controller = new AbortController();
  const t0 = performance.now();
  const file = await toFile(wav16k(pcm), 'utterance.wav', { type: 'audio/wav' });
  const transcript = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
  const t1 = performance.now();
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [SYSTEM, { role: 'user', content: transcript.text }], stream: true },
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
    .create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: first, response_format: 'pcm' }, { signal: controller.signal })
    .asResponse();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  const t3 = performance.now();
  controller.abort();
  await reader.cancel().catch(() => undefined);
  return { sttMs: t1 - t0, firstSentenceMs: t2 - t0, firstAudioMs: t3 - t0 };
}
