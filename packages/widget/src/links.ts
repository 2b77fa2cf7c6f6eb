/**
 * Links in replies. A reply's text comes from a model (and from documents it read), so a link is a
 * link only when it is http(s) and its host is one the site allows; everything else stays text.
 * Part of the lazily loaded extras.
 */

/** A piece of a reply: text, or a link the visitor may follow. */
export type ReplyPart = string | { href: string; text: string };

/** `[label](url)` (the URL may hold balanced parentheses), or a bare `http(s)://…` URL (trailing punctuation is not part of it). */
const CANDIDATES =
  /\[([^\]\n]{1,300})\]\(\s*((?:[^()\s]|\([^()\s]{0,200}\)){1,2000})\s*\)|\bhttps?:\/\/[^\s<>"'`]{1,2000}/gi;
const TRAILING = /[.,;:!?'")\]}>]+$/;

/**
 * True when `pattern` (`example.com`, `example.com:8443`, `*.example.com`) covers the URL's host.
 * A wildcard covers subdomains only, not the domain itself (as in client keys' origins).
 */
export function hostMatches(url: URL, pattern: string): boolean {
  const p = pattern.trim().toLowerCase();
  if (!p) return false;
  const host = p.includes(':') ? url.host : url.hostname;
  return p.startsWith('*.') ? host.endsWith(p.slice(1)) : host === p;
}

/** The URL, if it is http(s) on an allowed host (never `javascript:`, `data:` or another scheme). */
export function safeUrl(raw: string, hosts: readonly string[], base: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  return hosts.some((pattern) => hostMatches(url, pattern)) ? url : undefined;
}

/**
 * Splits a reply into text and links. A refused Markdown link keeps only its label; a refused
 * bare URL stays as it was written. Relative Markdown links resolve against `base` (the page).
 */
export function linkify(text: string, hosts: readonly string[], base: string): ReplyPart[] {
  const parts: ReplyPart[] = [];
  let last = 0;
  const pushText = (value: string) => {
    if (!value) return;
    const previous = parts.at(-1);
    if (typeof previous === 'string') parts[parts.length - 1] = previous + value;
    else parts.push(value);
  };
  for (const match of text.matchAll(CANDIDATES)) {
    const index = match.index;
    const [whole, label, target] = match;
    pushText(text.slice(last, index));
    if (label !== undefined && target !== undefined) {
      // Only absolute http(s) or a path: `javascript:…`, `data:…` and friends never become links.
      const url = /^(https?:\/\/|\/(?!\/))/i.test(target)
        ? safeUrl(target, hosts, base)
        : undefined;
      if (url) parts.push({ href: url.href, text: label });
      else pushText(label);
      last = index + whole.length;
      continue;
    }
    const trailing = TRAILING.exec(whole)?.[0] ?? '';
    const bare = whole.slice(0, whole.length - trailing.length);
    const url = safeUrl(bare, hosts, base);
    if (url) parts.push({ href: url.href, text: bare });
    else pushText(bare);
    pushText(trailing);
    last = index + whole.length;
  }
  pushText(text.slice(last));
  return parts;
}
