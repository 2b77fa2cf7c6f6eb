/**
 * Streaming sentence chunker for text-to-speech.
 *
 * The LLM streams text deltas split anywhere (mid-word, mid-number, mid-"..."). `SentenceChunker`
 * turns them into speakable chunks as early as possible: normally one sentence each, short sentences
 * merged forward (`minChars`), run-on text force-split (`maxChars`).
 *
 * Guarantees:
 * - Split invariance: the chunks depend only on the text, never on how it was split into deltas.
 *   Every decision is taken only once the lookahead it needs has arrived; a decision that needs
 *   more text parks the scanner (`pos`) until the next `push()` (or `flush()`).
 * - Nothing is lost or duplicated: the concatenation of all chunks equals the input, except for
 *   whitespace at chunk edges (chunks are trimmed; whitespace-only chunks are never emitted).
 * - `push()` is amortised O(len(delta)): text is scanned once, char by char, from a saved scan
 *   position; it is stored as UTF-16 code units in a growable buffer that drops text no longer
 *   needed, so a long pending chunk is never re-copied per push.
 *
 * Boundaries:
 * - Sentence end: a run of `.` `!` `?` `…` (also `‼ ⁇ ⁈ ⁉`), optionally followed by closing
 *   quotes/brackets/emphasis markers, then whitespace. Not a boundary when the next word starts
 *   lowercase on the same line ("Wait... what?", `"Hi!" she said`), or after a single `.` that ends
 *   an abbreviation ("Dr.", "e.g.", "U.S."; "No." only before a digit), a single capital initial
 *   ("J. R. R. Tolkien") or a list number at line start ("1. "). "3.14", "$4.50", "2.0.1",
 *   "example.com" and "a.b@c.io" never match because no whitespace follows the dot.
 * - CJK `。！？｡`: a boundary even without following whitespace.
 * - Line structure: a blank line (paragraph break), a line break before a list item / heading /
 *   blockquote (`- `, `* `, `+ `, `• `, `1. `, `2) `, `# `, `> `), and fenced code blocks
 *   (a code fence starts a chunk; text inside the fence is never split, so a fence lands whole in
 *   one chunk and `stripMarkdown` can drop it; a closing fence line ends the chunk).
 * - With `firstClause`, the first chunk may end at a clause instead: `,` `;` `:` followed by
 *   whitespace, a spaced dash (` - `, ` – `) or an em dash, once the chunk has `minChars` and
 *   `minWords` — so speech can start before the first sentence is complete. Never inside a number
 *   ("1,000", "10:30", "9–5" have no whitespace after the mark) nor after an abbreviation ("e.g.,").
 *   A `,` or `;` right after a letter cuts at once, without waiting for the whitespace (the next
 *   token): LLMs stream "Saturday" "," " see" (a closing quote after it starts the next chunk).
 */

export interface ChunkerOptions {
  /** Don't emit a chunk shorter than this (trimmed, UTF-16 units); merge it with the next sentence. Default 20. */
  minChars?: number;
  /**
   * Force a split when a chunk would grow past this many chars: at the last clause boundary
   * (`,` `;` `:` + space, `—`, CJK `、，；：`, or a short sentence end) if that leaves at least
   * `minChars`, else at the last whitespace, else hard (never inside a surrogate pair). Default 250.
   * `Infinity` disables forced splits. A chunk may still run over by trailing sentence punctuation
   * and closing quotes (never split off), and text inside a code fence is never force-split.
   */
  maxChars?: number;
  /** The first chunk may be a clause of at least this many chars and words (default: sentences only). */
  firstClause?: { minChars: number; minWords: number };
}

/** What the relay uses for a reply's first spoken chunk: short enough to start speaking early. */
export const DEFAULT_FIRST_CLAUSE = { minChars: 24, minWords: 4 } as const;

const DEFAULT_MIN_CHARS = 20;
const DEFAULT_MAX_CHARS = 250;
/** Text kept before the current chunk so look-behind checks see the same context whatever the deltas. */
const LOOKBACK = 64;
/** Longest token checked for being an abbreviation / initial / list number. */
const MAX_TOKEN = 32;
/** Longest run of spaces between a line start and a list number. */
const MAX_INDENT = 16;
const INITIAL_CAPACITY = 1024;

