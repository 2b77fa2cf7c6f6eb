/**
 * Real-Chromium test harness: launches Debian's Chromium through puppeteer-core and serves files
 * from a loopback HTTP origin (http://127.0.0.1 is a "potentially trustworthy" origin, so pages are
 * secure contexts: AudioWorklet and getUserMedia are available).
 */
import { mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

export type { Browser, Page } from 'puppeteer-core';

/** Absolute path of the repository root (…/main). */
export const repoRoot = resolve(new URL('../..', import.meta.url).pathname);

export interface LaunchOptions {
  /**
   * WAV file the fake microphone plays (`--use-file-for-fake-audio-capture`). Relative paths are
   * resolved against the repo root. `%noloop` is appended unless `loop` is true.
   */
  fakeMicWav?: string;
  /** Loop the fake-mic file (Chromium's default). Default false. */
  loop?: boolean;
  /** Extra Chromium switches. */
  args?: string[];
}

const BASE_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
  '--mute-audio',
];

/**
 * Launch headless Chromium (`CHROMIUM_PATH`, default /usr/bin/chromium) with a fresh profile
 * directory that is deleted when the browser closes (`browser.close()`).
 */
export async function launchChromium(opts: LaunchOptions = {}): Promise<Browser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'voicebot-chromium-'));
  const args = [...BASE_ARGS];
  if (opts.fakeMicWav !== undefined) {
    const wav = isAbsolute(opts.fakeMicWav) ? opts.fakeMicWav : resolve(repoRoot, opts.fakeMicWav);
    await stat(wav); // fail early with ENOENT instead of a silent fake mic
    args.push(
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}${opts.loop === true ? '' : '%noloop'}`,
    );
  }
  if (opts.args) args.push(...opts.args);
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      headless: true,
      userDataDir,
      args,
      // keep stdout/stderr of the wrapper script out of the test output
      dumpio: false,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  // Delete the profile only once the Chromium process has exited ('disconnected' fires earlier,
  // while Chromium may still be writing to it): wrap close(), which waits for the process.
  const removeProfile = (): Promise<void> =>
    rm(userDataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(
      () => undefined,
    );
  const close = browser.close.bind(browser);
  browser.close = async (): Promise<void> => {
    try {
      await close();
    } finally {
      await removeProfile();
    }
  };
  // a crashed or externally killed browser: best effort once its process is gone
  browser.once('disconnected', () => {
    const proc = browser.process();
    if (proc && proc.exitCode === null && proc.signalCode === null)
      proc.once('exit', () => void removeProfile());
    else void removeProfile();
  });
  return browser;
}

const MIME: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.wav': 'audio/wav',
  '.json': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

export interface StaticServer {
  /** Origin, e.g. `http://127.0.0.1:43121` (no trailing slash). */
  url: string;
  /** Every request, in arrival order (`GET /sdk/stt-worker.js`). */
  requests: { method: string; path: string }[];
  /** Bodies POSTed to `/csp-report` (a CSP `report-uri`), parsed as JSON. */
  reports: unknown[];
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Extra response headers for a served path (a CSP, CORS…); they override the defaults. */
  headers?: (pathname: string) => Record<string, string>;
  /** Documents served at exact paths, before the directories (`{ '/host.html': '<!doctype html>…' }`). */
  pages?: Record<string, string>;
  /** Files served at exact paths, before the directories (`{ '/widget/stt-worker.js': 'test/…/fake.js' }`). */
  files?: Record<string, string>;
}

/**
 * Serve directories over HTTP on 127.0.0.1 (random port). `rootDirs` maps URL prefixes to
 * directories (relative paths resolve against the repo root), e.g.
 * `{ '/worklets': 'packages/sdk/src/audio/worklets', '/': 'test/browser/pages' }`.
 * The longest matching prefix wins. `GET /` with no mapping of its own returns a blank HTML page.
 * Responses are `no-store`, so a file the page gets a second time without a request came from a
 * cache the page itself keeps (Cache API), not from the HTTP cache.
 */
export async function serveStatic(
  rootDirs: Record<string, string>,
  options: ServeOptions = {},
): Promise<StaticServer> {
  const mounts = Object.entries(rootDirs)
    .map(([prefix, dir]) => ({
      prefix: '/' + prefix.replace(/^\/+|\/+$/g, ''),
      dir: isAbsolute(dir) ? dir : resolve(repoRoot, dir),
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const requests: StaticServer['requests'] = [];
  const reports: unknown[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(body);
    };
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      return send(400, 'bad url');
    }
    requests.push({ method: req.method ?? 'GET', path: pathname });
    if (req.method === 'POST' && pathname === '/csp-report') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      try {
        reports.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reports.push({ unparsed: Buffer.concat(chunks).toString('utf8') });
      }
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const extra = options.headers?.(pathname) ?? {};
    const page = options.pages?.[pathname];
    if (page !== undefined) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        ...extra,
      });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    const candidates: string[] = [];
    const exact = options.files?.[pathname];
    if (exact !== undefined) candidates.push(isAbsolute(exact) ? exact : resolve(repoRoot, exact));
    for (const { prefix, dir } of mounts) {
      const root = prefix === '/' ? '/' : prefix + '/';
      if (pathname !== prefix && !pathname.startsWith(root)) continue;
      const rel = normalize(pathname.slice(prefix === '/' ? 1 : prefix.length + 1));
      const file = resolve(dir, rel === '.' ? 'index.html' : rel);
      if (file !== dir && !file.startsWith(dir + sep)) return send(403, 'forbidden');
      candidates.push(file);
    }
    for (const file of candidates) {
      try {
        const body = await readFile(file);
        res.writeHead(200, {
          'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'content-length': String(body.length),
          'cache-control': 'no-store',
          ...extra,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      } catch {
        continue; // try a shorter mount
      }
    }
    if (pathname === '/' || pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...extra });
      res.end('<!doctype html><meta charset="utf-8"><title>voice-bot test</title><body></body>');
      return;
    }
    send(404, 'not found');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reports,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
