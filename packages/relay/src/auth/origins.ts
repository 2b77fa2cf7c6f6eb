/**
 * Origin allow-lists for publishable keys. A pattern is an exact origin (`https://shop.example.com`,
 * `http://localhost:8787`) or a subdomain wildcard (`https://*.example.com`, which does NOT match
 * `https://example.com` itself). Default ports are normalised away, as browsers do in `Origin`.
 */
export type OriginPattern =
  | { kind: 'exact'; origin: string }
  | { kind: 'wildcard'; scheme: string; suffix: string; port: string };

export class InvalidOriginPattern extends Error {
  override readonly name = 'InvalidOriginPattern';
}

const WILDCARD = /^(https?):\/\/\*\.([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::(\d{1,5}))?$/i;

export function parseOriginPattern(pattern: string): OriginPattern {
  const trimmed = pattern.trim();
  const wildcard = WILDCARD.exec(trimmed);
  if (wildcard) {
    const [, scheme = '', host = '', port = ''] = wildcard;
    return {
      kind: 'wildcard',
      scheme: scheme.toLowerCase(),
      suffix: `.${host.toLowerCase()}`,
      port: normalisePort(scheme, port),
    };
  }
  const origin = normaliseOrigin(trimmed);
  if (!origin)
    throw new InvalidOriginPattern(
      `not an origin: ${JSON.stringify(pattern)} (expected scheme://host[:port])`,
    );
  return { kind: 'exact', origin };
}

/** `scheme://host[:port]` in canonical form, or undefined if `value` is not a bare http(s) origin. */
export function normaliseOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash) return undefined;
  if (!/^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/i.test(url.hostname)) return undefined;
  if (url.pathname !== '/' || /^[a-z]+:\/\/[^/]+\/./i.test(value)) return undefined;
  return url.origin;
}

function normalisePort(scheme: string, port: string): string {
  if (!port) return '';
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) return '';
  return port;
}

export function originMatches(origin: string, pattern: OriginPattern): boolean {
  if (pattern.kind === 'exact') return origin === pattern.origin;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return (
    url.protocol === `${pattern.scheme}:` &&
    url.port === pattern.port &&
    url.hostname.endsWith(pattern.suffix) &&
    url.hostname.length > pattern.suffix.length
  );
}

export function isOriginAllowed(origin: string | undefined, patterns: readonly string[]): boolean {
  if (!origin) return false;
  const canonical = normaliseOrigin(origin);
  if (!canonical) return false;
  return patterns.some((p) => {
    try {
      return originMatches(canonical, parseOriginPattern(p));
    } catch {
      return false;
    }
  });
}
