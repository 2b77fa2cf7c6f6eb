/** A local webhook receiver for tests, and the README's verification snippet as a function. */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './relay.js';

export type VerifyWebhook = (
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
) => boolean;

/** The `verifyWebhook` snippet of the README's "Webhooks" section, imported as a module. */
export async function readmeVerifier(): Promise<VerifyWebhook> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const match = /<!-- webhook-verify -->\n```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(match?.[1], 'README has the webhook verification snippet');
  const file = join(tmpdir(), `verify-webhook-${process.pid}-${Date.now()}.mjs`);
  await writeFile(file, match[1]);
  try {
    return ((await import(pathToFileURL(file).href)) as { verifyWebhook: VerifyWebhook })
      .verifyWebhook;
  } finally {
    await rm(file, { force: true });
  }
}

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The status the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Resolves once `count` requests matched `predicate`. */
  waitFor(
    count: number,
    predicate?: (r: ReceivedWebhook) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

/** Answers the first `failFirst` requests with 500, then 204. */
export async function startReceiver(failFirst = 0): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let waiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = received.length < failFirst ? 500 : 204;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), status });
      res.writeHead(status).end(status === 500 ? 'not now' : undefined);
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    async waitFor(count, predicate = () => true, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const matching = received.filter(predicate);
        if (matching.length >= count) return matching;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(`timed out waiting for ${count} webhooks; got ${received.length}`);
        await new Promise<void>((r) => {
          const timer = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(timer);
            r();
          });
        });
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
