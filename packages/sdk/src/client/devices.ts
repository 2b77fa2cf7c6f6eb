/**
 * What a session with audio does besides talking, loaded when it starts (or when a device method is
 * first called) so that none of it is in the first download: the device list, choosing the
 * microphone and the speaker, following device changes (a headset plugged in or out) without
 * dropping the session, the throttled level events, the silent-microphone check, the output stream,
 * and pausing while the tab is hidden.
 */
import type { AudioEngine } from '../audio/engine.js';
import type { VoiceBotClient } from '../client.js';
import { VoiceBotError } from '../errors.js';
import type { VoiceBotEvents } from './types.js';

/** A microphone delivering only this (−90 dBFS RMS: below one 16-bit step) is silent, not a quiet room. */
export const MIC_SILENT_LEVEL = 10 ** (-90 / 20);
/** How long the microphone must stay that silent (unmuted, the bot not speaking) for `mic_silent`. */
export const MIC_SILENT_MS = 3000;
/** `input-level` / `output-level` at most this often. */
const LEVEL_INTERVAL_MS = 50;

export interface AudioDevice {
  /** The `deviceId` to pass to `setInputDevice` / `setOutputDevice` (`default`: the system's choice). */
  id: string;
  /** Empty until the page has microphone permission (browsers hide device names before). */
  label: string;
  /** Devices with the same group are one piece of hardware (a headset's mic and earpiece). */
  groupId: string;
}

export interface AudioDevices {
  inputs: AudioDevice[];
  outputs: AudioDevice[];
  /** The speaker can be chosen here (`setSinkId` exists); Safari and Firefox's defaults cannot. */
  canChooseOutput: boolean;
}

/** `setSinkId` on the AudioContext (Chrome 110+) or on media elements (Chrome, Edge, Firefox 116+). */
export function canChooseOutput(): boolean {
  return (
    (typeof AudioContext !== 'undefined' && 'setSinkId' in AudioContext.prototype) ||
    (typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype)
  );
}

export async function listDevices(): Promise<AudioDevices> {
  const all = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
  const of = (kind: MediaDeviceKind): AudioDevice[] =>
    all
      .filter((d) => d.kind === kind && d.deviceId)
      .map(({ deviceId, label, groupId }) => ({ id: deviceId, label, groupId }));
  return {
    inputs: of('audioinput'),
    outputs: of('audiooutput'),
    canChooseOutput: canChooseOutput(),
  };
}

/**
 * Opens `deviceId` (undefined: the default microphone) and moves the capture onto it; the old
 * stream is released only once the new one is connected, so a failure leaves the session as it was.
 * Without a session's microphone there is nothing to move (the choice applies at the next start).
 */
