/**
 * Fetching the owner's pages: one URL, a sitemap.xml (nested sitemaps too), or a start URL whose
 * same-origin links are followed breadth-first — at most `maxPages` pages, never another origin.
 * Every request goes through the SSRF guard of the HTTP tools (`tools/ssrf.ts`: private, loopback
 * and link-local addresses are refused unless `toolAllowHosts` lists the host, checked when
 * connecting, so redirects and DNS rebinding are covered), with a time and a size limit.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { assertLiteralAllowed, guardedLookup, type AddressPolicy } from '../tools/ssrf.js';
import { KnowledgeError } from './errors.js';
import { loadLinkedom } from './extract.js';

export const DEFAULT_MAX_PAGES = 50;
export const MAX_PAGES_LIMIT = 2_000;
const DEFAULT_TIMEOUT_MS = 15_000;
/** Bytes of one response (a PDF brochure fits; a video does not). */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
const MAX_REDIRECTS = 3;
/** Sitemaps read from one sitemap index, and URLs taken from one sitemap. */
const MAX_SITEMAPS = 20;
const MAX_SITEMAP_URLS = 50_000;
/** Links queued at most while crawling (the frontier stays bounded on a site of endless pages). */
const MAX_QUEUE = 10_000;

export interface FetchPolicy extends AddressPolicy {
  timeoutMs?: number;
  maxBytes?: number;
}

export interface FetchedPage {
  /** The address after redirects. */
  url: string;
  contentType: string;
  body: Buffer;
}

