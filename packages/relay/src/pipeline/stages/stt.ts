import { randomBytes } from 'node:crypto';
import { APIUserAbortError } from 'openai/core/error';
import { INPUT_SAMPLE_RATE } from '@voice-bot/protocol';
import { WAV_HEADER_BYTES, writeWavHeader } from '../wav.js';
import type { ProviderClient } from '../../providers/failover.js';
import { readBody } from '../../providers/upstream.js';

export interface TranscribeRequest {
  /** The utterance: 16 kHz PCM16 mono, as the frames it arrived in. */
  frames: readonly Uint8Array[];
  model: string;
  language?: string;
}

/** A `multipart/form-data` request body and the `Content-Type` (with its boundary) to send it with. */
export interface MultipartBody {
  body: Uint8Array;
  contentType: string;
}

/** Form values use CRLF line breaks (HTML's multipart/form-data encoding); names here are constants. */
const formValue = (value: string) => value.replace(/\r\n|\r|\n/g, '\r\n');

/**
 * The transcription upload as one prebuilt buffer: text fields, then `file` = a WAV of the
 * utterance's `frames` (16 kHz PCM16 mono), copied straight in. The SDK's `toFile()` +
 * `FormData` path copies the audio into a Blob and streams it back out in chunks (several
 * event-loop turns and copies per upload); this is one allocation and one copy.
 */
export function transcriptionBody(
  frames: readonly Uint8Array[],
  fields: Record<string, string>,
): MultipartBody {
  let pcmBytes = 0;
  for (const frame of frames) pcmBytes += frame.byteLength;
  const boundary = `voicebot-${randomBytes(16).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields))
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${formValue(value)}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="utterance.wav"\r\nContent-Type: audio/wav\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const headBytes = Buffer.byteLength(head);
  const body = Buffer.allocUnsafe(headBytes + WAV_HEADER_BYTES + pcmBytes + tail.length);
  body.write(head, 0, 'utf8');
  writeWavHeader(body, headBytes, pcmBytes, INPUT_SAMPLE_RATE);
  let offset = headBytes + WAV_HEADER_BYTES;
  for (const frame of frames) {
    body.set(frame, offset);
    offset += frame.byteLength;
  }
  body.write(tail, offset, 'latin1');
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A transcription response's JSON is read up to this size (a transcript of minutes of speech fits many times over). */
const RESPONSE_LIMIT = 4 * 2 ** 20;

/** One utterance of 16 kHz PCM16 → text, through `POST /audio/transcriptions` (multipart WAV upload). */
export async function transcribe(
  client: ProviderClient,
  request: TranscribeRequest,
  signal: AbortSignal,
): Promise<string> {
  const { body, contentType } = transcriptionBody(request.frames, {
    model: request.model,
    ...(request.language ? { language: request.language } : {}),
  });
  const response = await client.post('/audio/transcriptions', body, contentType, signal);
  let result: { text?: unknown } | undefined;
  try {
    result = JSON.parse(await readBody(response.body, RESPONSE_LIMIT)) as { text?: unknown };
  } catch (error) {
    if (signal.aborted) throw new APIUserAbortError();
    throw error;
  }
  if (typeof result?.text !== 'string') throw new Error('the transcription response has no text');
  return result.text.trim();
}
