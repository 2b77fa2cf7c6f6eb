import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/** Security headers on every response (Hono's `secureHeaders`); static files keep the cross-origin CORP they set. */
export function securityHeaders(): MiddlewareHandler {
  const headers = secureHeaders({
    overwrite: false,
    strictTransportSecurity: 'max-age=15552000',
    xFrameOptions: 'DENY',
  });
  return async (c, next) => {
    await headers(c, async () => {
      await next();
      const type = c.res.headers.get('content-type') ?? '';
      // API responses are never rendered: nothing may load or frame them.
      if (type.startsWith('application/json') || type.startsWith('text/plain')) {
        c.res.headers.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
      }
    });
  };
}
