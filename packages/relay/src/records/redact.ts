import type { RedactKind } from '../config/config.js';

const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/gu;
/**
 * Runs of digits with the separators people write in numbers (spaces, dashes, dots, slashes,
 * brackets, a leading +). What a run is — card, phone, or neither (a date, an amount) — is decided
 * by its digits.
 */
const NUMBER_RUN = /\+?\(?\d(?:[\d\s().\-/]*\d)?/g;

/** The Luhn checksum every payment card number satisfies. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

function classify(run: string, kinds: ReadonlySet<RedactKind>): string | undefined {
  const digits = run.replace(/\D/g, '');
  if (kinds.has('card') && digits.length >= 13 && digits.length <= 19 && luhnValid(digits))
    return '[card]';
  // A phone number: 7 to 15 digits (E.164), written as one number rather than as a date or amount.
  if (
    kinds.has('phone') &&
    digits.length >= 7 &&
    digits.length <= 15 &&
    !/^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$/.test(run.trim()) &&
    !/^\d+\.\d{1,2}$/.test(run.trim())
  )
    return '[phone]';
  return undefined;
}

/** Replaces e-mail addresses, card numbers (Luhn-checked) and phone numbers with `[email]`, `[card]`, `[phone]`. */
export function redactText(text: string, kinds: readonly RedactKind[]): string {
  if (kinds.length === 0 || !text) return text;
  const set = new Set(kinds);
  let out = set.has('email') ? text.replace(EMAIL, '[email]') : text;
  if (set.has('card') || set.has('phone'))
    out = out.replace(NUMBER_RUN, (run) => {
      // Keep the separators around the number as they were (`, ` after it, a space before).
      const lead = /^[\s().\-/]*/.exec(run)?.[0] ?? '';
      const trail = /[\s().\-/]*$/.exec(run.slice(lead.length))?.[0] ?? '';
      const core = run.slice(lead.length, run.length - trail.length);
      const label = classify(core, set);
      return label ? `${lead}${label}${trail}` : run;
    });
  return out;
}

/** {@link redactText} over every string in a JSON value (tool arguments and results). */
export function redactValue(value: unknown, kinds: readonly RedactKind[], depth = 0): unknown {
  if (kinds.length === 0) return value;
  if (typeof value === 'string') return redactText(value, kinds);
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, kinds, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, redactValue(v, kinds, depth + 1)]),
  );
}
