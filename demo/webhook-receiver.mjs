#!/usr/bin/env node
// A helpdesk's end of the relay's webhooks, for the demo (README: "Worked example: the demo clinic,
// end to end"). It checks each request's signature with the README's snippet and prints the event.
//
//   DEMO_WEBHOOK_SECRET=… node demo/webhook-receiver.mjs [port]     (default 8788; 0 picks one)
//
// Answers 204 to a correctly signed event, 401 to anything else. A repeated `webhook-id` (delivery
// is at least once) is answered 204 and not printed again.
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';

// The README's verification snippet ("Webhooks"); only its formatting differs.
export function verifyWebhook(secret, headers, rawBody) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false; // replayed or stale
  const expected =
    'v1,' + createHmac('sha256', secret).update(`${id}.${timestamp}.${rawBody}`).digest('base64');
  return String(headers['webhook-signature'])
    .split(' ')
    .some(
      (s) => s.length === expected.length && timingSafeEqual(Buffer.from(s), Buffer.from(expected)),
    );
}

const secret = process.env.DEMO_WEBHOOK_SECRET ?? '';
if (secret.length < 16) {
  process.stderr.write(
    'webhook-receiver: set DEMO_WEBHOOK_SECRET (at least 16 characters), the same value the relay gets\n',
  );
  process.exit(1);
}
const port = Number(process.argv[2] ?? 8788);
const MAX_BODY_BYTES = 1024 * 1024;
const seen = new Set();

const server = createServer((req, res) => {
  if (req.method !== 'POST') return void res.writeHead(405).end();
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) req.destroy();
    else chunks.push(chunk);
  });
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    if (!verifyWebhook(secret, req.headers, raw)) {
      process.stdout.write(`rejected a request: bad or missing signature\n`);
      return void res.writeHead(401).end();
    }
    const id = String(req.headers['webhook-id']);
    res.writeHead(204).end();
    if (seen.has(id)) return;
    seen.add(id);
    if (seen.size > 10_000) seen.delete(seen.values().next().value);
    const event = JSON.parse(raw);
    process.stdout.write(
      `\nreceived ${event.type} (webhook-id ${id}, signature verified)\n${JSON.stringify(event, null, 2)}\n`,
    );
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(
    `webhook receiver listening on http://127.0.0.1:${server.address().port}/hooks\n`,
  );
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
