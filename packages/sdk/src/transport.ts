import { Emitter } from './emitter.js';
import { VoiceBotError, type VoiceBotErrorCode } from './errors.js';
import {
  CLOSE_CODES,
  SESSIONS_PATH,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  encodeClientMessage,
  parseServerMessage,
  type ClientMessageInput,
  type ErrorBody,
  type ServerMessage,
  type SessionGrant,
} from './protocol/index.js';

export interface ReconnectOptions {
  /** Attempts after an unexpected close before giving up (default 6). */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface TransportOptions {
  relayUrl: string;
  clientKey: string;
  bot?: string;
  /** A signed-in visitor's token (from the site's server), or a function asked before each session request. */
  visitorToken?: string | (() => string | undefined | Promise<string | undefined>);
  reconnect?: ReconnectOptions;
  /** Keepalive interval (default 20 s): proxies close idle sockets. */
  pingIntervalMs?: number;
  /** How long the session request and the WebSocket handshake may each take (default 10 s). */
  connectTimeoutMs?: number;
  WebSocketImpl?: typeof WebSocket;
  fetchImpl?: typeof fetch;
}

export interface TransportEvents {
  /** Connected (first time or after a reconnect): send `start` now. */
  open: { reconnect: boolean };
  message: ServerMessage;
  audio: ArrayBuffer;
  /** The socket closed; `reconnecting` says whether another attempt follows. */
  close: { code: number; reason: string; reconnecting: boolean };
  error: VoiceBotError;
}

/**
 * What the client needs of its relay connection. `RelayTransport` is the one the SDK uses; the
 * `transport` option can wrap or replace it (a custom relay path, a test that drops the socket).
 */
export interface VoiceBotTransport {
  /** The socket is open. */
  readonly connected: boolean;
  /** Opens the socket (joining an open in progress); rejects with a typed error when the relay refuses. */
  connect(): Promise<void>;
  /** Sends a JSON message; false when not connected. */
  send(message: ClientMessageInput): boolean;
  /** Sends 16 kHz PCM16 audio; false when not connected. */
  sendAudio(pcm: ArrayBuffer | ArrayBufferView): boolean;
  /** Closes for good (no reconnect), sending `stop` first when open. */
  close(): void;
  on<K extends keyof TransportEvents>(
    event: K,
    listener: (payload: TransportEvents[K]) => void,
  ): () => void;
}

/** Makes the client's transport from the client's options (`relayUrl`, `clientKey`, `bot`, `reconnect`, `connectTimeoutMs`). */
export type TransportFactory = (options: TransportOptions) => VoiceBotTransport;

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set<number>([
  CLOSE_CODES.normal,
  CLOSE_CODES.policyViolation,
  CLOSE_CODES.messageTooBig,
  CLOSE_CODES.protocolVersion,
  CLOSE_CODES.idleTimeout,
  CLOSE_CODES.keyRevoked,
  CLOSE_CODES.sessionTooLong,
  CLOSE_CODES.quotaExceeded,
]);

/**
 * The relay connection: fetches a session token, opens `/v1/talk` with it, keeps the socket alive
 * and reconnects with exponential backoff and jitter when it drops unexpectedly.
 */
export class RelayTransport extends Emitter<TransportEvents> implements VoiceBotTransport {
  private socket: WebSocket | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempts = 0;
  private closedByUs = false;
  private everOpened = false;
  /** Bumped by `close()`: an open that started before it must not leave a socket behind. */
  private generation = 0;
  /** The open in progress: a second `connect()` (or a retry) joins it rather than opening another socket. */
  private opening: Promise<void> | undefined;

