/**
 * The script-tag build's entry (`voice-bot.esm.js`, loaded by `voice-bot.js`): the element, plus
 * in-browser speech recognition wired in, so `stt="browser"` works for site owners without a
 * bundler. `@voice-bot/stt-whisper` is a lazy chunk here (its worker and wasm load only when a
 * visitor presses talk); the npm entry (`index.ts`) leaves that choice to the app.
 */
import { setWhisperLoader, whisperLoader } from '@voice-bot/sdk';

// Registers <voice-bot>; the loader imports this module for that alone, so nothing is re-exported
// (which lets the error texts and other parts needed later stay in lazy chunks).
import './index.js';

/** Models live in `models/` beside this bundle: `/widget/models/` on the relay. */
const MODELS = new URL('models/', import.meta.url).href;

if (!whisperLoader()) {
  setWhisperLoader(() =>
    import('@voice-bot/stt-whisper').then((engine) => ({
      createRecognizer: (options) =>
        engine.createRecognizer({
          ...options,
          modelBaseUrl:
            options.modelBaseUrl ?? (options.assetBaseUrl === undefined ? MODELS : undefined),
        }),
    })),
  );
}