export async function switchMic(
  client: VoiceBotClient,
  deviceId: string | undefined,
): Promise<void> {
  const engine = client.engine;
  const capture = engine?.capture;
  if (!engine || !capture) return;
  const stream = await engine.openMic({ ...client.options.mic, deviceId });
  if (client.engine !== engine) {
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  const source = engine.context.createMediaStreamSource(stream);
  const wasEnabled = engine.stream?.getAudioTracks()[0]?.enabled ?? true;
  for (const track of stream.getAudioTracks()) track.enabled = wasEnabled;
  source.connect(capture, 0, 0);
  engine.source?.disconnect();
  for (const track of engine.stream?.getTracks() ?? []) track.stop();
  engine.source = source;
  engine.stream = stream;
}

type Sinkable = { setSinkId(id: string): Promise<void> };

/**
 * Plays the replies on `deviceId` (`''` or `default`: the system default); without an engine, only
 * checks that the browser can.
 */
export async function setOutput(engine: AudioEngine | undefined, deviceId: string): Promise<void> {
  if (!canChooseOutput())
    throw new VoiceBotError(
      'output_unsupported',
      'This browser does not let a page choose the speaker (no setSinkId).',
    );
  // With a microphone the replies play through an <audio> element (echo cancellation's reference).
  const target = (engine?.speaker ?? engine?.context) as Partial<Sinkable> | undefined;
  await target?.setSinkId?.(deviceId === 'default' ? '' : deviceId);
}

type Emit = <K extends keyof VoiceBotEvents>(event: K, payload: VoiceBotEvents[K]) => void;

/**
 * One session's audio extras, from `start()` to `stop()`: level events, the silent-microphone
 * check, `devicechange` and the microphone track's `ended` (unplugged: the default microphone
 * takes over without touching the socket), `visibilitychange` (`pauseWhenHidden`), and the
 * AudioContext's interruptions (iOS).
 */
export class SessionWatch {
  private readonly disposers: (() => void)[] = [];
  private switching: Promise<void> = Promise.resolve();
  private watchedTrack: MediaStreamTrack | undefined;
  private readonly engine: AudioEngine;
  /** When `input-level` / `output-level` are next due. */
  private readonly levelAt: [number, number] = [-Infinity, -Infinity];
  /** 20 ms microphone frames in a row below {@link MIC_SILENT_LEVEL}. */
  private silentFrames = 0;
  /** Paused because the tab is hidden. */
  private paused = false;

  constructor(
    private readonly client: VoiceBotClient,
    private readonly emit: Emit,
    private readonly listens: (event: keyof VoiceBotEvents) => boolean,
  ) {
    const engine = client.engine as AudioEngine;
    this.engine = engine;
    if (client.outputDevice !== undefined)
      setOutput(engine, client.outputDevice).catch((error: unknown) =>
        emit(
          'error',
          error instanceof VoiceBotError
            ? error
            : new VoiceBotError('output_unsupported', `The speaker could not be chosen: ${error}`),
        ),
      );
    // iOS interrupts the AudioContext for a call, Siri or a route change and may leave it so.
    const context = engine.context;
    const onState = (): void => void this.resume(false);
    context.addEventListener('statechange', onState);
    this.disposers.push(() => context.removeEventListener('statechange', onState));
    const media = typeof navigator === 'undefined' ? undefined : navigator.mediaDevices;
    if (engine.hasMic && media?.addEventListener) {
      const onChange = (): void => void this.onDeviceChange();
      media.addEventListener('devicechange', onChange);
      this.disposers.push(() => media.removeEventListener('devicechange', onChange));
    }
    if (typeof document !== 'undefined') {
      const onVisibility = (): void => {
        const hidden = document.visibilityState === 'hidden';
        this.pause(hidden);
        if (!hidden) void this.resume(true);
      };
      document.addEventListener('visibilitychange', onVisibility);
      this.disposers.push(() => document.removeEventListener('visibilitychange', onVisibility));
    }
    this.watchTrack();
  }

  /** A microphone frame's level; `botSpeaking`: a reply plays (echo cancellation may zero the mic). */
  input(level: number, botSpeaking: boolean): void {
    this.level(0, level);
    if (level >= MIC_SILENT_LEVEL || botSpeaking) this.silentFrames = 0;
    else if (++this.silentFrames === MIC_SILENT_MS / 20)
      this.emit(
        'error',
        new VoiceBotError(
          'mic_silent',
          'The microphone is on but delivers only silence (a mute switch, or a muted input in the system settings?).',
        ),
      );
  }

  /** The playback's level; 0 when a reply has drained (always emitted). */
  output(level: number): void {
    if (level === 0) this.levelAt[1] = -Infinity;
    this.level(1, level);
  }

  private level(output: 0 | 1, value: number): void {
    const event = output ? 'output-level' : 'input-level';
    const now = performance.now();
    const due = this.levelAt[output];
    if (!this.listens(event) || now < due) return;
    // The next one is due an interval after this one was, so 20 ms frames still give 20 a second.
    this.levelAt[output] = (now - due >= LEVEL_INTERVAL_MS ? now : due) + LEVEL_INTERVAL_MS;
    this.emit(event, value);
  }

  /** The replies' audio as a MediaStream: a tap beside the speakers. */
  outputStream(): MediaStream | undefined {
    const { engine } = this;
    if (!engine.playback) return undefined;
    if (!engine.outputTap) {
      engine.outputTap = engine.context.createMediaStreamDestination();
      engine.playback.connect(engine.outputTap);
    }
    return engine.outputTap.stream;
  }

  /** The tab was hidden: stop listening (and the reply playing); shown again: listen again. */
  private pause(hidden: boolean): void {
    const { client, engine } = this;
    if (!engine.hasMic || client.options.pauseWhenHidden === false || hidden === this.paused)
      return;
    this.paused = hidden;
    engine.setMuted(hidden || client.isMuted);
    if (hidden) {
      client.resetUtterance();
      void client.interrupt();
    }
    this.silentFrames = 0;
    this.emit('paused', hidden);
  }

  /**
   * Audio suspended (a hidden tab on mobile, an interruption) resumes once the page is visible;
   * `explain`: say so when the browser wants a tap first (the widget's "Try again" is one).
   */
  private async resume(explain: boolean): Promise<void> {
    const context = this.engine.context;
    if (context.state === 'running' || context.state === 'closed') return;
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    await context.resume().catch(() => undefined);
    const state: string = context.state; // changed by the await
    if (explain && state !== 'running' && state !== 'closed')
      this.emit(
        'error',
        new VoiceBotError('audio_blocked', 'The browser paused the audio. Tap to continue.'),
      );
  }

  /** The microphone track ends when its device goes away: the default microphone takes over. */
  watchTrack(): void {
    const track = this.engine.stream?.getAudioTracks()[0];
    if (!track || track === this.watchedTrack) return;
    this.watchedTrack = track;
    this.silentFrames = 0;
    track.addEventListener('ended', () => {
      if (track === this.watchedTrack) this.move(undefined);
    });
  }

  private async onDeviceChange(): Promise<void> {
    const list = await listDevices().catch(() => undefined);
    const track = this.engine.stream?.getAudioTracks()[0];
    if (!list || !track) return;
    this.emit('devices', list);
    const chosen = this.client.inputDevice ?? this.client.options.mic?.deviceId;
    const { deviceId: current, groupId } = track.getSettings();
    if (chosen && list.inputs.some((d) => d.id === chosen)) {
      if (current !== chosen) this.move(chosen); // plugged back in
      return;
    }
    if (chosen || track.readyState === 'ended' || !list.inputs.some((d) => d.id === current)) {
      this.move(undefined);
      return;
    }
    // Chromium lists the system default as `default`, with the group of the device behind it: a
    // headset plugged in becomes the default, and the conversation follows it.
    const systemDefault = list.inputs.find((d) => d.id === 'default');
    if (systemDefault && groupId && systemDefault.groupId !== groupId) this.move(undefined);
  }

  private move(deviceId: string | undefined): void {
    this.switching = this.switching
      .then(() => switchMic(this.client, deviceId))
      .then(() => this.watchTrack())
      .catch((error: unknown) => {
        if (error instanceof VoiceBotError) this.emit('error', error);
      });
  }

  dispose(): void {
    this.watchedTrack = undefined;
    for (const dispose of this.disposers.splice(0)) dispose();
  }
}
