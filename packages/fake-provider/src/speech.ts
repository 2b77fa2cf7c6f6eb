/**
 * `POST {base}/audio/speech`: s16le 24 kHz mono PCM (`pcm`) or the same in a WAV header (`wav`),
 * streamed in network chunks whose boundaries split samples (as real providers' do), after
 * `latency.ttsTtfbMs` and optionally paced at real time. The default audio is {@link synthesizeTone}.
 */
import { isFailure, readJsonObject, str, type Endpoint, type Step } from './exchange.js';
import { SPEECH_SAMPLE_RATE, synthesizeTone } from './tone.js';
import type { SpeechRequest, SpeechScript } from './types.js';
import { pcm16ToWav } from './wav.js';

/** Bytes per second of 24 kHz s16le mono PCM. */
const SPEECH_BYTES_PER_SECOND = SPEECH_SAMPLE_RATE * 2;

/** Network chunk sizes for `total` bytes; with `oddSplits` (and an even `chunkBytes`) they alternate `chunkBytes ± 1`. */
function chunkSizes(total: number, chunkBytes: number, oddSplits: boolean): number[] {
  const base = Math.max(1, Math.floor(chunkBytes));
  const sizes: number[] = [];
  let at = 0;
  for (let i = 0; at < total; i++) {
    const size =
      oddSplits && base % 2 === 0 ? (i % 2 === 0 ? base + 1 : Math.max(1, base - 1)) : base;
    const take = Math.min(size, total - at);
    sizes.push(take);
    at += take;
  }
  return sizes;
}

export function registerSpeech({ app, base, options, latency, begin }: Endpoint): void {
  app.post(`${base}/audio/speech`, async (c) => {
    const ex = begin(c, 'speech');
    const body = await readJsonObject(c, ex);
    if (body instanceof Response) return body;
    const model = str(body['model']);
    const input = str(body['input']);
    const voice = str(body['voice']);
    const format = str(body['response_format']) ?? 'mp3';
    const speed = typeof body['speed'] === 'number' ? body['speed'] : undefined;
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!input)
      return ex.error(
        400,
        "Invalid 'input': string too short. Expected a string with minimum length 1.",
        'input',
      );
    if (!voice) return ex.error(400, "Missing required parameter: 'voice'.", 'voice');
    if (speed !== undefined && (speed < 0.25 || speed > 4))
      return ex.error(400, "Invalid 'speed': expected 0.25 to 4.", 'speed');
    if (format !== 'pcm' && format !== 'wav') {
      return ex.error(
        400,
        `The fake upstream only implements response_format 'pcm' and 'wav', not '${format}'.`,
        'response_format',
      );
    }
    const request: SpeechRequest = {
      model,
      input,
      voice,
      response_format: format,
      ...(speed !== undefined ? { speed } : {}),
    };
    const result = await (options.speech ?? ((): SpeechScript => ({})))(request);
    const contentType = format === 'wav' ? 'audio/wav' : 'audio/pcm';

    const steps = (script: SpeechScript): Step[] => {
      const pcm = script.pcm ?? synthesizeTone(input, SPEECH_SAMPLE_RATE, speed ?? 1);
      const bytes = format === 'wav' ? pcm16ToWav(pcm, SPEECH_SAMPLE_RATE) : pcm;
      const ttfb = latency.ttsTtfbMs ?? 0;
      const out: Step[] = [];
      let offset = 0;
      for (const size of chunkSizes(
        bytes.byteLength,
        script.chunkBytes ?? 4800,
        script.oddSplits ?? true,
      )) {
        const at = ttfb + (latency.ttsRealtime ? (offset / SPEECH_BYTES_PER_SECOND) * 1000 : 0);
        out.push({ data: bytes.subarray(offset, offset + size), at });
        offset += size;
      }
      return out;
    };

    if (isFailure(result)) return ex.failure(result, () => ({ steps: steps({}), contentType }));
    return ex.stream(steps(result), contentType);
  });
}
