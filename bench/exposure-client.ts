/**
 * Child process: the clients of the exposure section (bench/exposure.ts), in a process of their own
 * so that they do not share an event loop with the relay or the orchestrator.
 *
 * Sockets, over IPC:
 *   parent → `{type:'open', relayUrl, key, sessions}`  → `{type:'opened', opened, failures, setupMs}`
 *            (POST /v1/sessions, then /v1/talk with `voicebot.v1` + `bearer.<token>`, `start` with
 *            input `text`, output `audio`, until `ready`)
 *   parent → `{type:'ask', read}` → every session sends a `text` asking for the long reply; with
 *            `read: false` it then stops reading at once (`ws.pause()`: the TCP socket is paused and
 *            `ws` does not resume it on its own) → `{type:'asked'}`
 *   parent → `{type:'status'}` → `{type:'status', done, audioBytes, closed}`
 *   parent → `{type:'finish', drainMs}` → paused sessions resume and read what reaches them; every
 *            socket still open after `drainMs` is closed → `{type:'finished', sockets: SocketRecord[]}`
 *
 * Bodies:
 *   parent → `{type:'bodies', relayUrl, key, mode, n, chunkBytes, declaredBytes, maxMs}` → n raw
 *            HTTP/1.1 `POST /v1/sessions` at once, each on a fresh TCP connection (node:net), →
 *            `{type:'bodies-result', results: BodyRecord[]}`. Modes: `declared` (Content-Length
 *            `declaredBytes`, body streamed in `chunkBytes` writes as fast as the socket takes them,
 *            and on after the answer until the relay closes the connection or `maxMs`), `chunked`
 *            (the same without a length: Transfer-Encoding chunked), `normal` (the valid 201 request).
 */
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { openBenchSocket } from './bench-socket.js';
import { PROTOCOL_VERSION } from '@voice-bot/protocol';
import { ORIGIN, type IpcMessage } from './common.js';

export interface SocketRecord {
  index: number;
  /** reply audio bytes received (binary messages) */
  audioBytes: number;
  /** the reply's `done` arrived (ms after the ask), or undefined */
  doneMs: number | undefined;
  /** bytes this process had read from the kernel when it paused, and in all */
  bytesReadAtFinish: number;
  bytesRead: number;
  /** error codes received (`error` messages) */
  errors: string[];
  /** the WebSocket close code seen here (1006: the connection ended without a close frame) */
  closeCode: number | undefined;
  /** the connection was closed by the relay before `finish` closed it from here */
  closedByRelay: boolean;
}

export interface BodyRecord {
  mode: 'declared' | 'chunked' | 'normal';
  status: number | undefined;
  /** connect() → first byte of the response, ms */
  answerMs: number | undefined;
  /** body bytes the kernel had taken from this client when the answer arrived */
  writtenAtAnswer: number;
  /** body bytes the kernel took in all, until the relay closed the connection (or maxMs) */
  writtenTotal: number;
  /** connect() → the connection ended (reset, closed or given up), ms */
  endedMs: number | undefined;
  /** how it ended: 'reset' (ECONNRESET / EPIPE), 'closed', 'timeout' (still open after maxMs), 'done' (normal request answered) */
  ended: string;
  connectionClose: boolean;
  errorCode: string | undefined;
}

class Session {
  ws: WebSocket | undefined;
  audioBytes = 0;
  doneMs: number | undefined;
  errors: string[] = [];
  closeCode: number | undefined;
  closedByRelay = false;
  askedAt = 0;
  bytesReadAtFinish = 0;
  private closing = false;
  closed: Promise<void> = Promise.resolve();

  constructor(readonly index: number) {}

