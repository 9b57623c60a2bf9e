import { createServer, type Server } from 'node:http';
import type { CallbackSigner } from '../callbacks/signer.js';
import { listenHttp } from '../sockets/listen.js';

/** What the side HTTP port serves; metrics are added by the metrics module when enabled. */
export interface HttpPortOptions {
  readonly signer: CallbackSigner;
  readonly ready: () => boolean;
  readonly extraRoutes?: Record<string, () => Promise<{ type: string; body: string }>>;
}

/**
 * The side HTTP port (`--metrics-listen`): `/healthz` for probes and `/.well-known/jwks.json`, the
 * public keys callback endpoints verify authproxy's signatures with. Never serves anything secret.
 */
export async function startHttpPort(
  listen: string,
  opts: HttpPortOptions,
): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      const ok = opts.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    if (path === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.signer.jwks()));
      return;
    }
    const route = path ? opts.extraRoutes?.[path] : undefined;
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    route().then(
      ({ type, body }) => res.writeHead(200, { 'content-type': type }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  return { server, address: await listenHttp(server, listen) };
}
