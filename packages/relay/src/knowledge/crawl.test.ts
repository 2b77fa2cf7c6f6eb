import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { crawl, fetchPage, type CrawlItem } from './crawl.js';

async function serve(
  handler: (path: string) => { status?: number; type?: string; body?: string; location?: string },
) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const out = handler((req.url ?? '/').replace(/\?.*/, ''));
    res.statusCode = out.status ?? 200;
    if (out.location) res.setHeader('location', out.location);
    res.setHeader('content-type', out.type ?? 'text/html');
    res.end(out.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, hits, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function collect(items: AsyncGenerator<CrawlItem>) {
  const pages: string[] = [];
  const errors: string[] = [];
  for await (const item of items) {
    if ('page' in item) pages.push(new URL(item.page.url).pathname);
    else errors.push(`${item.url}: ${item.error.code}`);
  }
  return { pages, errors };
}

describe('crawl', () => {
  let site: Awaited<ReturnType<typeof serve>>;
  let offsite: Awaited<ReturnType<typeof serve>>;
  const allow = { allowHosts: ['127.0.0.1'] };

  before(async () => {
    offsite = await serve(() => ({ body: '<p>elsewhere</p>' }));
    site = await serve((path) => {
      const page = (links: string[]) => ({
        body: `<html><body><main><p>page ${path}</p>${links.map((l) => `<a href="${l}">x</a>`).join('')}</main></body></html>`,
      });
      if (path === '/')
        return page(['/a', '/b#top', 'c', '/logo.png', `${offsite.url}/off`, 'mailto:x@y.test']);
      if (path === '/a' || path === '/b' || path === '/c') return page(['/', '/d', '/e']);
      if (path === '/d' || path === '/e') return page([]);
      if (path === '/sitemap.xml')
        return {
          type: 'application/xml',
          body: `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${site.url}/a</loc></url><url><loc>${site.url}/c?x=1&amp;y=2</loc></url><url><loc>${offsite.url}/off</loc></url></urlset>`,
        };
      if (path === '/away') return { status: 302, location: `${offsite.url}/off` };
      return { status: 404 };
    });
  });
  after(async () => {
    await site.close();
    await offsite.close();
  });

  test('private addresses are refused unless toolAllowHosts lists the host', async () => {
    await assert.rejects(
      collect(crawl(`${site.url}/`, { policy: { allowHosts: [] } })),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'refused');
        return true;
      },
    );
    await assert.rejects(
      fetchPage('http://169.254.169.254/latest/meta-data/', { allowHosts: [] }),
      /refused/,
    );
    assert.equal(site.hits.length, 0);
  });

  test('a start page: same-site links breadth-first, within the page limit, never off-site', async () => {
    site.hits.length = 0;
    const { pages, errors } = await collect(crawl(`${site.url}/`, { policy: allow, maxPages: 4 }));
    assert.deepEqual(pages, ['/', '/a', '/b', '/c']);
    assert.deepEqual(errors, []);
    assert.equal(site.hits.length, 4, 'the limit counts fetches');
    assert.equal(offsite.hits.length, 0, 'off-site links are not followed');
    const all = await collect(crawl(`${site.url}/`, { policy: allow, maxPages: 50 }));
    assert.deepEqual(all.pages.sort(), ['/', '/a', '/b', '/c', '/d', '/e']);
  });

  test('a sitemap lists the pages (same site only); a redirect elsewhere is refused', async () => {
    site.hits.length = 0;
    const { pages } = await collect(crawl(`${site.url}/sitemap.xml`, { policy: allow }));
    assert.deepEqual(pages, ['/a', '/c']);
    assert.deepEqual(site.hits, ['/sitemap.xml', '/a', '/c?x=1&y=2']);
    assert.equal(offsite.hits.length, 0);
    await assert.rejects(
      fetchPage(`${site.url}/away`, { allowHosts: ['127.0.0.1'] }),
      /another site/,
    );
    await assert.rejects(fetchPage(`${site.url}/missing`, allow), /HTTP 404/);
  });
});
