import { VoiceBotError, assetError, micError } from '../errors.js';
import { DEFAULT_OUTPUT_SAMPLE_RATE, INPUT_SAMPLE_RATE } from '../protocol/index.js';

export interface MicOptions {
  echoCancellation?: boolean;
  noiseSuppression?: boolean;
  autoGainControl?: boolean;
  deviceId?: string;
}

export interface PlaybackReport {
  turnId: number;
  playedMs: number;
}

/** How a turn's playback went (with `drained` and `stopped`). */
export interface PlaybackStats {
  /** Times the reply's audio ran out before its end (audible gaps). */
  underruns: number;
  /** The jitter buffer's target after the turn (0: no jitter buffer). */
  targetMs: number;
}

/** The playback worklet's jitter buffer (see playback-processor.js). */
export interface JitterSettings {
  targetMs?: number;
  minMs?: number;
  maxMs?: number;
}

export interface AudioEngineHandlers {
  /**
   * A 20 ms frame of 16 kHz PCM16 from the microphone, with its RMS level (0..1) and the RMS of
   * the bot's playback during the same time (the echo reference).
   */
  onFrame(pcm: Int16Array, level: number, referenceLevel: number): void;
  onPlayed(report: PlaybackReport & { level: number }): void;
  onDrained(report: PlaybackReport & Partial<PlaybackStats>): void;
}

type PlaybackMessage =
  | { type: 'played'; turnId: number; playedMs: number; level: number }
  | ({ type: 'drained'; turnId: number; playedMs: number } & Partial<PlaybackStats>)
  | ({ type: 'stopped'; turnId: number; playedMs: number } & Partial<PlaybackStats>)
  | { type: 'overflow'; turnId: number; droppedMs: number };

type CaptureMessage =
  | { type: 'audio'; pcm: ArrayBuffer; level: number; refLevel: number }
  | { type: 'level'; level: number }
  | { type: 'flushed' };

/**
 * The AudioWorklet modules, self-contained files beside this module in `dist/` (`worklets/`).
 * Written as `new URL('./…', import.meta.url)` so that Vite and webpack emit them with the app
 * (Rollup with an import-meta-assets plugin); with `assetBaseUrl` they are `worklets/` under it.
 */
export function workletUrls(assetBaseUrl?: string | URL): { capture: string; playback: string } {
  if (assetBaseUrl === undefined) {
    return {
      capture: new URL('./worklets/capture-processor.js', import.meta.url).href,
      playback: new URL('./worklets/playback-processor.js', import.meta.url).href,
    };
  }
  let base = String(assetBaseUrl);
  if (!base.endsWith('/')) base += '/';
  const resolved = new URL(base, typeof location === 'undefined' ? undefined : location.href);
  return {
    capture: new URL('worklets/capture-processor.js', resolved).href,
    playback: new URL('worklets/playback-processor.js', resolved).href,
  };
}

/**
 * The page's audio graph: microphone → capture worklet (mono, 16 kHz PCM16 frames) and
 * playback worklet (24 kHz PCM16 ring buffer) → speakers. Worklets load as files (beside this
 * module, or under `assetBaseUrl`), never `blob:` URLs, so strict CSPs work.
 */
export class AudioEngine {
  /** @internal The microphone (client/devices.ts moves the capture to another one). */
  stream: MediaStream | undefined;
  /** @internal */
  source: MediaStreamAudioSourceNode | undefined;
  /** @internal */
  capture: AudioWorkletNode | undefined;
  /** @internal The replies' audio (the output level and `outputStream()` tap it). */
  playback: AudioWorkletNode | undefined;
  private pendingStop: ((report: PlaybackReport & Partial<PlaybackStats>) => void) | undefined;
  /** @internal The element playing the replies while a microphone is open (`setSinkId` goes to it). */
  speaker: HTMLAudioElement | undefined;
  /** @internal `outputStream()`: the replies' audio as a MediaStream. */
  outputTap: MediaStreamAudioDestinationNode | undefined;
  private closed = false;

  private constructor(
    readonly context: AudioContext,
    private readonly handlers: AudioEngineHandlers,
  ) {}

  /**
   * Call synchronously from a user gesture (click): the AudioContext is created and resumed
   * before the first `await`, which browsers (iOS Safari above all) require.
   */
  static open(options: {
    assetBaseUrl?: string | URL | undefined;
    mic: MicOptions | false;
    /** The replies' jitter buffer; undefined: none (each chunk plays as it arrives). */
    jitter?: JitterSettings | undefined;
    handlers: AudioEngineHandlers;
  }): Promise<AudioEngine> {
    if (typeof AudioContext === 'undefined' || typeof AudioWorkletNode === 'undefined') {
      return Promise.reject(
        new VoiceBotError(
          'audio_unsupported',
          'This browser cannot play or record audio here (Web Audio with AudioWorklet is required).',
        ),
      );
    }
    const context = new AudioContext({ latencyHint: 'interactive' });
    const resumed = context.resume();
    const audioSession = (navigator as Navigator & { audioSession?: { type: string } })
      .audioSession;
    // iOS 17+: `playback` plays through the silent switch; `play-and-record` keeps the mic's route.
    if (audioSession) audioSession.type = options.mic ? 'play-and-record' : 'playback';
    const engine = new AudioEngine(context, options.handlers);
    return engine.init(options, resumed).catch(async (error: unknown) => {
      await engine.close();
      throw error;
    });
  }

