/** `GET {base}/models`: the list of models, answered at once. */
import type { Endpoint } from './exchange.js';

const MODELS = [
  'whisper-1',
  'gpt-4o-mini-transcribe',
  'gpt-4o-mini',
  'gpt-4.1-mini',
  'tts-1',
  'gpt-4o-mini-tts',
];

export function registerModels({ app, base, begin }: Endpoint): void {
  app.get(`${base}/models`, (c) => {
    const ex = begin(c, 'models');
    ex.received(null);
    ex.complete(200);
    const created = 1_700_000_000;
    const data = MODELS.map((id) => ({
      id,
      object: 'model',
      created,
      owned_by: 'fake-upstream',
    }));
    return new Response(JSON.stringify({ object: 'list', data }), {
      headers: ex.headers('application/json'),
    });
  });
}