function fetchOnce(
  url: URL,
  policy: FetchPolicy,
  signal: AbortSignal | undefined,
  redirects: number,
  origin: string,
): Promise<FetchedPage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.reject(
      new KnowledgeError('bad_request', `unsupported URL scheme ${url.protocol}`),
    );
  try {
    assertLiteralAllowed(url.hostname, policy);
  } catch (error) {
    return Promise.reject(new KnowledgeError('refused', `refused: ${(error as Error).message}`));
  }
  const maxBytes = policy.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeout = AbortSignal.timeout(policy.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<FetchedPage>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: {
          'user-agent': 'voicebot-relay knowledge crawler',
          accept:
            'text/html, application/xhtml+xml, text/markdown, text/plain, application/pdf, application/xml;q=0.9, */*;q=0.5',
        },
        lookup: guardedLookup(policy) as never,
        signal: combined,
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location) {
          res.resume();
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            return reject(new KnowledgeError('fetch_failed', `${url.href}: invalid redirect`));
          }
          if (next.origin !== origin)
            return reject(
              new KnowledgeError(
                'refused',
                `${url.href}: redirects to another site (${next.origin}), not followed`,
              ),
            );
          if (redirects >= MAX_REDIRECTS)
            return reject(new KnowledgeError('fetch_failed', `${url.href}: too many redirects`));
          resolve(fetchOnce(next, policy, signal, redirects + 1, origin));
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          return reject(new KnowledgeError('fetch_failed', `${url.href}: HTTP ${status}`));
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > maxBytes) {
          res.destroy();
          return reject(
            new KnowledgeError('too_large', `${url.href}: ${declared} bytes (limit ${maxBytes})`),
          );
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > maxBytes) {
            res.destroy();
            reject(new KnowledgeError('too_large', `${url.href}: over ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            url: url.href,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (error) =>
          reject(new KnowledgeError('fetch_failed', `${url.href}: ${error.message}`)),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'BlockedAddressError' || error.code === 'EBLOCKED')
        reject(new KnowledgeError('refused', `refused: ${error.message}`));
      else if (timeout.aborted && !signal?.aborted)
        reject(
          new KnowledgeError(
            'fetch_failed',
            `${url.href}: no answer within ${policy.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`,
          ),
        );
      else if (signal?.aborted) reject(error);
      else reject(new KnowledgeError('fetch_failed', `${url.href}: ${error.message}`));
    });
    req.end();
  });
}

/** GETs one URL through the SSRF guard; redirects (at most 3) only within its origin. */
export function fetchPage(
  url: string | URL,
  policy: FetchPolicy,
  signal?: AbortSignal,
): Promise<FetchedPage> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new KnowledgeError('bad_request', `not a URL: ${String(url)}`));
  }
  return fetchOnce(parsed, policy, signal, 0, parsed.origin);
}

const decodeXml = (text: string) =>
  text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

function isSitemap(page: FetchedPage): boolean {
  const head = page.body.subarray(0, 2048).toString('utf8');
  return /<(urlset|sitemapindex)[\s>]/i.test(head);
}

function sitemapLocs(page: FetchedPage): { urls: string[]; sitemaps: string[] } {
  const text = page.body.toString('utf8');
  const locs = [...text.matchAll(/<loc>\s*([^<]+?)\s*<\/loc>/gi)]
    .slice(0, MAX_SITEMAP_URLS)
    .map((m) => decodeXml(m[1] ?? ''));
  return /<sitemapindex[\s>]/i.test(text)
    ? { urls: [], sitemaps: locs }
    : { urls: locs, sitemaps: [] };
}

/** Paths that are never documents (images, scripts, archives, media). */
const SKIPPED =
  /\.(png|jpe?g|gif|webp|svg|ico|css|js|mjs|json|zip|gz|tgz|rar|7z|mp[34]|m4a|wav|ogg|webm|mov|avi|woff2?|ttf|eot|exe|dmg|iso|xml)$/i;

/** Same-origin links of an HTML page, without fragments. */
export async function pageLinks(html: string, base: string): Promise<string[]> {
  const { parseHTML } = await loadLinkedom();
  const { document } = parseHTML(html);
  const origin = new URL(base).origin;
  const baseHref = document.querySelector('base[href]')?.getAttribute('href');
  let resolvedBase = base;
  try {
    if (baseHref) resolvedBase = new URL(baseHref, base).href;
  } catch {
    // keep the page's own address
  }
  const out: string[] = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href') ?? '';
    let url: URL;
    try {
      url = new URL(href, resolvedBase);
    } catch {
      continue;
    }
    url.hash = '';
    if (url.origin !== origin || SKIPPED.test(url.pathname)) continue;
    out.push(url.href);
  }
  return out;
}

export interface CrawlOptions {
  policy: FetchPolicy;
  /** Pages (documents, not sitemaps) fetched at most. Default 50. */
  maxPages?: number;
  signal?: AbortSignal;
}

export type CrawlItem = { page: FetchedPage } | { url: string; error: KnowledgeError };

/**
 * The pages of the owner's site from `start`: a sitemap's URLs (same origin only), or the start
 * page and the pages its same-origin links lead to, breadth-first. Yields each page (or the
 * reason it could not be fetched) as it comes; stops at `maxPages` fetches.
 */
export async function* crawl(start: string, options: CrawlOptions): AsyncGenerator<CrawlItem> {
  const maxPages = Math.min(MAX_PAGES_LIMIT, Math.max(1, options.maxPages ?? DEFAULT_MAX_PAGES));
  const origin = new URL(start).origin;
  const first = await fetchPage(start, options.policy, options.signal);
  const seen = new Set<string>([start, first.url]);
  const queue: string[] = [];
  let fetched = 0;
  if (isSitemap(first)) {
    const sitemaps = [first];
    for (let i = 0; i < sitemaps.length && i < MAX_SITEMAPS; i++) {
      const { urls, sitemaps: nested } = sitemapLocs(sitemaps[i] as FetchedPage);
      for (const url of urls)
        if (sameOrigin(url, origin) && !seen.has(url) && queue.length < MAX_QUEUE) {
          seen.add(url);
          queue.push(url);
        }
      for (const url of nested) {
        if (!sameOrigin(url, origin) || seen.has(url) || sitemaps.length >= MAX_SITEMAPS) continue;
        seen.add(url);
        try {
          sitemaps.push(await fetchPage(url, options.policy, options.signal));
        } catch (error) {
          yield { url, error: asKnowledgeError(error, options.signal) };
        }
      }
    }
  } else {
    fetched = 1;
    yield { page: first };
    if (isHtml(first)) await enqueue(first);
  }
  async function enqueue(page: FetchedPage) {
    for (const link of await pageLinks(page.body.toString('utf8'), page.url)) {
      if (seen.has(link) || queue.length >= MAX_QUEUE) continue;
      seen.add(link);
      queue.push(link);
    }
  }
  const followLinks = !isSitemap(first);
  while (queue.length > 0 && fetched < maxPages) {
    const url = queue.shift() as string;
    fetched++;
    let page: FetchedPage;
    try {
      page = await fetchPage(url, options.policy, options.signal);
    } catch (error) {
      yield { url, error: asKnowledgeError(error, options.signal) };
      continue;
    }
    seen.add(page.url);
    yield { page };
    if (followLinks && isHtml(page)) await enqueue(page);
  }
}

function sameOrigin(url: string, origin: string): boolean {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

function isHtml(page: FetchedPage): boolean {
  return (
    /html/i.test(page.contentType) ||
    (!page.contentType && /^\s*</.test(page.body.subarray(0, 64).toString('utf8')))
  );
}

function asKnowledgeError(error: unknown, signal?: AbortSignal): KnowledgeError {
  if (signal?.aborted) throw error;
  return error instanceof KnowledgeError
    ? error
    : new KnowledgeError('fetch_failed', (error as Error).message);
}
