/**
 * How long an abort takes to reach the upstream, Node's `fetch` against the relay's
 * `createUpstreamFetch` (undici `request`): four streaming responses from a server in another
 * process, one `AbortController` aborted, time until the server has seen each of the four
 * connections close (clocks: `performance.timeOrigin + now()` in both processes). Alternating
 * variants, `--reps=60` rounds.
 *
 *   node --import tsx bench/abort-ab.ts [--reps=60]
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUpstreamFetch } from '@voice-bot/relay';

const STREAMS = 4;
const wallClock = () => performance.timeOrigin + performance.now();

if (process.argv.includes('--server')) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(4800));
    const timer = setInterval(() => res.write(Buffer.alloc(4800)), 100);
    req.socket.once('close', () => {
      clearInterval(timer);
      process.send?.({ closedAt: wallClock() });
    });
  });
  server.listen(0, '127.0.0.1', () =>
    process.send?.({ port: (server.address() as AddressInfo).port }),
  );
  process.on('disconnect', () => process.exit(0));
} else {
  const reps = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 60);
  const child = fork(new URL(import.meta.url).pathname, ['--server'], {
    execArgv: process.execArgv,
  });
  const closes: number[] = [];
  const port = await new Promise<number>((resolve) =>
    child.on('message', (m: { port?: number; closedAt?: number }) => {
      if (m.port) resolve(m.port);
      if (m.closedAt) closes.push(m.closedAt);
    }),
  );
  const variants: Record<string, typeof fetch> = {
    'Node fetch': globalThis.fetch,
    'undici request (createUpstreamFetch)': createUpstreamFetch(),
  };
  const samples: Record<string, number[]> = Object.fromEntries(
    Object.keys(variants).map((name) => [name, []]),
  );
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, upstreamFetch] of Object.entries(variants)) {
      const controller = new AbortController();
      for (let i = 0; i < STREAMS; i++) {
        const reader = (
          (await upstreamFetch(`http://127.0.0.1:${port}/`, { signal: controller.signal }))
            .body as ReadableStream<Uint8Array>
        ).getReader();
        await reader.read();
        reader.read().catch(() => undefined);
      }
      closes.length = 0;
      await new Promise((resolve) => setTimeout(resolve, 30));
      const abortedAt = wallClock();
      controller.abort();
      while (closes.length < STREAMS) await new Promise((resolve) => setTimeout(resolve, 1));
      samples[name]?.push(...closes.map((t) => t - abortedAt));
    }
  }
  child.kill();
  const at = (sorted: number[], q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
  for (const [name, values] of Object.entries(samples)) {
    values.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(38)} abort → upstream sees the close, ms: p50 ${at(values, 0.5).toFixed(2)}  p90 ${at(values, 0.9).toFixed(2)}  max ${at(values, 1).toFixed(2)}  (n=${values.length})`,
    );
  }
}
