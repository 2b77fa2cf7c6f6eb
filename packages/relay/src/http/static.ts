import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';

export interface StaticDir {
  urlPath: string;
  dir: string;
  /** Serve only files with these endings (e.g. `['.html', '.js']`); the rest fall through. */
  extensions?: string[];
}

/** Content-hashed chunks never change; entry files and assets are revalidated now and then. */
function cacheControl(path: string): string {
  if (/\/chunks\/[^/]+-[A-Za-z0-9_-]{6,}\.js$/.test(path))
    return 'public, max-age=31536000, immutable';
  if (/\.(wasm|onnx|mjs)$/.test(path)) return 'public, max-age=86400';
  return 'public, max-age=300';
}

/**
 * Static folders (the widget's script-tag build, a demo site), with precompressed variants and
 * the CORS that pages on other origins need to import modules, worklets and wasm from them.
 */
export function staticRoutes(dirs: readonly StaticDir[]): Hono {
  const app = new Hono();
  for (const { urlPath, dir, extensions } of dirs) {
    const prefix = urlPath.endsWith('/') ? urlPath : `${urlPath}/`;
    app.use(`${prefix}*`, async (c, next) => {
      await next();
      if (c.res.status !== 200) return;
      c.res.headers.set('Access-Control-Allow-Origin', '*');
      c.res.headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
      c.res.headers.set('X-Content-Type-Options', 'nosniff');
      c.res.headers.set('Cache-Control', cacheControl(c.req.path));
    });
    const serveDir = serveStatic({
      root: dir,
      precompressed: true,
      rewriteRequestPath: (path) => path.slice(prefix.length - 1),
    });
    // Other files of the folder are not served (the request goes on to the routes, or a 404).
    const served = (path: string) =>
      !extensions || path.endsWith('/') || extensions.some((ext) => path.endsWith(ext));
    app.use(`${prefix}*`, (c, next) => (served(c.req.path) ? serveDir(c, next) : next()));
  }
  return app;
}
