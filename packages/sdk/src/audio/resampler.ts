/**
 * Streaming anti-aliased resampler (Kaiser-windowed-sinc, polyphase).
 *
 * The algorithm lives once, as plain JS, in `./worklets/resampler-core.js`, shared by the capture and
 * playback AudioWorklets (the build bundles it into each, as worklets are served as single files)
 * and re-exported here for the TypeScript SDK and for unit tests.
 *
 * Build note: `tsc` does not copy `worklets/resampler-core.js` into `dist/` (the worklets folder is
 * excluded and `allowJs` is off); rollup.config.mjs copies it to `dist/audio/worklets/`.
 */
export { StreamingResampler, kaiserBeta } from './worklets/resampler-core.js';
export type { ResamplerOptions } from './worklets/resampler-core.js';

/** Sample rate the relay expects from the microphone. */
export const CAPTURE_RATE = 16000;
/** Sample rate of the PCM the relay streams back. */
export const PLAYBACK_RATE = 24000;
