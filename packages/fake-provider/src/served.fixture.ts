import { after, before } from 'node:test';
import OpenAI from 'openai';
import { createFakeUpstream } from './index.js';
import type { FakeUpstream, FakeUpstreamOptions } from './types.js';

/**
 * A fake upstream served on loopback for the file's tests, with the real `openai` client pointed
 * at it: `client()` and `url()` are ready inside tests (the server starts in `before`).
 */
export function servedFake(options?: FakeUpstreamOptions): {
  fake: FakeUpstream;
  client(): OpenAI;
  url(): string;
} {
  const fake = createFakeUpstream(options);
  let server: { url: string; close(): Promise<void> } | undefined;
  let client: OpenAI | undefined;
  before(async () => {
    server = await fake.listen();
    client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0, timeout: 3000 });
  });
  after(async () => {
    await server?.close();
  });
  return {
    fake,
    client: () => client as OpenAI,
    url: () => (server as { url: string }).url,
  };
}
