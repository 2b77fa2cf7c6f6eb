/**
 * `tts: 'browser'`: the browser's speech synthesis speaks the reply, each sentence as soon as it
 * is complete in the streamed text (the session's output is text: the relay bills no TTS). No DOM
 * types: the voice is reached through `globalThis`, so this is unit-tested in Node with a fake one.
 */

/** Where sentences are spoken. */
export interface SpeechOutput {
  speak(sentence: string): void;
  /** Stops speaking, and drops what is queued. */
  cancel(): void;
}

interface SynthesisGlobals {
  speechSynthesis?: { speak(utterance: object): void; cancel(): void };
  SpeechSynthesisUtterance?: new (text: string) => { lang: string };
}

/** The page's `speechSynthesis` (undefined where there is none), speaking in `lang` when given. */
export function speechSynthesisOutput(lang: string | undefined): SpeechOutput | undefined {
  const { speechSynthesis: synth, SpeechSynthesisUtterance: Utterance } =
    globalThis as SynthesisGlobals;
  if (!synth || !Utterance) return undefined;
  return {
    speak(sentence) {
      const utterance = new Utterance(sentence);
      if (lang) utterance.lang = lang;
      synth.speak(utterance);
    },
    cancel: () => synth.cancel(),
  };
}

/** Index just past the last sentence end that is followed by whitespace ("3.5" and "e.g" mid-word don't count). */
export function lastSentenceEnd(text: string): number {
  let end = 0;
  for (const match of text.matchAll(/[.!?।…](?=\s)/g)) end = match.index + 1;
  return end;
}

export class BrowserTts {
  private turnId: number | undefined;
  private spokenUpTo = 0;

  /** `output` is asked for the voice at each use (speech synthesis may appear late, or not at all). */
  constructor(private readonly output: () => SpeechOutput | undefined) {}

  /** The reply so far (`final`: all of it): speaks what completed sentences it holds that were not spoken yet. */
  reply(turnId: number, text: string, final: boolean): void {
    const output = this.output();
    if (!output) return;
    if (turnId !== this.turnId) {
      this.turnId = turnId;
      this.spokenUpTo = 0;
    }
    const end = final ? text.length : lastSentenceEnd(text);
    if (end <= this.spokenUpTo) return;
    const sentence = text.slice(this.spokenUpTo, end).trim();
    this.spokenUpTo = end;
    if (sentence) output.speak(sentence);
  }

  /** Stops speaking; the rest of the current reply stays unspoken. */
  cancel(): void {
    this.output()?.cancel();
    this.spokenUpTo = Number.MAX_SAFE_INTEGER;
  }

  /** A new socket: its turn ids name new turns (the next turn 1 is spoken even if the last one was cut). */
  reset(): void {
    this.turnId = undefined;
  }
}
