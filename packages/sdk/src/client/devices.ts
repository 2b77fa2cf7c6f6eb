/**
 * Audio devices and the page's lifecycle while a voice session runs, loaded when the session starts
 * (or when a device method is first called) so that none of it is in the first download: the device
 * list, choosing the microphone and the speaker, following device changes (a headset plugged in or
 * out) without dropping the session, and pausing while the tab is hidden.
 */
import type { AudioEngine } from '../audio/engine.js';
import { VoiceBotError } from '../errors.js';

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
  return { inputs: of('audioinput'), outputs: of('audiooutput'), canChooseOutput: canChooseOutput() };
}

/**
 * Opens `deviceId` (undefined: the default microphone) and moves the capture onto it; the old
 * stream is released only once the new one is connected, so a failure leaves the session as it was.
 */
export async function switchMic(
  engine: AudioEngine,
  mic: { echoCancellation?: boolean; noiseSuppression?: boolean; autoGainControl?: boolean },
  deviceId: string | undefined,
  muted: boolean,
): Promise<void> {
  const capture = engine.capture;
  if (!capture) throw new VoiceBotError('mic_unavailable', 'This session has no microphone.');
  const stream = await engine.openMic({ ...mic, ...(deviceId ? { deviceId } : {}) });
  const source = engine.context.createMediaStreamSource(stream);
  for (const track of stream.getAudioTracks()) track.enabled = !muted;
  source.connect(capture, 0, 0);
  engine.source?.disconnect();
  for (const track of engine.stream?.getTracks() ?? []) track.stop();
  engine.source = source;
  engine.stream = stream;
}

type Sinkable = { setSinkId(id: string): Promise<void> };

/** Plays the replies on `deviceId` (`''`: the system default). */
export async function setOutput(engine: AudioEngine, deviceId: string): Promise<void> {
  const target = (engine.speaker ?? engine.context) as Partial<Sinkable>;
  if (typeof target.setSinkId !== 'function')
    throw new VoiceBotError(
      'output_unsupported',
      'This browser does not let a page choose the speaker (no setSinkId).',
    );
  await target.setSinkId(deviceId === 'default' ? '' : deviceId);
}

export interface SessionWatchHooks {
  engine(): AudioEngine | undefined;
  /** The microphone the visitor chose (`setInputDevice`), if any. */
  chosenInput(): string | undefined;
  /** Reopen the microphone: `undefined` is the default one. */
  switchInput(deviceId: string | undefined): Promise<void>;
  /** The device list changed. */
  devices(list: AudioDevices): void;
  /** The tab was hidden (true) or shown again (false). */
  hidden(hidden: boolean): void;
}

/**
 * While a voice session runs: follows `devicechange` and the microphone track's `ended` (unplugged)
 * by moving to the default microphone without touching the socket, and reports `visibilitychange`.
 */
export class SessionWatch {
  private readonly disposers: (() => void)[] = [];
  private switching: Promise<void> = Promise.resolve();
  private watchedTrack: MediaStreamTrack | undefined;

  constructor(private readonly hooks: SessionWatchHooks) {
    const media = navigator.mediaDevices;
    if (media?.addEventListener) {
      const onChange = (): void => void this.onDeviceChange();
      media.addEventListener('devicechange', onChange);
      this.disposers.push(() => media.removeEventListener('devicechange', onChange));
    }
    if (typeof document !== 'undefined') {
      const onVisibility = (): void => hooks.hidden(document.visibilityState === 'hidden');
      document.addEventListener('visibilitychange', onVisibility);
      this.disposers.push(() => document.removeEventListener('visibilitychange', onVisibility));
    }
    this.watchTrack();
  }

  /** The microphone track ends when its device goes away: the default microphone takes over. */
  watchTrack(): void {
    const track = this.hooks.engine()?.stream?.getAudioTracks()[0];
    if (!track || track === this.watchedTrack) return;
    this.watchedTrack = track;
    track.addEventListener('ended', () => {
      if (track === this.watchedTrack) this.move(undefined);
    });
  }

  private async onDeviceChange(): Promise<void> {
    const list = await listDevices().catch(() => undefined);
    if (!list) return;
    this.hooks.devices(list);
    const track = this.hooks.engine()?.stream?.getAudioTracks()[0];
    if (!track) return;
    const chosen = this.hooks.chosenInput();
    const current = track.getSettings().deviceId;
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
    const group = track.getSettings().groupId;
    if (systemDefault && group && systemDefault.groupId !== group) this.move(undefined);
  }

  private move(deviceId: string | undefined): void {
    this.switching = this.switching
      .then(() => this.hooks.switchInput(deviceId))
      .then(() => this.watchTrack())
      .catch(() => undefined);
  }

  dispose(): void {
    this.watchedTrack = undefined;
    for (const dispose of this.disposers.splice(0)) dispose();
  }
}
