/** The SDK transport against servers that never answer (it runs in Node here, with `ws` as its WebSocket). */
import assert from 'node:assert/strict';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { VoiceBotError } from '../packages/sdk/src/errors.js';
import { RelayTransport } from '../packages/sdk/src/transport.js';

/** An HTTP server whose `POST /v1/sessions` is answered by `answer` (or never, when it returns false). */
async function sessions(answer: (res: ServerResponse) => boolean) {
  const pending: IncomingMessage[] = [];
  const server = createHttpServer((req, res) => {
    if (!answer(res)) pending.push(req);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    pending,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Accepts TCP connections and never answers: a WebSocket handshake into the void. */
async function blackHole() {
  const sockets: Socket[] = [];
  const closed: Socket[] = [];
  const server = createTcpServer((socket) => {
    sockets.push(socket);
    socket.on('close', () => closed.push(socket));
    socket.on('error', () => undefined);
    socket.resume(); // reads (and ignores) the handshake, so the client's close is seen
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    wsUrl: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/talk`,
    sockets,
    closed,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const options = (relayUrl: string) => ({
  relayUrl,
  clientKey: 'vb_pk_test',
  connectTimeoutMs: 300,
  WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket,
});

test('a WebSocket handshake nobody answers fails after connectTimeoutMs, and the attempt is closed', async () => {
  const hole = await blackHole();
  const relay = await sessions((res) => {
    res
      .writeHead(201, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: 't', ws_url: hole.wsUrl }));
    return true;
  });
  try {
    const transport = new RelayTransport(options(relay.url));
    const started = performance.now();
    const error = await transport.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof VoiceBotError, String(error));
    assert.equal(error.code, 'relay_unreachable');
    assert.match(error.message, /did not answer/);
    assert.ok(performance.now() - started >= 290, 'it waited for the timeout');
    assert.equal(hole.sockets.length, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(hole.closed.length, 1, 'the stalled connection was given up, not left open');
  } finally {
    await relay.close();
    await hole.close();
  }
});

test('a session request nobody answers fails after connectTimeoutMs', async () => {
  const relay = await sessions(() => false);
  try {
    const transport = new RelayTransport(options(relay.url));
    const error = await transport.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof VoiceBotError, String(error));
    assert.equal(error.code, 'relay_unreachable');
    assert.equal(relay.pending.length, 1, 'the request reached the server and hung there');
  } finally {
    await relay.close();
  }
});

test('a connectTimeoutMs that is not a positive number is refused when the transport is made', () => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => new RelayTransport({ ...options('http://127.0.0.1:9'), connectTimeoutMs: bad }),
      RangeError,
    );
  }
});
