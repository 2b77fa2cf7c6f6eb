/**
 * `POST {base}/audio/transcriptions`: multipart upload of a WAV file (the only format the fake
 * decodes), answered after `latency.sttMs` in any of OpenAI's response formats. The default
 * transcript says only what it can honestly know: how long the audio was.
 */
import { encoder, isFailure, str, type Endpoint } from './exchange.js';
import type { TranscriptionRequest, WavInfo } from './types.js';
import { parseWav } from './wav.js';

function defaultTranscript(req: TranscriptionRequest): string {
  return `I heard ${(req.wav.durationMs / 1000).toFixed(1)} seconds of audio.`;
}

export function registerTranscription({ app, base, options, latency, begin }: Endpoint): void {
  app.post(`${base}/audio/transcriptions`, async (c) => {
    const ex = begin(c, 'transcription');
    let form: FormData;
    try {
      form = await c.req.raw.formData();
    } catch {
      ex.received(null);
      return ex.error(400, 'Could not parse multipart form data.');
    }
    const file = form.get('file');
    const model = str(form.get('model')) ?? '';
    const language = str(form.get('language'));
    const prompt = str(form.get('prompt'));
    const responseFormat = str(form.get('response_format')) ?? 'json';
    const meta = {
      model,
      ...(language !== undefined ? { language } : {}),
      ...(prompt !== undefined ? { prompt } : {}),
      ...(form.has('response_format') ? { response_format: responseFormat } : {}),
      fileName: typeof file === 'object' && file !== null ? file.name : '',
    };
    if (typeof file !== 'object' || file === null) {
      ex.received(meta);
      return ex.error(400, "Missing required parameter: 'file'.", 'file');
    }
    let wav: WavInfo;
    try {
      wav = parseWav(new Uint8Array(await file.arrayBuffer()));
    } catch (error) {
      ex.received({ ...meta, fileBytes: file.size });
      const reason = error instanceof Error ? error.message : String(error);
      return ex.error(400, `Invalid file format: ${reason}. The fake upstream only decodes WAV.`);
    }
    const { samples: _samples, ...wavMeta } = wav;
    ex.received({ ...meta, wav: wavMeta });
    if (!model) return ex.error(400, "Missing required parameter: 'model'.", 'model');
    if (!['json', 'text', 'verbose_json', 'srt', 'vtt'].includes(responseFormat)) {
      return ex.error(
        400,
        `Invalid value for 'response_format': ${responseFormat}.`,
        'response_format',
      );
    }
    const request: TranscriptionRequest = { ...meta, wav };
    const result = await (options.transcribe ?? defaultTranscript)(request);
    const seconds = wav.durationMs / 1000;
    const render = (text: string): { body: string; contentType: string } => {
      const usage = { type: 'duration', seconds: Math.ceil(seconds) };
      switch (responseFormat) {
        case 'text':
          return { body: `${text}\n`, contentType: 'text/plain; charset=utf-8' };
        case 'verbose_json':
          return {
            body: JSON.stringify({
              task: 'transcribe',
              language: language ?? 'english',
              duration: seconds,
              text,
              segments: [],
              usage,
            }),
            contentType: 'application/json',
          };
        case 'srt':
        case 'vtt': {
          const stamp = (s: number, sep: string) =>
            `${new Date(s * 1000).toISOString().slice(11, 19)}${sep}${String(Math.round((s % 1) * 1000)).padStart(3, '0')}`;
          const cue = `${stamp(0, responseFormat === 'srt' ? ',' : '.')} --> ${stamp(seconds, responseFormat === 'srt' ? ',' : '.')}\n${text}\n`;
          return {
            body: responseFormat === 'srt' ? `1\n${cue}\n` : `WEBVTT\n\n${cue}\n`,
            contentType: 'text/plain; charset=utf-8',
          };
        }
        default:
          return { body: JSON.stringify({ text, usage }), contentType: 'application/json' };
      }
    };
    if (isFailure(result)) {
      return ex.failure(result, () => {
        const { body, contentType } = render(defaultTranscript(request));
        return { steps: [{ data: encoder.encode(body), at: latency.sttMs ?? 0 }], contentType };
      });
    }
    const { body, contentType } = render(result);
    return ex.respond(latency.sttMs ?? 0, body, contentType);
  });
}
