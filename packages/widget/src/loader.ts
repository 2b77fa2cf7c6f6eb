/**
 * The script-tag entry (`voice-bot.js`, an IIFE): tiny on purpose. It loads the widget module that
 * sits beside it; the element registers itself, and heavier parts (speech detection, in-browser
 * recognition) load later, only when a visitor starts talking.
 */
(() => {
  const script = document.currentScript as HTMLScriptElement | null;
  const base = script?.src ? new URL('./', script.src) : new URL('./', location.href);
  import(/* @vite-ignore */ new URL('voice-bot.esm.js', base).href).catch((error: unknown) => {
    console.error('[voice-bot] could not load the widget', error);
  });
})();