  constructor(private readonly options: TransportOptions) {
    super();
    const timeout = options.connectTimeoutMs;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0))
      throw new RangeError(`connectTimeoutMs must be a positive number of ms, got ${timeout}`);
  }

  get connected(): boolean {
    return this.socket?.readyState === 1;
  }

  /** Resolves once the socket is open; rejects with a typed error when the relay refuses us. */
  async connect(): Promise<void> {
    this.closedByUs = false;
    if (this.connected) return;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.open();
  }

  /** One socket at a time: turn ids belong to a socket, so two open at once would mix them up. */
  private open(): Promise<void> {
    this.opening ??= this.openSocket().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? 10_000;
  }

  private async requestToken(): Promise<SessionGrant> {
    const fetchImpl = this.options.fetchImpl ?? fetch;
    const base = this.options.relayUrl.replace(/\/+$/, '');
    let response: Response;
    try {
      const visitor = this.options.visitorToken;
      response = await fetchImpl(`${base}${SESSIONS_PATH}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.options.clientKey}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          bot: this.options.bot,
          visitor_token: typeof visitor == 'function' ? await visitor() : visitor,
        }),
        signal: AbortSignal.timeout(this.connectTimeoutMs),
      });
    } catch (cause) {
      throw new VoiceBotError(
        'relay_unreachable',
        'The voice assistant server could not be reached.',
        { cause },
      );
    }
    const body = (await response.json().catch(() => ({}))) as Partial<SessionGrant & ErrorBody>;
    if (!response.ok || !body.token || !body.ws_url) {
      const code: VoiceBotErrorCode = body.error?.code ?? 'relay_unreachable';
      throw new VoiceBotError(
        code,
        body.error?.message ?? `The voice assistant server answered ${response.status}.`,
        {
          status: response.status,
          fatal: response.status === 401 || response.status === 403,
        },
      );
    }
    return body as SessionGrant;
  }

  private async openSocket(): Promise<void> {
    const generation = this.generation;
    const grant = await this.requestToken();
    if (generation !== this.generation)
      throw new VoiceBotError('not_connected', 'The connection was closed while it was opening.');
    const WebSocketImpl = this.options.WebSocketImpl ?? WebSocket;
    const socket = new WebSocketImpl(grant.ws_url, [
      SUBPROTOCOL,
      `${TOKEN_SUBPROTOCOL_PREFIX}${grant.token}`,
    ]);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      // A handshake nobody answers (a stalled proxy, a relay process that just died) would
      // otherwise wait for as long as the browser does.
      const timer = setTimeout(() => {
        settled = true;
        socket.removeEventListener('open', onOpen);
        socket.close();
        reject(
          new VoiceBotError(
            'relay_unreachable',
            `The voice assistant server did not answer within ${Math.round(this.connectTimeoutMs / 1000)} s.`,
          ),
        );
      }, this.connectTimeoutMs);
      const onOpen = () => {
        clearTimeout(timer);
        socket.removeEventListener('error', onError);
        resolve();
      };
      // Stays registered after a timeout: closing a socket that is still connecting fires `error`.
      const onError = () => {
        clearTimeout(timer);
        socket.removeEventListener('open', onOpen);
        if (!settled)
          reject(
            new VoiceBotError(
              'relay_unreachable',
              'The voice assistant server refused the connection.',
            ),
          );
        settled = true;
      };
      socket.addEventListener('open', onOpen, { once: true });
      socket.addEventListener('error', onError, { once: true });
    });
    if (generation !== this.generation) {
      socket.close(CLOSE_CODES.normal, 'client closed');
      throw new VoiceBotError('not_connected', 'The connection was closed while it was opening.');
    }
    const reconnect = this.everOpened;
    this.everOpened = true;
    this.attempts = 0;
    socket.addEventListener('message', (event: MessageEvent<unknown>) => {
      if (socket === this.socket) this.onMessage(event.data);
    });
    socket.addEventListener('close', (event) => this.onClose(socket, event.code, event.reason));
    this.startPing();
    this.emit('open', { reconnect });
  }

  private onMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.emit('audio', data);
      return;
    }
    if (typeof data !== 'string') return;
    let message: ServerMessage | undefined;
    try {
      message = parseServerMessage(data);
    } catch {
      return;
    }
    if (message) this.emit('message', message);
  }

  private startPing(): void {
    this.stopPing();
    const interval = this.options.pingIntervalMs ?? 20_000;
    this.pingTimer = setInterval(() => this.send({ type: 'ping', t: Date.now() }), interval);
  }

  private stopPing(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.stopPing();
    this.socket = undefined;
    const maxAttempts = this.options.reconnect?.maxAttempts ?? 6;
    const reconnecting =
      !this.closedByUs && !FINAL_CLOSE_CODES.has(code) && this.attempts < maxAttempts;
    this.emit('close', { code, reason, reconnecting });
    if (reconnecting) this.scheduleReconnect();
    else if (!this.closedByUs)
      this.emit(
        'error',
        new VoiceBotError('connection_lost', 'The connection to the voice assistant was lost.', {
          fatal: true,
        }),
      );
  }

  private scheduleReconnect(): void {
    const base = this.options.reconnect?.baseDelayMs ?? 500;
    const max = this.options.reconnect?.maxDelayMs ?? 8_000;
    const delay = Math.min(max, base * 2 ** this.attempts) * (0.5 + Math.random() * 0.5);
    this.attempts++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closedByUs || this.connected) return;
      this.open().catch((error: unknown) => {
        const typed =
          error instanceof VoiceBotError
            ? error
            : new VoiceBotError('relay_unreachable', String(error));
        const maxAttempts = this.options.reconnect?.maxAttempts ?? 6;
        if (!typed.fatal && this.attempts < maxAttempts) this.scheduleReconnect();
        else
          this.emit(
            'error',
            new VoiceBotError(typed.code, typed.message, { fatal: true, cause: typed }),
          );
      });
    }, delay);
  }

  send(message: ClientMessageInput): boolean {
    if (this.socket?.readyState !== 1) return false;
    this.socket.send(encodeClientMessage(message));
    return true;
  }

  sendAudio(pcm: ArrayBuffer | ArrayBufferView): boolean {
    if (this.socket?.readyState !== 1) return false;
    this.socket.send(pcm);
    return true;
  }

  close(): void {
    this.closedByUs = true;
    this.generation++;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopPing();
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState <= 1) {
      if (socket.readyState === 1) socket.send(encodeClientMessage({ type: 'stop' }));
      socket.close(CLOSE_CODES.normal, 'client closed');
    }
  }
}
