/** Cache Storage bucket for model files and onnxruntime's wasm; `caches.delete(CACHE_NAME)` forces a fresh download. */
export const CACHE_NAME = 'voice-bot-stt';
