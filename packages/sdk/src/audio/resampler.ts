/**
 * Streaming anti-aliased resampler (Kaiser-windowed-sinc, polyphase).
 *
 * The algorithm lives once, as plain JS, in `./worklets/resampler-core.js`, because the capture and
 * playback AudioWorklets load it unbundled (strict CSP: no blob: URLs). This module re-exports it for
 * the TypeScript SDK and for unit tests.
 *
 * Build note: `tsc` does not copy `worklets/resampler-core.js` into `dist/` (the worklets folder is
 * excluded and `allowJs` is off); the build must copy `src/audio/worklets/*.js` to `dist/audio/worklets/`.
 */
export { StreamingResampler, kaiserBeta } from './worklets/resampler-core.js';
export type { ResamplerOptions } from './worklets/resampler-core.js';

/** Sample rate the relay expects from the microphone. */
export const CAPTURE_RATE = 16000;
/** Sample rate of the PCM the relay streams back. */
export const PLAYBACK_RATE = 24000;
