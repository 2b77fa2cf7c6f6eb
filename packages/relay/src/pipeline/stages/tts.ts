import type { Readable } from 'node:stream';
import { APIUserAbortError } from 'openai/core/error';
import { JSON_TYPE, discard, type UpstreamResponse } from '../../providers/upstream.js';
import type { ProviderClient } from '../../providers/failover.js';
import { Pcm16Framer } from './pcm.js';

export interface SpeechSettings {
  model: string;
  voice: string;
  speed?: number;
}

export interface SpokenSegment {
  index: number;
  text: string;
  /** PCM bytes of this segment forwarded to the client so far. */
  bytes: number;
  /** All of the segment's audio has been forwarded. */
  complete: boolean;
}

/** How the pipeline asks before it spends: a charge per request, and room on the client's socket. */
export interface SpeechBudget {
  /** Charges a request's characters before it is sent; false = refused (nothing is sent). */
  charge(text: string): boolean;
  /** Undefined when the client can take more audio; otherwise settles when it can. */
  room(): Promise<void> | undefined;
}

/** A request the budget refused. */
export class SpeechRefused extends Error {
  constructor() {
    super('speech synthesis refused by the quota');
  }
}

interface PendingSegment {
  segment: SpokenSegment;
  response?: Promise<UpstreamResponse>;
}

/**
 * Text-to-speech for a stream of sentence chunks: each chunk's request starts as soon as the chunk
 * is known (up to `lookahead` ahead of playback), and audio is forwarded strictly in chunk order as
 * the bytes arrive.
 */
export class SpeechPipeline {
  private readonly pending: PendingSegment[] = [];
  private started = 0;
  private consumed = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  readonly segments: SpokenSegment[] = [];
  firstRequestAt: number | undefined;
  firstByteAt: number | undefined;

  constructor(
    private readonly client: ProviderClient,
    private readonly settings: SpeechSettings,
    private readonly signal: AbortSignal,
    private readonly budget: SpeechBudget = { charge: () => true, room: () => undefined },
    private readonly lookahead = 3,
  ) {}

  enqueue(text: string): void {
    const segment: SpokenSegment = { index: this.segments.length, text, bytes: 0, complete: false };
    this.segments.push(segment);
    this.pending.push({ segment });
    this.pump();
    this.notify();
  }

  /** No more chunks will be enqueued. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private pump(): void {
    while (this.started < this.pending.length && this.started - this.consumed < this.lookahead) {
      const item = this.pending[this.started++];
      if (!item) break;
      if (!this.budget.charge(item.segment.text)) {
        item.response = Promise.reject(new SpeechRefused());
        item.response.catch(() => undefined);
        continue;
      }
      this.firstRequestAt ??= performance.now();
      item.response = this.client.post(
        '/audio/speech',
        JSON.stringify({
          model: this.settings.model,
          voice: this.settings.voice,
          input: item.segment.text,
          response_format: 'pcm',
          ...(this.settings.speed ? { speed: this.settings.speed } : {}),
        }),
        JSON_TYPE,
        this.signal,
      );
      // Failures surface when the segment is consumed; don't let an early one go unhandled.
      item.response.catch(() => undefined);
    }
  }

  /**
   * Forwards every segment's audio in order. `onSegment` runs before a segment's first byte,
   * `onAudio` for every whole-sample frame. Resolves when all enqueued segments are sent and `end()` was called.
   */
  async run(
    onSegment: (segment: SpokenSegment) => void,
    onAudio: (pcm: Uint8Array, segment: SpokenSegment) => void,
  ): Promise<void> {
    for (;;) {
      const item = this.pending[this.consumed];
      if (!item) {
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.pump();
      const response = await (item.response as Promise<UpstreamResponse>);
      if (response.status === 204) {
        discard(response.body);
        throw new Error('speech response has no body');
      }
      onSegment(item.segment);
      await this.forward(response.body, item.segment, onAudio);
      // The session keeps its last turns (and with them this pipeline): not their spent responses.
      item.response = undefined;
      item.segment.complete = true;
      this.consumed++;
      this.pump();
    }
  }

  /**
   * A segment's audio, chunk by chunk as it arrives, in whole samples. The body is paused (and
   * with it the provider's socket) while the client has no room.
   */
  private forward(
    body: Readable,
    segment: SpokenSegment,
    onAudio: (pcm: Uint8Array, segment: SpokenSegment) => void,
  ): Promise<void> {
    const { signal, budget } = this;
    return new Promise((resolve, reject) => {
      const framer = new Pcm16Framer();
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        discard(body);
        reject(signal.aborted ? new APIUserAbortError() : error);
      };
      const resume = () => {
        if (!settled) body.resume();
      };
      body.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (signal.aborted) return fail(new APIUserAbortError());
        this.firstByteAt ??= performance.now();
        const frame = framer.push(chunk);
        if (!frame) return;
        segment.bytes += frame.byteLength;
        try {
          onAudio(frame, segment);
        } catch (error) {
          return fail(error);
        }
        const room = budget.room();
        if (room) {
          body.pause();
          room.then(resume, fail);
        }
      });
      body.once('error', fail);
      body.once('end', () => {
        if (settled) return;
        if (signal.aborted) return fail(new APIUserAbortError());
        settled = true;
        resolve();
      });
    });
  }
}