  async open(relayUrl: string, key: string): Promise<void> {
    const ws = await openBenchSocket(relayUrl, key);
    this.ws = ws;
    let ready = false;
    this.closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ready within 15 s')), 15_000);
      ws.once('unexpected-response', (_req, r) =>
        reject(new Error(`upgrade refused: ${r.statusCode}`)),
      );
      ws.once('open', () =>
        ws.send(
          JSON.stringify({
            type: 'start',
            protocol_version: PROTOCOL_VERSION,
            input: 'text',
            output: 'audio',
          }),
        ),
      );
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          this.audioBytes += (data as Buffer).byteLength;
          return;
        }
        const text = String(data);
        if (!ready) {
          if (text.includes('"ready"')) {
            ready = true;
            clearTimeout(timer);
            resolve();
          }
          return;
        }
        if (text.startsWith('{"type":"done"') || text.includes('"type":"done"'))
          this.doneMs ??= performance.now() - this.askedAt;
        else if (text.includes('"type":"error"'))
          this.errors.push(/"code":"([^"]+)"/.exec(text)?.[1] ?? 'unknown');
      });
      ws.on('error', () => undefined); // reported through 'close'
      ws.on('close', (code) => {
        clearTimeout(timer);
        this.closeCode = code;
        if (!this.closing) this.closedByRelay = true;
        reject(new Error('closed before ready'));
      });
    });
  }

  ask(read: boolean): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.askedAt = performance.now();
    ws.send(
      JSON.stringify({ type: 'text', text: `[s${this.index}] Please tell me a very long story.` }),
    );
    // Stop reading right after sending: the TCP socket is paused, so the kernel buffers fill and
    // then the relay's own queue for this socket does.
    if (!read) ws.pause();
  }

  get bytesRead(): number {
    const socket = (this.ws as unknown as { _socket?: Socket | null } | undefined)?._socket;
    return socket?.bytesRead ?? 0;
  }

  async finish(drainMs: number): Promise<void> {
    const ws = this.ws;
    if (!ws) return;
    this.bytesReadAtFinish = this.bytesRead;
    if (ws.isPaused) ws.resume();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, drainMs))]);
    if (ws.readyState !== WebSocket.CLOSED) {
      this.closing = true;
      ws.terminate();
      await this.closed;
    }
  }

  record(): SocketRecord {
    return {
      index: this.index,
      audioBytes: this.audioBytes,
      doneMs: this.doneMs,
      bytesReadAtFinish: this.bytesReadAtFinish,
      bytesRead: this.bytesRead,
      errors: this.errors,
      closeCode: this.closeCode,
      closedByRelay: this.closedByRelay,
    };
  }
}

let sessions: Session[] = [];

async function openAll(
  relayUrl: string,
  key: string,
  n: number,
): Promise<{ opened: number; failures: string[]; setupMs: number }> {
  const started = performance.now();
  sessions = [];
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const s = new Session(next++);
      try {
        await s.open(relayUrl, key);
        sessions.push(s);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(20, n) }, worker));
  sessions.sort((a, b) => a.index - b.index);
  return { opened: sessions.length, failures, setupMs: performance.now() - started };
}

// ───────────────────────────── oversized bodies ─────────────────────────────

interface BodiesConfig {
  relayUrl: string;
  key: string;
  mode: BodyRecord['mode'];
  n: number;
  chunkBytes: number;
  declaredBytes: number;
  maxMs: number;
}

