/**
 * The speech detector: the energy detector at once, Silero (loaded lazily) swapped in between
 * utterances once it is ready; if Silero cannot load, the energy detector stays and the owner is
 * told (`vad_unavailable`).
 */
import { EnergyVad } from '../audio/energy-vad.js';
import { VoiceBotError } from '../errors.js';
import type { VadSettings, VoiceActivityDetector } from '../vad.js';

export interface DetectorHooks {
  /** Whether an utterance is in progress (one utterance is judged by one detector). */
  busy(): boolean;
  /** Whether the session still wants a detector (false once stopped). */
  wanted(): boolean;
  /** Silero is ready: use it from now on. */
  swap(detector: VoiceActivityDetector): void;
  error(error: VoiceBotError): void;
}

/** What the client asks of its detectors besides the visitor's settings. */
export type DetectorSettings = VadSettings & {
  /** Silence inside speech reported as a `pause` (speculative turns); none by default. */
  pauseMs?: number;
};

/** The energy detector, with Silero loading behind it unless `settings.model` is `energy`. */
export function createDetector(
  settings: DetectorSettings,
  assetBaseUrl: string | URL | undefined,
  hooks: DetectorHooks,
): VoiceActivityDetector {
  const energy = new EnergyVad({
    ...(settings.redemptionMs !== undefined ? { redemptionMs: settings.redemptionMs } : {}),
    ...(settings.preSpeechPadMs !== undefined ? { preSpeechPadMs: settings.preSpeechPadMs } : {}),
    ...(settings.minSpeechMs !== undefined ? { minSpeechMs: settings.minSpeechMs } : {}),
    ...(settings.pauseMs !== undefined ? { pauseMs: settings.pauseMs } : {}),
    ...(settings.energyThresholdDb !== undefined
      ? { thresholdDb: settings.energyThresholdDb }
      : {}),
  });
  if (settings.model !== 'energy') void loadSilero(settings, assetBaseUrl, hooks);
  return energy;
}

/** Swaps in Silero once it has loaded; on failure the energy VAD stays (and we say so). */
async function loadSilero(
  settings: DetectorSettings,
  base: string | URL | undefined,
  hooks: DetectorHooks,
): Promise<void> {
  try {
    const { createSileroVad } = await import('../audio/silero-vad.js');
    const silero = await createSileroVad({
      // A relative asset base (`/sdk/`) resolves against the page, as the worklets' does.
      assetBaseUrl:
        base === undefined
          ? undefined
          : new URL('vad/', new URL(String(base).replace(/\/?$/, '/'), location.href)),
      ...settings,
    });
    if (!hooks.wanted()) {
      silero.dispose?.();
      return;
    }
    // Swap between utterances only, so one utterance is judged by one detector.
    const swap = () => {
      if (hooks.busy()) setTimeout(swap, 200);
      else hooks.swap(silero);
    };
    swap();
  } catch (cause) {
    hooks.error(
      new VoiceBotError(
        'vad_unavailable',
        'The speech detector could not load; using a simpler one.',
        { cause },
      ),
    );
  }
}