type Mode = 'text' | 'term' | 'close' | 'ws';
/** Whether a single `.` may end a sentence: always, never, or only if the next word is not a number. */
type Suppress = 'none' | 'always' | 'beforeDigit';
/** What starts the next line: undecidable yet, nothing special, a list item / heading, or a code fence (fence char code). */
type LineStart = 'wait' | 'none' | 'list' | number;

const NL = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;
const DOT = 0x2e;
const BACKTICK = 0x60;
const TILDE = 0x7e;
const HYPHEN = 0x2d;
const EN_DASH = 0x2013;
const EM_DASH = 0x2014;

/** Abbreviations (lowercase, final dot removed) after which a single `.` does not end a sentence. */
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'mx',
  'dr',
  'prof',
  'sr',
  'jr',
  'st',
  'mt',
  'ft',
  'vs',
  'etc',
  'approx',
  'inc',
  'ltd',
  'co',
  'corp',
  'dept',
  'est',
  'fig',
  'figs',
  'vol',
  'vols',
  'pp',
  'cf',
  'al',
  'viz',
  'ca',
  'gen',
  'col',
  'lt',
  'sgt',
  'capt',
  'rev',
  'hon',
  'gov',
  'ph.d',
  'e.g',
  'i.e',
  'a.m',
  'p.m',
  'u.s',
  'u.k',
  'u.s.a',
]);
/** Abbreviations that are also ordinary words ("The answer is no."): only kept together before a number ("No. 5"). */
const NUMBER_ABBREVIATIONS = new Set(['no', 'nos']);
const DOTTED_LETTERS = /^(?:\p{L}\.)+\p{L}$/u; // e.g, i.e, U.S, J.R.R (final dot excluded)
const SINGLE_CAPITAL = /^\p{Lu}$/u;
const LIST_NUMBER = /^\d{1,9}$/;
const LEADING_OPENERS = /^[("'“‘«‹[{*_¿¡]+/;
const LOWERCASE = /^\p{Ll}$/u;

function isWs(c: number): boolean {
  // Exactly the set String.prototype.trim() removes.
  return (
    c === SPACE ||
    (c >= 0x09 && c <= 0x0d) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

function isNewline(c: number): boolean {
  return c === NL || c === 0x2028 || c === 0x2029;
}

function isCjkTerminator(c: number): boolean {
  return c === 0x3002 || c === 0xff01 || c === 0xff1f || c === 0xff61; // 。！？｡
}

function isTerminator(c: number): boolean {
  return (
    c === DOT ||
    c === 0x21 ||
    c === 0x3f ||
    c === 0x2026 ||
    c === 0x203c ||
    (c >= 0x2047 && c <= 0x2049) ||
    isCjkTerminator(c)
  );
}

/** Closing quotes/brackets (and markdown emphasis markers) that may follow a sentence terminator. */
function isCloser(c: number): boolean {
  switch (c) {
    case 0x22: // "
    case 0x27: // '
    case 0x29: // )
    case 0x5d: // ]
    case 0x7d: // }
    case 0x2a: // *
    case 0x5f: // _
    case BACKTICK:
    case TILDE:
    case 0x201d: // ”
    case 0x2019: // ’
    case 0xbb: // »
    case 0x203a: // ›
    case 0x300d: // 」
    case 0x300f: // 』
    case 0x3011: // 】
    case 0x3015: // 〕
    case 0x3009: // 〉
    case 0x300b: // 》
    case 0xff09: // ）
    case 0xff3d: // ］
    case 0xff5d: // ｝
      return true;
    default:
      return false;
  }
}

/** `,` `;` `:`: a clause boundary when followed by whitespace. */
function isAsciiClause(c: number): boolean {
  return c === 0x2c || c === 0x3b || c === 0x3a;
}

/** Clause marks that need no following whitespace: em/en dash and CJK `、，；：`. */
function isGluedClause(c: number): boolean {
  return (
    c === 0x2014 || c === 0x2013 || c === 0x3001 || c === 0xff0c || c === 0xff1b || c === 0xff1a
  );
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

const LETTER = /^\p{L}$/u;

function isLetter(c: number): boolean {
  if (c < 0x80) return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
  return LETTER.test(String.fromCharCode(c));
}

function isLowercase(c: number): boolean {
  if (c < 0x80) return c >= 0x61 && c <= 0x7a;
  return LOWERCASE.test(String.fromCharCode(c));
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function checkLength(name: string, value: number, allowInfinity: boolean): number {
  if (Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new RangeError(
      `${name} must be a non-negative ${allowInfinity ? 'number' : 'finite number'}, got ${value}`,
    );
  }
  return Number.isFinite(value) ? Math.floor(value) : value;
}

export class SentenceChunker {
  private readonly minChars: number;
  private readonly maxChars: number;
  private readonly firstClause: { minChars: number; minWords: number } | undefined;
  /** A chunk has been emitted: clause cuts (`firstClause`) are over. */
  private emitted = false;

  /** UTF-16 code units of the stream from offset `base` on; `len` of them are valid. */
  private codes: Uint16Array = new Uint16Array(INITIAL_CAPACITY);
  private len = 0;
  private base = 0;

  // All positions below are absolute stream offsets.
  /** Next code unit to scan. */
  private pos = 0;
  /** Start of the current (not yet emitted) chunk. */
  private chunkStart = 0;
  /** First non-whitespace unit of the current chunk, or -1. */
  private contentStart = -1;
  /** Latest clause boundary / short sentence end in the current chunk (a forced-split candidate), or -1. */
  private lastClause = -1;
  /** Latest whitespace in the current chunk (a forced-split candidate), or -1. */
  private lastSpace = -1;

  private mode: Mode = 'ws';
  // State of the window being decided (mode 'term' / 'close' / 'ws').
  /** Where the chunk ends if the window is a boundary. */
  private candEnd = 0;
  /** The window started with a sentence terminator (otherwise: with a newline). */
  private hasTerm = false;
  private suppress: Suppress = 'none';
  /** The last terminator of the run is CJK (ends a sentence without whitespace). */
  private termCjk = false;
  private newlines = 1;

  // Code fences.
  private inFence = false;
  private fenceChar = 0;
  /** Inside the fence, on the closing fence line. */
  private fenceClosing = false;
  /** The fence just closed: the next line break ends the chunk. */
  private fenceClosed = false;

  constructor(options: ChunkerOptions = {}) {
    const maxChars = checkLength('maxChars', options.maxChars ?? DEFAULT_MAX_CHARS, true);
    if (maxChars < 1) throw new RangeError(`maxChars must be at least 1, got ${maxChars}`);
    this.maxChars = maxChars;
    this.minChars = Math.min(
      checkLength('minChars', options.minChars ?? DEFAULT_MIN_CHARS, false),
      maxChars,
    );
    if (options.firstClause)
      this.firstClause = {
        minChars: checkLength('firstClause.minChars', options.firstClause.minChars, false),
        minWords: checkLength('firstClause.minWords', options.firstClause.minWords, false),
      };
    this.reset();
  }

  /** Feed a text delta; returns the chunks (0..n) that are now complete, in order. */
  push(delta: string): string[] {
    const out: string[] = [];
    if (delta.length === 0) return out;
    this.append(delta);
    this.scan(out);
    return out;
  }

  /** End of stream: returns the rest as one chunk (even if shorter than `minChars`), or nothing if it is blank. Resets the chunker. */
  flush(): string[] {
    const out: string[] = [];
    this.emit(this.chunkStart, this.base + this.len, out);
    this.reset();
    return out;
  }

  private reset(): void {
    this.len = 0;
    this.base = 0;
    this.pos = 0;
    this.chunkStart = 0;
    this.contentStart = -1;
    this.lastClause = -1;
    this.lastSpace = -1;
    // The stream starts as if after a line break, so a leading list marker / fence is recognised.
    this.mode = 'ws';
    this.candEnd = 0;
    this.hasTerm = false;
    this.suppress = 'none';
    this.termCjk = false;
    this.newlines = 1;
    this.inFence = false;
    this.fenceChar = 0;
    this.fenceClosing = false;
    this.fenceClosed = false;
  }

  // ---------------------------------------------------------------------------------------------
  // Buffer

  private append(delta: string): void {
    const needed = this.len + delta.length;
    if (needed > this.codes.length) {
      // Drop what no decision can look at any more, then grow if that did not free enough.
      const drop = this.chunkStart - LOOKBACK - this.base;
      if (drop > 0) {
        this.codes.copyWithin(0, drop, this.len);
        this.len -= drop;
        this.base += drop;
      }
      const after = this.len + delta.length;
      if (after > this.codes.length / 2) {
        let capacity = this.codes.length * 2;
        while (capacity < after * 2) capacity *= 2;
        const grown = new Uint16Array(capacity);
        grown.set(this.codes.subarray(0, this.len));
        this.codes = grown;
      }
    }
    const codes = this.codes;
    let i = this.len;
    for (let j = 0; j < delta.length; j++) codes[i++] = delta.charCodeAt(j);
    this.len = i;
  }

  private at(p: number): number {
    return this.codes[p - this.base] ?? 0;
  }

  private slice(from: number, to: number): string {
    let s = '';
    for (let i = from - this.base, end = to - this.base; i < end; i += 4096) {
      s += String.fromCharCode(...this.codes.subarray(i, Math.min(i + 4096, end)));
    }
    return s;
  }

  private emit(from: number, to: number, out: string[]): void {
    const text = this.slice(from, to).trim();
    if (text.length === 0) return;
    out.push(text);
    this.emitted = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Scanner

  private scan(out: string[]): void {
    const end = this.base + this.len;
    while (this.pos < end) {
      const p = this.pos;
      const c = this.at(p);
      switch (this.mode) {
        case 'text':
          this.scanText(p, c, out);
          break;
        case 'term':
          if (isTerminator(c)) {
            this.termCjk = isCjkTerminator(c);
            this.suppress = 'none'; // "...", "?!": not an abbreviation
            this.pos++;
          } else if (isCloser(c)) {
            this.mode = 'close';
            this.pos++;
          } else {
            this.endOfMarks(p, c, out);
          }
          break;
        case 'close':
          if (isCloser(c)) {
            this.pos++;
          } else if (isTerminator(c)) {
            this.termCjk = isCjkTerminator(c);
            this.suppress = 'none';
            this.mode = 'term';
            this.pos++;
          } else {
            this.endOfMarks(p, c, out);
          }
          break;
        case 'ws':
          if (isWs(c)) {
            if (isNewline(c)) this.newlines++;
            if (this.contentStart >= 0 && !this.inFence) this.lastSpace = p;
            this.pos++;
          } else if (!this.decideWindow(p, c, out)) {
            return; // needs more lookahead
          }
          break;
      }
    }
  }

  private scanText(p: number, c: number, out: string[]): void {
    if (isNewline(c)) {
      this.candEnd = p;
      this.hasTerm = false;
      this.newlines = 1;
      this.mode = 'ws';
      if (this.fenceClosing) {
        this.inFence = false;
        this.fenceClosing = false;
        this.fenceClosed = true;
      }
      if (this.contentStart >= 0 && !this.inFence) this.lastSpace = p;
      this.pos++;
      return;
    }
    if (isWs(c)) {
      if (this.contentStart >= 0 && !this.inFence) {
        this.lastSpace = p;
        const mark = this.at(p - 1);
        if (isAsciiClause(mark)) {
          this.lastClause = p;
          if (!this.afterAbbreviation(p - 1)) this.clauseEnd(p, out);
        } else if ((mark === HYPHEN || mark === EN_DASH) && isWs(this.at(p - 2))) {
          this.clauseEnd(p, out);
        }
      }
      this.pos++;
      return;
    }
    if (!this.inFence) {
      if (isTerminator(c)) {
        this.hasTerm = true;
        this.suppress = c === DOT ? this.suppression(p) : 'none';
        this.termCjk = isCjkTerminator(c);
        this.mode = 'term';
        this.markContent(p);
        this.pos++;
        return;
      }
      // Each split moves the chunk start past the old content start, so this terminates.
      while (this.contentStart >= 0 && p + 1 - this.contentStart > this.maxChars)
        this.forceSplit(p, out);
      if (isGluedClause(c) && this.contentStart >= 0) {
        this.lastClause = p + 1;
        if (c === EM_DASH && !isDigit(this.at(p - 1)) && this.clauseEnd(p + 1, out)) {
          this.pos++; // the dash ended the chunk it belonged to
          return;
        }
      }
    }
    this.markContent(p);
    this.pos++;
    // The first clause: a comma or semicolon after a word needs no lookahead.
    if ((c === 0x2c || c === 0x3b) && !this.inFence && isLetter(this.at(p - 1)))
      this.clauseEnd(p + 1, out);
  }

  /**
   * A clause ends at `e` (exclusive): with `firstClause`, before any chunk was emitted, and long
   * enough, it becomes the first chunk. True when it did.
   */
  private clauseEnd(e: number, out: string[]): boolean {
    const rule = this.firstClause;
    if (!rule || this.emitted || this.contentStart < 0) return false;
    const text = this.slice(this.contentStart, e).trim();
    if (text.length < rule.minChars || text.split(/\s+/).length < rule.minWords) return false;
    this.emit(this.chunkStart, e, out);
    this.chunkStart = e;
    this.contentStart = -1;
    this.lastClause = -1;
    this.lastSpace = -1;
    return true;
  }

  /** Does the clause mark at `p` follow an abbreviation ("e.g.,", "etc.;")? */
  private afterAbbreviation(p: number): boolean {
    if (this.at(p - 1) !== DOT) return false;
    let i = p - 1;
    while (i > this.base && p - i < MAX_TOKEN && !isWs(this.at(i - 1))) i--;
    const token = this.slice(i, p - 1).replace(LEADING_OPENERS, '');
    return ABBREVIATIONS.has(token.toLowerCase()) || DOTTED_LETTERS.test(token);
  }

  /** The terminator/closer run ended at `p` (char `c`, not consumed). */
  private endOfMarks(p: number, c: number, out: string[]): void {
    this.candEnd = p;
    if (isWs(c)) {
      this.newlines = isNewline(c) ? 1 : 0;
      this.mode = 'ws';
      if (this.contentStart >= 0) this.lastSpace = p;
      this.pos++;
      return;
    }
    // "3.14", "example.com", "a.b@c.io", "?!x": glued to the next word, not a sentence end
    // (CJK sentences need no space).
    if (this.termCjk) this.boundary(p, out);
    this.hasTerm = false;
    this.mode = 'text'; // `c` is scanned as text
  }

  /**
   * The whitespace after a terminator run or a line break ended at `k` (char `c`): decide whether
   * the window is a boundary. Returns false if that needs more text.
   */
  private decideWindow(k: number, c: number, out: string[]): boolean {
    let line: LineStart = 'none';
    if (this.newlines > 0) {
      line = this.lineStart(k);
      if (line === 'wait') return false;
    }
    if (this.inFence) {
      if (line === this.fenceChar) this.fenceClosing = true;
    } else {
      let isBoundary =
        this.newlines >= 2 || line !== 'none' || (this.fenceClosed && this.newlines > 0);
      if (!isBoundary && this.hasTerm) isBoundary = this.termEndsSentence(c);
      if (isBoundary) {
        this.boundary(this.candEnd, out);
      } else if (
        this.contentStart >= 0 &&
        this.candEnd > this.contentStart &&
        (this.newlines > 0 || (this.hasTerm && this.suppress === 'none'))
      ) {
        this.lastClause = this.candEnd; // "Wait... what" / a line break: fine for a forced split
      }
      if (this.newlines > 0) this.fenceClosed = false;
      if (typeof line === 'number') {
        this.inFence = true;
        this.fenceChar = line;
      }
    }
    this.hasTerm = false;
    this.mode = 'text'; // `c` is scanned as text
    return true;
  }

  /** Does the terminator run end the sentence, given the first non-space char `c` after it? */
  private termEndsSentence(c: number): boolean {
    const lowercaseOnSameLine = this.newlines === 0 && isLowercase(c);
    switch (this.suppress) {
      case 'always':
        return false;
      case 'beforeDigit':
        return !isDigit(c) && !lowercaseOnSameLine;
      default:
        return !lowercaseOnSameLine;
    }
  }

  /** Classify a single `.` at `p` by the token before it (abbreviation, initial, list number). */
  private suppression(p: number): Suppress {
    let i = p;
    while (i > this.base && p - i < MAX_TOKEN && !isWs(this.at(i - 1))) i--;
    if (i === p) return 'none';
    if (i > 0 && (i === this.base || !isWs(this.at(i - 1)))) return 'none'; // longer than any abbreviation
    const token = this.slice(i, p).replace(LEADING_OPENERS, '');
    const lower = token.toLowerCase();
    if (ABBREVIATIONS.has(lower) || DOTTED_LETTERS.test(token) || SINGLE_CAPITAL.test(token))
      return 'always';
    if (NUMBER_ABBREVIATIONS.has(lower)) return 'beforeDigit';
    if (LIST_NUMBER.test(token)) {
      let j = i;
      while (
        j > this.base &&
        i - j < MAX_INDENT &&
        (this.at(j - 1) === SPACE || this.at(j - 1) === TAB)
      )
        j--;
      if (j === 0 || (j > this.base && isNewline(this.at(j - 1)))) return 'always'; // "1. " list item
    }
    return 'none';
  }

  /** What starts the line whose first non-space char is at `k`? */
  private lineStart(k: number): LineStart {
    const end = this.base + this.len;
    const c = this.at(k);
    if (c === BACKTICK || c === TILDE) {
      for (let j = k + 1; j < k + 3; j++) {
        if (j >= end) return 'wait';
        if (this.at(j) !== c) return 'none';
      }
      return c;
    }
    if (this.inFence) return 'none';
    if (c === 0x2d || c === 0x2a || c === 0x2b || c === 0x2022 || c === 0x3e) {
      // "- ", "* ", "+ ", "• ", "> "
      if (k + 1 >= end) return 'wait';
      const next = this.at(k + 1);
      return next === SPACE || next === TAB ? 'list' : 'none';
    }
    if (c === 0x23) {
      // "# " .. "###### "
      let j = k;
      while (j < end && j - k < 7 && this.at(j) === 0x23) j++;
      if (j >= end) return 'wait';
      const next = this.at(j);
      return j - k <= 6 && (next === SPACE || next === TAB) ? 'list' : 'none';
    }
    if (isDigit(c)) {
      // "1. ", "12) "
      let j = k;
      while (j < end && j - k < 10 && isDigit(this.at(j))) j++;
      if (j >= end) return 'wait';
      if (j - k > 9) return 'none';
      const mark = this.at(j);
      if (mark !== DOT && mark !== 0x29) return 'none';
      if (j + 1 >= end) return 'wait';
      const next = this.at(j + 1);
      return next === SPACE || next === TAB ? 'list' : 'none';
    }
    return 'none';
  }

  private markContent(p: number): void {
    if (this.contentStart < 0) this.contentStart = p;
  }

  /** A sentence/line boundary at `e`: emit the chunk unless it is shorter than `minChars`. */
  private boundary(e: number, out: string[]): void {
    this.fenceClosed = false;
    const start = this.contentStart;
    if (start < 0) {
      this.chunkStart = e; // only whitespace so far
      return;
    }
    let trimmedEnd = e;
    while (trimmedEnd > start && isWs(this.at(trimmedEnd - 1))) trimmedEnd--;
    if (trimmedEnd - start < this.minChars) {
      this.lastClause = e; // merged forward; still a good place for a forced split
      return;
    }
    this.emit(this.chunkStart, e, out);
    this.chunkStart = e;
    this.contentStart = -1;
    this.lastClause = -1;
    this.lastSpace = -1;
  }

  /** The chunk would exceed `maxChars` by taking the char at `p`: split it somewhere before `p`. */
  private forceSplit(p: number, out: string[]): void {
    const start = this.contentStart;
    let s: number;
    if (this.lastClause > start && this.lastClause - start >= this.minChars) s = this.lastClause;
    else if (this.lastSpace > start) s = this.lastSpace;
    else if (this.lastClause > start) s = this.lastClause;
    else {
      s = p;
      if (s - 1 > start && isLowSurrogate(this.at(s))) s--; // keep surrogate pairs together
    }
    this.emit(this.chunkStart, s, out);
    this.chunkStart = s;
    this.contentStart = -1;
    for (let i = s; i < p; i++) {
      if (!isWs(this.at(i))) {
        this.contentStart = i;
        break;
      }
    }
    if (this.lastClause <= s) this.lastClause = -1;
    if (this.lastSpace <= s) this.lastSpace = -1;
  }
}

// -----------------------------------------------------------------------------------------------
// Markdown → plain text for TTS

/** Tags that sit inside a word run (`<b>x</b>,`): removed without leaving a space. */
const INLINE_TAGS = new Set([
  'a',
  'abbr',
  'b',
  'bdi',
  'bdo',
  'cite',
  'code',
  'data',
  'del',
  'dfn',
  'em',
  'i',
  'ins',
  'kbd',
  'mark',
  'q',
  's',
  'samp',
  'small',
  'span',
  'strong',
  'sub',
  'sup',
  'time',
  'u',
  'var',
]);
const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};
/** Backslash-escaped ASCII punctuation is parked in the private use area so no rule touches it. */
const ESCAPE_BASE = 0xe100;
const CODE_OPEN = '\ue000';
const CODE_CLOSE = '\ue001';

const URL_PART = String.raw`(?:[^()\s]|\([^()\s]*\))*(?:\s+(?:"[^"]*"|'[^']*'))?\s*`;
const IMAGE = new RegExp(String.raw`!\[[^\]\n]*\]\(${URL_PART}\)`, 'g');
const LINK = new RegExp(String.raw`\[([^\]\n]*)\]\(${URL_PART}\)`, 'g');

/**
 * Markdown/HTML → plain speakable text. Removes emphasis markers (`**b**`, `__b__`, `*i*`, `_i_`,
 * `~~s~~`, and unpaired `**`/`*` left over when a chunk boundary fell inside emphasis), inline-code
 * backticks (the code itself is kept), fenced code blocks (content dropped, also when the fence
 * is unterminated), headings, blockquotes, list bullets and numbers, task boxes, horizontal rules,
 * table pipes, images, footnote references, link targets (`[text](url)` → text), HTML tags and
 * comments, and decodes common entities. Whitespace is collapsed. Intraword `_` is kept
 * (`snake_case`), as are apostrophes and ordinary punctuation; `\*`-style escapes give the literal
 * char.
 */
export function stripMarkdown(text: string): string {
  return MARKUP.test(text) ? stripMarkup(text) : text.replace(/\s+/g, ' ').trim();
}

/**
 * Text in which some rule of {@link stripMarkup} could match: a character one of them needs, a line
 * break, a line that starts with a number (a list item), or the private-use characters it uses as
 * placeholders. Text without any of these (most of a model's prose) only has its whitespace
 * collapsed, with the same result.
 */
const MARKUP = /[\n\r\\`~<[*_=\->#+•|&\ue000-\ue17f]|^[ \t]*\d/;

/** {@link stripMarkdown} with every rule applied (exported for the test that the shortcut agrees). */
export function stripMarkup(text: string): string {
  let s = text.replace(/\r\n?/g, '\n');
  s = s.replace(/\\([!-/:-@[-`{-~])/g, (_m, ch: string) =>
    String.fromCharCode(ESCAPE_BASE + ch.charCodeAt(0)),
  );
  s = dropCodeFences(s);

  const code: string[] = [];
  s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_m, _ticks: string, body: string) => {
    code.push(body.trim());
    return `${CODE_OPEN}${code.length - 1}${CODE_CLOSE}`;
  });

  s = s.replace(/<!--[\s\S]*?(?:-->|$)/g, '');
  s = s.replace(/<((?:https?|ftp|mailto):[^<>\s]+)>/gi, '$1');
  s = s.replace(/<([^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)>/g, '$1');
  s = s.replace(/<\/?([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?\/?>/g, (_m, name: string) =>
    INLINE_TAGS.has(name.toLowerCase()) ? '' : ' ',
  );

  s = s.replace(IMAGE, '');
  s = s.replace(/!\[[^\]\n]*\]\[[^\]\n]*\]/g, '');
  s = s.replace(LINK, '$1');
  s = s.replace(/\[\^[^\]\s]+\]/g, ''); // footnote reference
  s = s.replace(/\[([^\]\n]+)\]\[[^\]\n]*\]/g, '$1'); // reference link

  s = s.split('\n').map(stripLine).join('\n');

  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '$1');
  s = s.replace(/(^|[^\p{L}\p{N}_])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}_])/gu, '$1$2');
  s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, '$1');
  s = s.replace(/(^|[^\p{L}\p{N}*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\p{L}\p{N}*])/gu, '$1$2');
  s = s.replace(/(^|[^\p{L}\p{N}_])_(?=[^\s_])([^\n]*?[^\s_])_(?![\p{L}\p{N}_])/gu, '$1$2');
  // Unpaired markers (emphasis cut by a chunk boundary). A lone ` * ` (multiplication) and
  // intraword `2*3`, `snake_case` stay.
  s = s.replace(/\*{2,}|~~/g, '');
  s = s.replace(/(^|[^\p{L}\p{N}_])__(?=\S)|(?<=\S)__(?![\p{L}\p{N}_])/gu, '$1');
  s = s.replace(/(^|\s)\*(?=[^\s*])/g, '$1');
  s = s.replace(/([^\s*])\*(?=\s|$|[.,;:!?)\]"'”’])/g, '$1');
  s = s.replace(/`+/g, '');

  s = s.replace(
    new RegExp(`${CODE_OPEN}(\\d+)${CODE_CLOSE}`, 'g'),
    (_m, i: string) => code[Number(i)] ?? '',
  );
  s = s.replace(/[\ue100-\ue17f]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) - ESCAPE_BASE));
  s = s.replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]+);/gi, decodeEntity);
  return s.replace(/\s+/g, ' ').trim();
}

function decodeEntity(entity: string, name: string): string {
  if (name.startsWith('#')) {
    const cp =
      name[1] === 'x' || name[1] === 'X'
        ? parseInt(name.slice(2), 16)
        : parseInt(name.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : entity;
  }
  return NAMED_ENTITIES[name.toLowerCase()] ?? entity;
}

/** Drop fenced code blocks (``` or ~~~), fence lines included; an unterminated fence runs to the end. */
function dropCodeFences(text: string): string {
  const lines = text.split('\n');
  const kept: string[] = [];
  let fence = '';
  for (const line of lines) {
    const m = /^[ \t]*(`{3,}|~{3,})/.exec(line); // any indent: fences nested in list items
    if (fence) {
      if (
        m?.[1] &&
        m[1][0] === fence[0] &&
        m[1].length >= fence.length &&
        /^[ \t]*[`~]+[ \t]*$/.test(line)
      )
        fence = '';
      continue;
    }
    if (
      m?.[1] &&
      !(m[1][0] === '`' && line.slice(line.indexOf(m[1]) + m[1].length).includes('`'))
    ) {
      fence = m[1];
      continue;
    }
    kept.push(line);
  }
  return kept.join('\n');
}

function stripLine(line: string): string {
  if (/^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$/.test(line)) return ''; // horizontal rule / setext underline
  if (/^[ \t]*=+[ \t]*$/.test(line)) return ''; // setext underline
  if (/^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$/.test(line)) return ''; // table rule
  if (/^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S/.test(line)) return ''; // reference / footnote definition
  let s = line.replace(/^[ \t]*(?:>[ \t]?)+/, '');
  const heading = /^[ \t]{0,3}#{1,6}(?:[ \t]+|$)(.*)$/.exec(s);
  if (heading) s = (heading[1] ?? '').replace(/[ \t]+#+[ \t]*$/, '');
  s = s.replace(/^[ \t]*(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)/, '');
  s = s.replace(/^\[[ xX]\][ \t]+/, '');
  if (/^[ \t]*\|.*\|[ \t]*$/.test(s)) {
    s = s
      .trim()
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim())
      .filter((cell) => cell.length > 0)
      .join(', ');
  }
  return s;
}
