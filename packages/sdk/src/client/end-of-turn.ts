/**
 * End of turn decided by what was said: how much silence after the visitor's last word the client
 * waits before it commits the turn. A complete question or statement needs little ("What time do
 * you open?"), a clause left open needs more ("I'd like to book a table for Friday and"), and
 * without a transcript the client waits as long as it always did.
 *
 * The policy is a plain object (`VoiceBotOptions.endOfTurn.policy`), so a learned model can replace
 * the rules below; the rules can also keep their timings and take a model's verdict through
 * `classify`. No DOM: unit-tested in Node.
 */

export interface EndOfTurnInput {
  /** What the relay's STT heard up to the pause (`tentative_transcript`); undefined until it arrives. */
  transcript: string | undefined;
  /** The silence that made the pause (the detector's `pauseMs`). */
  pauseMs: number;
  /** BCP 47 language of the conversation (`en`, `de-DE`), when known. */
  language: string | undefined;
}

export interface EndOfTurnPolicy {
  /**
   * Total silence (from the visitor's last speech, the pause included) after which the turn ends.
   * The client clamps it to `[minSilenceMs, maxSilenceMs]`.
   */
  silenceNeededMs(input: EndOfTurnInput): number;
}

/**
 * How an utterance ends: `complete` (a finished question or statement), `incomplete` (a trailing
 * conjunction, filler, comma…: more is coming), `open` (complete, but people usually go on: a
 * greeting), `unknown` (no transcript, or no cue either way).
 */
export type TurnEnding = 'complete' | 'incomplete' | 'open' | 'unknown';

/** The words one language's rules look at (lower case; phrases as words separated by one space). */
export interface TurnWords {
  /** Hesitations: the visitor is still thinking (`um`, `uh`). Incomplete whatever follows. */
  fillers: readonly string[];
  /**
   * Words a finished clause cannot end with (conjunctions, articles, possessives): incomplete
   * unless a question or exclamation mark follows (`…, oder?` is a tag question).
   */
  continuations: readonly string[];
  /**
   * Words that leave a clause open only when no full stop follows: `so`, `like`, prepositions and
   * auxiliaries (which also end finished sentences: "What are you waiting for?").
   */
  soft: readonly string[];
  /** Whole utterances after which people usually go on: greetings ("Hi there."). */
  openers: readonly string[];
}

const split = (words: string): string[] => words.split('|');

/**
 * The languages the SDK's and widget's strings cover (en, es, hi) and the other large European
 * ones (de, fr). Add others with `rulesEndOfTurnPolicy({ words })`.
 */
