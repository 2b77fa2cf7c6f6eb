/**
 * A TCP load balancer for the fleet tests, as a deployment puts in front of its relays: each
 * connection goes to the next backend in turn (round robin, no stickiness); a backend that refuses
 * the connection is skipped. It proxies bytes, so WebSocket upgrades pass through unchanged.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Balancer {
  url: string;
  /** Which backend (index) each accepted connection went to, in order. */
  readonly routed: number[];
  close(): Promise<void>;
}

export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  let next = 0;
  const routed: number[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };

  const connect = (client: Socket, tried: number) => {
    if (tried >= backends.length) {
      client.destroy();
      return;
    }
    const index = next++ % backends.length;
    const upstream = createConnection({ host: '127.0.0.1', port: backends[index] as number });
    track(upstream);
    let connected = false;
    upstream.on('error', () => {
      if (connected) client.destroy();
      else if (!client.destroyed) connect(client, tried + 1);
    });
    upstream.once('connect', () => {
      connected = true;
      routed.push(index);
      upstream.on('close', () => client.destroy());
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    connect(client, 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routed,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
