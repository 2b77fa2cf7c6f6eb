import OpenAI, { toFile } from 'openai';
import { INPUT_SAMPLE_RATE } from '@voice-bot/sdk/protocol';
import { pcm16ToWav } from '../wav.js';

export interface TranscribeRequest {
  pcm: Uint8Array;
  model: string;
  language?: string;
}

/** One utterance of 16 kHz PCM16 → text, through `POST /audio/transcriptions` (multipart WAV upload). */
export async function transcribe(client: OpenAI, request: TranscribeRequest, signal: AbortSignal): Promise<string> {
  const wav = pcm16ToWav(request.pcm, INPUT_SAMPLE_RATE);
  const file = await toFile(wav, 'utterance.wav', { type: 'audio/wav' });
  const result = await client.audio.transcriptions.create(
    { file, model: request.model, ...(request.language ? { language: request.language } : {}) },
    { signal },
  );
  return result.text.trim();
}