export const TURN_WORDS: Readonly<Record<string, TurnWords>> = {
  en: {
    fillers: split('um|umm|uh|uhh|uhm|er|erm|hmm|hm|mm|mhm|ah|eh'),
    continuations: split(
      'and|or|but|because|cause|cos|nor|plus|than|if|whether|although|unless|the|a|an|my|your|our|their|its|and then|and also',
    ),
    soft: split(
      'so|like|then|also|well|to|of|for|in|on|at|with|about|from|by|into|is|are|was|were|am|be|will|would|can|could|should|have|has|want|need|you know|i mean|kind of|sort of',
    ),
    openers: split(
      'hi|hello|hey|hiya|hi there|hello there|hey there|good morning|good afternoon|good evening|excuse me|oh hi|oh hello|yes hello',
    ),
  },
  de: {
    fillers: split('äh|ähm|äm|öh|öhm|hm|hmm|mh|ehm|em'),
    continuations: split(
      'und|oder|aber|weil|denn|dass|ob|sondern|sowie|bzw|der|dem|den|des|ein|eine|einen|einem|einer|eines|mein|meine|meinen|dein|deine|unser|unsere|ihr|ihre',
    ),
    soft: split(
      'also|so|dann|halt|eben|quasi|sozusagen|die|das|zu|mit|für|von|in|auf|an|bei|nach|um|über|ist|sind|war|bin|möchte|will|würde|kann|habe|hat',
    ),
    openers: split(
      'hallo|hallo zusammen|hi|hey|moin|servus|guten tag|guten morgen|guten abend|grüß gott|entschuldigung|entschuldigen sie',
    ),
  },
  fr: {
    fillers: split('euh|heu|euhm|hum|hmm|bah|ben'),
    continuations: split(
      'et|ou|mais|car|parce|que|qu|puisque|lorsque|si|le|la|les|l|un|une|des|du|d|au|aux|mon|ma|mes|ton|ta|tes|son|sa|ses|notre|votre|nos|vos',
    ),
    soft: split(
      'donc|alors|genre|enfin|puis|quoi|bon|à|de|pour|avec|dans|sur|en|chez|par|est|sont|suis|était|voudrais|veux|comme|tu vois|en fait',
    ),
    openers: split(
      'bonjour|bonsoir|salut|coucou|allô|allo|excusez-moi|excusez moi|pardon|bonjour madame|bonjour monsieur',
    ),
  },
  es: {
    fillers: split('eh|ehm|em|emm|mmm|hmm|ah'),
    continuations: split(
      'y|e|o|u|pero|sino|porque|que|aunque|si|cuando|el|la|los|las|un|una|unos|unas|mi|mis|tu|tus|su|sus|nuestro|nuestra|del|al',
    ),
    soft: split(
      'pues|entonces|bueno|este|o sea|a|de|en|con|para|por|sobre|es|son|está|estoy|quiero|quisiera|como|luego',
    ),
    openers: split(
      'hola|buenas|buenos días|buenas tardes|buenas noches|hola buenas|hola buenos días|oiga|disculpe|perdón|perdone',
    ),
  },
  hi: {
    fillers: split('उम|उम्म|अं|अम|हम्म|हम|अह|एह'),
    continuations: split('और|या|लेकिन|मगर|किंतु|क्योंकि|कि|तथा|एवं|अगर|यदि|ताकि|जबकि'),
    soft: split('तो|मतलब|यानी|जैसे|फिर|पर|के|की|का|में|से|को|है|हैं|था'),
    openers: split('नमस्ते|नमस्कार|नमस्ते जी|प्रणाम|हेलो|हैलो|हाय|सुनिए|सुनो|जी'),
  },
};

/** Hesitations understood in any language. */
const UNIVERSAL_FILLERS = new Set(split('um|umm|uh|uhm|hmm|hm|mm|mmm|eh|ehm|ah|er|erm'));