  private async init(
    options: {
      assetBaseUrl?: string | URL | undefined;
      mic: MicOptions | false;
      jitter?: JitterSettings | undefined;
    },
    resumed: Promise<void>,
  ): Promise<AudioEngine> {
    const urls = workletUrls(options.assetBaseUrl);
    const micPromise = options.mic ? this.openMic(options.mic) : Promise.resolve(undefined);
    // A quick refusal must not surface as an unhandled rejection while the worklets load.
    micPromise.catch(() => undefined);
    await Promise.all([
      this.addWorklet(urls.playback, 'its audio playback worklet'),
      options.mic ? this.addWorklet(urls.capture, 'its microphone worklet') : undefined,
    ]);
    this.playback = new AudioWorkletNode(this.context, 'voicebot-playback', {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: {
        inputRate: DEFAULT_OUTPUT_SAMPLE_RATE,
        ...(options.jitter ? { jitter: options.jitter } : {}),
      },
    });
    this.playback.port.onmessage = (event: MessageEvent<PlaybackMessage>) =>
      this.onPlaybackMessage(event.data);
    this.stream = await micPromise;
    await this.routePlayback(this.stream !== undefined);
    if (this.stream) {
      this.source = this.context.createMediaStreamSource(this.stream);
      this.capture = new AudioWorkletNode(this.context, 'voicebot-capture', {
        numberOfInputs: 2,
        numberOfOutputs: 0,
        processorOptions: { frameMs: 20, targetRate: INPUT_SAMPLE_RATE },
      });
      this.capture.port.onmessage = (event: MessageEvent<CaptureMessage>) => {
        const message = event.data;
        if (message.type === 'audio')
          this.handlers.onFrame(new Int16Array(message.pcm), message.level, message.refLevel);
      };
      this.source.connect(this.capture, 0, 0);
      // What the bot says, as the echo reference for barge-in decisions.
      this.playback.connect(this.capture, 0, 1);
    }
    await resumed.catch(() => undefined);
    if (this.context.state !== 'running') {
      throw new VoiceBotError(
        'audio_blocked',
        'The browser blocked audio until you interact with the page. Click the button again.',
      );
    }
    return this;
  }

  /** Loads one worklet module; a failure becomes `assets_unavailable`, naming the URL. */
  private async addWorklet(url: string, what: string): Promise<void> {
    try {
      await this.context.audioWorklet.addModule(url);
    } catch (cause) {
      throw await assetError(url, what, cause);
    }
  }

  /**
   * With a microphone open, play through a MediaStream into an <audio> element: Chrome's echo
   * canceller takes media-element output as its reference, but not Web Audio's destination.
   */
  private async routePlayback(viaElement: boolean): Promise<void> {
    const playback = this.playback as AudioWorkletNode;
    if (viaElement && typeof Audio !== 'undefined') {
      const destination = this.context.createMediaStreamDestination();
      const speaker = new Audio();
      speaker.srcObject = destination.stream;
      playback.connect(destination);
      try {
        await speaker.play();
        this.speaker = speaker;
        return;
      } catch {
        playback.disconnect(destination);
      }
    }
    playback.connect(this.context.destination);
  }

  /** @internal */
  async openMic(mic: MicOptions): Promise<MediaStream> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new VoiceBotError(
        'mic_unavailable',
        'Microphone access needs a secure (https) page in a browser that supports it.',
      );
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: mic.echoCancellation ?? true,
          noiseSuppression: mic.noiseSuppression ?? true,
          autoGainControl: mic.autoGainControl ?? true,
          channelCount: 1,
          ...(mic.deviceId ? { deviceId: { exact: mic.deviceId } } : {}),
        },
      });
    } catch (error) {
      throw micError(error);
    }
  }

  private onPlaybackMessage(message: PlaybackMessage): void {
    switch (message.type) {
      case 'played':
        this.handlers.onPlayed({
          turnId: message.turnId,
          playedMs: message.playedMs,
          level: message.level,
        });
        return;
      case 'drained':
        this.handlers.onDrained(message);
        return;
      case 'stopped': {
        const resolve = this.pendingStop;
        this.pendingStop = undefined;
        resolve?.(message);
        return;
      }
      case 'overflow':
        return;
    }
  }

  get hasMic(): boolean {
    return this.stream !== undefined;
  }

  /** Queues 24 kHz PCM16 for playback (at once, or once the jitter buffer's target is reached). */
  play(pcm: ArrayBuffer, turnId: number): void {
    this.playback?.port.postMessage({ type: 'push', pcm, turnId }, [pcm]);
  }

  /** The turn's audio is complete: playback drains once it has played it (no more is waited for). */
  endTurn(turnId: number): void {
    this.playback?.port.postMessage({ type: 'end', turnId });
  }

  /** Silences playback from the next render quantum; resolves with what was actually played. */
  stopPlayback(): Promise<PlaybackReport & Partial<PlaybackStats>> {
    const playback = this.playback;
    if (!playback) return Promise.resolve({ turnId: -1, playedMs: 0 });
    return new Promise((resolve) => {
      const previous = this.pendingStop;
      this.pendingStop = (report) => {
        previous?.(report);
        resolve(report);
      };
      playback.port.postMessage({ type: 'stop' });
    });
  }

  setMuted(muted: boolean): void {
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !muted;
    this.capture?.port.postMessage({ type: 'mute', muted });
  }

  /** Releases the microphone, the worklets and the AudioContext. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pendingStop?.({ turnId: -1, playedMs: 0 });
    this.pendingStop = undefined;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.source?.disconnect();
    this.capture?.port.close();
    this.capture?.disconnect();
    this.playback?.port.close();
    this.playback?.disconnect();
    if (this.speaker) {
      this.speaker.pause();
      this.speaker.srcObject = null;
    }
    if (this.context.state !== 'closed') await this.context.close().catch(() => undefined);
  }
}
