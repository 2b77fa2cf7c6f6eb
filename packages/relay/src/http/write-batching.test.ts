import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { WriteBatcher } from './write-batching.js';

describe('WriteBatcher', () => {
  let server: WebSocketServer;
  let url: string;
  const accepted: WebSocket[] = [];

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (ws) => accepted.push(ws));
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const address = server.address();
    assert.ok(typeof address === 'object' && address);
    url = `ws://127.0.0.1:${address.port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A connected pair: the server side's socket (whose writes are batched) and the client, collecting what it receives. */
  async function connect(): Promise<{
    serverSide: WebSocket;
    transport: Socket;
    received: (string | number)[];
    client: WebSocket;
  }> {
    const count = accepted.length;
    const client = new WebSocket(url);
    const received: (string | number)[] = [];
    client.on('message', (data, isBinary) =>
      received.push(isBinary ? (data as Buffer).byteLength : String(data)),
    );
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    while (accepted.length === count) await new Promise((resolve) => setImmediate(resolve));
    const serverSide = accepted[count] as WebSocket;
    return {
      serverSide,
      transport: (serverSide as unknown as { _socket: Socket })._socket,
      received,
      client,
    };
  }

  it('holds one turn of the event loop’s messages for a socket and writes them together, in order', async () => {
    const { serverSide, transport, received, client } = await connect();
    const batcher = new WriteBatcher();
    const send = batcher.sender(serverSide);
    send('{"type":"transcript"}');
    send(new Uint8Array(4800));
    send('{"type":"status"}');
    assert.equal(transport.writableCorked, 1, 'corked until the check phase');
    assert.ok(transport.writableLength > 4800, 'all three frames are buffered, not yet written');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(transport.writableCorked, 0);
    assert.equal(batcher.messages, 3);
    assert.equal(batcher.batches, 1, 'three messages, one batch');
    while (received.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(received, ['{"type":"transcript"}', 4800, '{"type":"status"}']);
    client.close();
  });

  it('starts a new batch in the next turn, and batches sockets independently', async () => {
    const a = await connect();
    const b = await connect();
    const batcher = new WriteBatcher();
    const sendA = batcher.sender(a.serverSide);
    const sendB = batcher.sender(b.serverSide);
    sendA('a1');
    sendB('b1');
    sendA('a2');
    await new Promise((resolve) => setImmediate(resolve));
    sendA('a3');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(batcher.batches, 3, '{a1,a2}, {b1}, {a3}');
    while (a.received.length < 3 || b.received.length < 1)
      await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(a.received, ['a1', 'a2', 'a3']);
    assert.deepEqual(b.received, ['b1']);
    a.client.close();
    b.client.close();
  });

  it('delivers held messages before a close sent in the same turn', async () => {
    const { serverSide, received, client } = await connect();
    const send = new WriteBatcher().sender(serverSide);
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    send('{"type":"error","fatal":true}');
    serverSide.close(1008, 'policy');
    assert.equal(await closed, 1008);
    assert.deepEqual(received, ['{"type":"error","fatal":true}']);
  });

  it('socket(): one object that counts bytes out by kind, batches, and reports ws’s own queue', async () => {
    const { serverSide, transport, received, client } = await connect();
    const batcher = new WriteBatcher();
    const counted = { audio: 0, json: 0 };
    const socket = batcher.socket(serverSide, {
      bytesOut: (kind, bytes) => (counted[kind] += bytes),
    });
    socket.send('{"type":"text_delta","delta":"é"}');
    socket.send(new Uint8Array(960));
    assert.equal(transport.writableCorked, 1, 'held until the check phase');
    assert.equal(socket.bufferedAmount, serverSide.bufferedAmount);
    assert.ok(socket.bufferedAmount > 960);
    assert.deepEqual(counted, { json: 34, audio: 960 }, 'UTF-8 bytes of text, bytes of audio');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(batcher.batches, 1);
    while (received.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(received, ['{"type":"text_delta","delta":"é"}', 960]);
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    socket.close(4006, 'slow');
    assert.equal(await closed, 4006);
  });

  it('does not throw when the socket was destroyed while messages were held', async () => {
    const { serverSide, transport, client } = await connect();
    const batcher = new WriteBatcher();
    const send = batcher.sender(serverSide);
    send('lost');
    transport.destroy();
    send('after');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(batcher.batches, 1);
    client.terminate();
  });
});