/** A word: letters (with their combining marks, for Devanagari), digits, inner apostrophes. */
const WORD = /[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu;
/** Closing quotes and brackets after the last word. */
const CLOSERS = /["'”’»)\]}]+$/u;
/** Marks that leave the clause open: comma, semicolon, colon, dash, ellipsis. */
const OPEN_MARK = /(?:[,;:\u2013\u2014-]|\.\.\.|…)$/u;
/** Full stop, question and exclamation marks (Latin, CJK, Devanagari danda). */
const FINAL_MARK = /[.?!。？！।]$/u;
const ASKS_OR_EXCLAIMS = /[?!？！]$/u;

interface LanguageRules {
  fillers: Set<string>;
  continuations: Set<string>;
  soft: Set<string>;
  openers: Set<string>;
  /** The longest phrase in the lists, in words. */
  longest: number;
}

function compile(words: TurnWords): LanguageRules {
  const lists = [words.fillers, words.continuations, words.soft, words.openers];
  return {
    fillers: new Set([...words.fillers, ...UNIVERSAL_FILLERS]),
    continuations: new Set(words.continuations),
    soft: new Set(words.soft),
    openers: new Set(words.openers),
    longest: Math.max(1, ...lists.flat().map((w) => w.split(' ').length)),
  };
}

/** The primary language subtag (`de-CH` → `de`), lower case. */
export function primaryLanguage(language: string | undefined): string | undefined {
  const primary = language?.trim().toLowerCase().split(/[-_]/)[0];
  return primary || undefined;
}

/** Whether the last words of `words` are one of `set`'s entries (phrases up to `longest` words). */
function endsWithAny(words: readonly string[], set: Set<string>, longest: number): boolean {
  for (let n = Math.min(longest, words.length); n >= 1; n--)
    if (set.has(words.slice(-n).join(' '))) return true;
  return false;
}

/** Classifies how `transcript` ends, by punctuation and the word lists of `language`. */
function classifyWith(transcript: string | undefined, rules: LanguageRules): TurnEnding {
  const text = transcript?.trim().replace(CLOSERS, '').trim();
  if (!text) return 'unknown';
  if (OPEN_MARK.test(text)) return 'incomplete';
  const final = FINAL_MARK.test(text);
  const asks = ASKS_OR_EXCLAIMS.test(text);
  const words = (text.toLowerCase().match(WORD) ?? []).map((w) => w.replace(/’/g, "'"));
  if (words.length === 0) return 'unknown';
  // French elisions: "parce qu'" → qu
  const last = words.at(-1)?.replace(/'$/, '') ?? '';
  const tail = [...words.slice(0, -1), last];
  if (endsWithAny(tail, rules.fillers, rules.longest)) return 'incomplete';
  if (!asks && endsWithAny(tail, rules.continuations, rules.longest)) return 'incomplete';
  if (!final && endsWithAny(tail, rules.soft, rules.longest)) return 'incomplete';
  if (rules.openers.has(words.join(' '))) return 'open';
  return final ? 'complete' : 'unknown';
}

const compiled = new Map<TurnWords, LanguageRules>();
function rulesFor(words: TurnWords): LanguageRules {
  let rules = compiled.get(words);
  if (!rules) {
    rules = compile(words);
    compiled.set(words, rules);
  }
  return rules;
}

/**
 * How `transcript` ends, by the rules of `language` (its primary subtag; English when unknown or
 * not covered). `words` adds or replaces languages.
 */
export function classifyTurnEnding(
  transcript: string | undefined,
  language: string | undefined,
  words: Readonly<Record<string, TurnWords>> = TURN_WORDS,
): TurnEnding {
  const primary = primaryLanguage(language);
  const lists =
    (primary !== undefined ? words[primary] : undefined) ?? words['en'] ?? TURN_WORDS.en;
  if (!lists) return 'unknown';
  return classifyWith(transcript, rulesFor(lists));
}

export interface RulesPolicyOptions {
  /** Total silence after a complete question or statement (default 350 ms). */
  completeMs?: number;
  /** After an unfinished clause: a trailing conjunction, filler or comma (default 1200 ms). */
  incompleteMs?: number;
  /** Without a transcript, or without a cue either way; also after a greeting (default 700 ms). */
  fallbackMs?: number;
  /** Word lists by primary language subtag, over (and beside) `TURN_WORDS`. */
  words?: Readonly<Record<string, TurnWords>>;
  /**
   * Replaces the rules' verdict, e.g. with a learned model's: a `TurnEnding`, or the probability
   * (0..1) that the turn is complete, which places the wait between `incompleteMs` (0) and
   * `completeMs` (1). Undefined: no verdict (the fallback).
   */
  classify?: (transcript: string, language: string | undefined) => TurnEnding | number | undefined;
}

/** Defaults of the rules policy. */
export const END_OF_TURN_DEFAULTS = {
  completeMs: 350,
  incompleteMs: 1200,
  fallbackMs: 700,
} as const;

/** The default policy: punctuation and word lists decide between a short, the usual and a long wait. */
export function rulesEndOfTurnPolicy(options: RulesPolicyOptions = {}): EndOfTurnPolicy {
  const completeMs = options.completeMs ?? END_OF_TURN_DEFAULTS.completeMs;
  const incompleteMs = options.incompleteMs ?? END_OF_TURN_DEFAULTS.incompleteMs;
  const fallbackMs = options.fallbackMs ?? END_OF_TURN_DEFAULTS.fallbackMs;
  for (const [name, value] of Object.entries({ completeMs, incompleteMs, fallbackMs }))
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`endOfTurn: ${name} must be a finite number ≥ 0, got ${value}`);
  const words = options.words ? { ...TURN_WORDS, ...options.words } : TURN_WORDS;
  const byEnding: Record<TurnEnding, number> = {
    complete: completeMs,
    incomplete: incompleteMs,
    open: fallbackMs,
    unknown: fallbackMs,
  };
  return {
    silenceNeededMs({ transcript, language }) {
      if (transcript === undefined || transcript.trim() === '') return fallbackMs;
      const verdict = options.classify
        ? options.classify(transcript, language)
        : classifyTurnEnding(transcript, language, words);
      if (verdict === undefined) return fallbackMs;
      if (typeof verdict === 'number') {
        if (!Number.isFinite(verdict)) return fallbackMs;
        const p = Math.min(1, Math.max(0, verdict));
        return incompleteMs + p * (completeMs - incompleteMs);
      }
      return byEnding[verdict];
    },
  };
}