function oneBody(c: BodiesConfig, chunk: Buffer): Promise<BodyRecord> {
  const url = new URL(c.relayUrl);
  const record: BodyRecord = {
    mode: c.mode,
    status: undefined,
    answerMs: undefined,
    writtenAtAnswer: 0,
    writtenTotal: 0,
    endedMs: undefined,
    ended: 'timeout',
    connectionClose: false,
    errorCode: undefined,
  };
  return new Promise((resolve) => {
    const t0 = performance.now();
    // Half-open allowed: the relay's FIN after its answer must not stop the writes here (an
    // uploader keeps sending until the connection is reset).
    const socket = connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true });
    socket.setNoDelay(true);
    // A write that fails because the relay reset the connection must not destroy the socket: the
    // answer may be in its receive queue still (the kernel keeps it; Node would discard it with
    // the handle). So neither side destroys the socket on an error (`errorOrDestroy` looks at
    // both); the read side reads on until the reset reaches it, and `end` destroys the socket.
    const states = socket as unknown as {
      _writableState: { autoDestroy: boolean };
      _readableState: { autoDestroy: boolean };
    };
    states._writableState.autoDestroy = false;
    states._readableState.autoDestroy = false;
    let response = '';
    let completed = 0; // body bytes of finished writes
    let inFlight = 0; // bytes of the write libuv is working on
    let finished = false;
    /** body bytes the kernel has taken: finished writes + the part of the current one libuv has written */
    const accepted = () => {
      const pending =
        (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle
          ?.writeQueueSize ?? inFlight;
      return completed + Math.max(0, inFlight - pending);
    };
    let endedAt: number | undefined;
    const end = (how: string, code?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(grace);
      record.writtenTotal = Math.max(accepted(), record.writtenAtAnswer);
      record.endedMs = (endedAt ?? performance.now()) - t0;
      record.ended = how;
      record.errorCode = code;
      socket.destroy();
      resolve(record);
    };
    const timer = setTimeout(() => end('timeout'), c.maxMs);
    let grace: NodeJS.Timeout | undefined;
    socket.on('data', (data: Buffer) => {
      if (record.answerMs === undefined) {
        record.answerMs = performance.now() - t0;
        record.writtenAtAnswer = c.mode === 'normal' ? completed : accepted();
      }
      response += data.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1];
      if (status) record.status = Number(status);
      if (/\r\nconnection: close\r\n/i.test(response)) record.connectionClose = true;
      if (c.mode === 'normal' && /\r\n\r\n/.test(response)) {
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(response)?.[1] ?? 0);
        if (response.length - response.indexOf('\r\n\r\n') - 4 >= length) end('done');
      }
    });
    // The connection ended at the first error (a failed write or read) or close; what is still in
    // the receive queue is read during a short grace before the record is closed.
    let errorCode: string | undefined;
    const how = () =>
      errorCode === undefined
        ? 'closed'
        : errorCode === 'ECONNRESET' || errorCode === 'EPIPE'
          ? 'reset'
          : 'error';
    socket.on('error', (error: NodeJS.ErrnoException) => {
      errorCode ??= error.code ?? 'error';
      endedAt ??= performance.now();
      grace ??= setTimeout(() => end(how(), errorCode), 200);
    });
    socket.on('end', () => {
      if (c.mode === 'normal' || completed >= c.declaredBytes) end('closed');
    });
    socket.on('close', () => {
      endedAt ??= performance.now();
      end(how(), errorCode);
    });
    socket.once('connect', async () => {
      const head = [
        'POST /v1/sessions HTTP/1.1',
        `Host: ${url.host}`,
        `Origin: ${ORIGIN}`,
        'Content-Type: application/json',
        ...(c.mode === 'declared'
          ? [`Content-Length: ${c.declaredBytes}`]
          : c.mode === 'chunked'
            ? ['Transfer-Encoding: chunked']
            : []),
      ];
      if (c.mode === 'normal') {
        const body = Buffer.from(JSON.stringify({ key: c.key }));
        socket.write(`${[...head, `Content-Length: ${body.byteLength}`].join('\r\n')}\r\n\r\n`);
        socket.write(body, () => (completed = body.byteLength));
        return;
      }
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      // As fast as the socket takes them: the next write starts when the previous one is in the kernel.
      while (!finished && completed < c.declaredBytes) {
        inFlight = chunk.byteLength;
        const error = await new Promise<Error | null | undefined>((r) => socket.write(chunk, r));
        inFlight = 0;
        if (error || finished || errorCode !== undefined) break;
        completed += chunk.byteLength;
      }
    });
  });
}

async function bodies(c: BodiesConfig): Promise<BodyRecord[]> {
  const payload = Buffer.alloc(c.chunkBytes, 0x61); // 'a': not JSON, never meant to be parsed
  const chunk =
    c.mode === 'chunked'
      ? Buffer.concat([
          Buffer.from(`${c.chunkBytes.toString(16)}\r\n`),
          payload,
          Buffer.from('\r\n'),
        ])
      : payload;
  return Promise.all(Array.from({ length: c.n }, () => oneBody(c, chunk)));
}

process.on('message', (m: IpcMessage) => {
  void (async () => {
    try {
      if (m.type === 'open') {
        const r = await openAll(String(m.relayUrl), String(m.key), Number(m.sessions));
        process.send?.({ type: 'opened', ...r });
      } else if (m.type === 'ask') {
        for (const s of sessions) s.ask(Boolean(m.read));
        process.send?.({ type: 'asked' });
      } else if (m.type === 'status') {
        process.send?.({
          type: 'status',
          done: sessions.filter((s) => s.doneMs !== undefined).length,
          audioBytes: sessions.reduce((n, s) => n + s.audioBytes, 0),
          closed: sessions.filter((s) => s.ws?.readyState === WebSocket.CLOSED).length,
        });
      } else if (m.type === 'finish') {
        await Promise.all(sessions.map((s) => s.finish(Number(m.drainMs))));
        process.send?.({ type: 'finished', sockets: sessions.map((s) => s.record()) });
        sessions = [];
      } else if (m.type === 'bodies') {
        process.send?.({
          type: 'bodies-result',
          results: await bodies(m as unknown as BodiesConfig),
        });
      } else if (m.type === 'exit') process.exit(0);
    } catch (error) {
      process.send?.({ type: 'failed', error: (error as Error).stack ?? String(error) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'alive' });
