/**
 * What the Silero VAD needs at run time, kept apart from the model code: the asset file names
 * (the build puts them in `dist/audio/vad/`, beside the VAD module) and the typed error callers
 * fall back on. Nothing here imports onnxruntime-web.
 */

/** Files the Silero VAD loads from its asset directory (`vad/`). */
export const VAD_ASSET_FILES = {
  /** Silero VAD v5 (from @ricky0123/vad-web's dist), ~2.3 MB. */
  model: 'silero_vad_v5.onnx',
  /** onnxruntime-web's Emscripten glue for the plain (CPU, SIMD) WebAssembly backend. */
  ortGlue: 'ort-wasm-simd-threaded.mjs',
  /** onnxruntime-web's WebAssembly binary for that backend, ~14 MB (~3.4 MB gzipped). */
  ortWasm: 'ort-wasm-simd-threaded.wasm',
} as const;

export interface VadAssetUrls {
  model: string;
  ortGlue: string;
  ortWasm: string;
}

/**
 * Absolute URLs of the VAD assets in the directory `assetBaseUrl` (e.g. the SDK's
 * `…/dist/browser/vad/`; a missing trailing slash is added). Relative URLs resolve against the page.
 */
export function vadAssetUrls(assetBaseUrl: string | URL): VadAssetUrls {
  let base = String(assetBaseUrl);
  if (!base.endsWith('/')) base += '/';
  const dir = new URL(base, typeof location === 'undefined' ? undefined : location.href);
  return {
    model: new URL(VAD_ASSET_FILES.model, dir).href,
    ortGlue: new URL(VAD_ASSET_FILES.ortGlue, dir).href,
    ortWasm: new URL(VAD_ASSET_FILES.ortWasm, dir).href,
  };
}

/**
 * The Silero VAD could not be started (model or WebAssembly runtime failed to load, loading timed
 * out) or stopped working (inference failed). Callers fall back to the energy VAD.
 */
export class VadUnavailableError extends Error {
  override readonly name = 'VadUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
