import type { KeyObject } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyRequest } from 'fastify';
import { errorLine } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import type { Logger } from '../log.js';
import { parseListenAddress } from '../sockets/listen.js';
import { bindPrivateSocket } from '../sockets/unix-socket.js';
import type { PolicyRegistry } from '../sandboxes/registry.js';
import type { SandboxStore } from '../sandboxes/store.js';
import { DEFAULT_IDENTITY, type SandboxIdentity } from '../contracts/identity.js';
import { ApiError } from './api-error.js';
import { createCallbackPolicy } from '../config/callback-policy.js';
import { openApiDocument } from './openapi.js';
import { registerSandboxRoutes } from './routes.js';
import { registerLinkRoutes } from './link-routes.js';
import { mayAccess, type AdminPrincipal, type AdminTokens } from './tokens.js';

/** Default request body limit: a proxy_config of a few hundred rules fits comfortably. */
export const DEFAULT_ADMIN_BODY_LIMIT = 256 * 1024;
/**
 * Default bound on receiving one whole request (headers and body). Fastify's default is none, which let a
 * client trickle a body a byte at a time and hold a connection (and its buffers) for ever.
 */
export const DEFAULT_ADMIN_REQUEST_TIMEOUT_MS = 30_000;

/** Settings of the admin API (shared-service mode). */
export interface AdminServerOptions {
  /** `host:port` or `unix:/path` (a Unix socket is created with mode 0600). */
  readonly listen: string;
  readonly tokens: AdminTokens;
  readonly store: SandboxStore;
  /** With `links` (a store that keeps sandbox links), the link and address routes are served too. */
  readonly registry: Pick<PolicyRegistry, 'isFileSandbox' | 'check'> &
    Partial<Pick<PolicyRegistry, 'links' | 'identityFor'>>;
  /** The proxy's public sealing key; without it, the API refuses opaque values sent in plaintext. */
  readonly sealPublicKey: KeyObject | undefined;
  readonly log: Logger;
  /** Operator allow-list for callback URLs: hostnames, `*.domain` patterns, IPs or CIDRs (metadata addresses are always refused). */
  readonly callbackPolicy?: { readonly allow: readonly string[] };
  readonly bodyLimitBytes?: number;
  /** Bound on receiving a whole request; on expiry Node answers 408 and closes the connection. */
  readonly requestTimeoutMs?: number;
  /** The serve defaults (`--tenant-id`, `--organization-id`) of sandboxes stored without a tenant. */
  readonly defaultIdentity?: SandboxIdentity;
}

/** A running admin API. */
export interface AdminServer {
  /** The bound address: `host:port` (the real port when 0 was asked) or `unix:/path`. */
  readonly address: string;
  close(): Promise<void>;
}

const BEARER_CHALLENGE = 'Bearer realm="authproxy-admin"';
/** Methods whose requests carry no body in this API: an empty body with a JSON content type is no body. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** Maps fastify's own errors (body parsing, limits) and ours to `{error, problems?}` with the right status. */
function toApiError(err: FastifyError, limit: number): ApiError | undefined {
  if (err instanceof ApiError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, `request body is larger than ${limit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'content-type must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'request body is empty; expected a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'content-length does not match the body');
  }
  // secure-json-parse refuses __proto__ / constructor.prototype keys (prototype poisoning).
  if (err instanceof SyntaxError || err.statusCode === 400)
    return new ApiError(400, 'request body is not acceptable JSON');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500)
    return new ApiError(err.statusCode, 'bad request');
  return undefined;
}

/**
 * Starts the admin HTTP API on its own address: per-sandbox proxy_config CRUD, env placeholders, an
 * OpenAPI document and a health probe. Exists so a fleet's orchestrator can create, patch and delete each
 * sandbox's config at run time (stored in Redis, seen by every replica) without ever being able to read
 * a secret back. Fastify does routing, body limits and JSON parsing (with prototype-poisoning protection);
 * its own logging is off, so no URL, header or body is logged by it — the API logs errors and audit lines.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const listen = parseListenAddress(opts.listen, '--admin-listen');
  const limit = opts.bodyLimitBytes ?? DEFAULT_ADMIN_BODY_LIMIT;
  const callbackPolicy = createCallbackPolicy(opts.callbackPolicy?.allow ?? []);
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_ADMIN_REQUEST_TIMEOUT_MS;
  const app = Fastify({
    logger: false,
    bodyLimit: limit,
    routerOptions: { maxParamLength: 512 },
    return503OnClosing: true,
    forceCloseConnections: true,
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default): check often enough to honour them.
    requestTimeout,
    http: {
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
      headersTimeout: requestTimeout,
      requestTimeout,
    },
  });
  // JSON only: without the text/plain parser, every other content type is a 415.
  app.removeContentTypeParser('text/plain');
  // Generic HTTP clients send `Content-Type: application/json` (often with `Content-Length: 0`) on every
  // request, bodyless GETs and DELETEs included: those mean "no body", not "an empty JSON document".
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' && BODYLESS_METHODS.has(request.method)) done(null, undefined);
    else json(request, body as string, done);
  });

  const principals = new WeakMap<FastifyRequest, AdminPrincipal>();
  const authorize = async (request: FastifyRequest): Promise<void> => {
    const principal = await opts.tokens.authenticate(request.headers.authorization);
    if (!principal) {
      const challenge = request.headers.authorization ? `${BEARER_CHALLENGE}, error="invalid_token"` : BEARER_CHALLENGE;
      throw new ApiError(
        401,
        request.headers.authorization ? 'invalid bearer token' : 'bearer token required',
        undefined,
        { 'www-authenticate': challenge },
      );
    }
    const id = (request.params as { id?: string }).id ?? '';
    if (!SANDBOX_ID.test(id))
      throw new ApiError(400, 'invalid sandbox id', [
        'id: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : - and start with a letter or digit',
      ]);
    if (!mayAccess(principal, id)) throw new ApiError(403, 'this token may not access this sandbox');
    principals.set(request, principal);
  };

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const api = toApiError(err, limit);
    if (!api)
      opts.log.error(
        { method: request.method, route: request.routeOptions.url, err: errorLine(err) },
        'admin API: request failed',
      );
    const answer = api ?? new ApiError(500, 'internal error');
    void reply.code(answer.status).headers(answer.headers).type('application/json').send(answer.body());
  });
  app.setNotFoundHandler((_request, reply) => void reply.code(404).send({ error: 'not found' }));

  app.get('/healthz', async () => ({ status: 'ok' }));
  const openapi = openApiDocument();
  app.get('/v1/openapi.json', async () => openapi);
  registerSandboxRoutes(app, {
    store: opts.store,
    registry: opts.registry,
    sealPublicKey: opts.sealPublicKey,
    callbackPolicy,
    log: opts.log,
    defaultIdentity: opts.defaultIdentity ?? DEFAULT_IDENTITY,
    authorize,
    principal: (request) => principals.get(request)!,
  });
  const { links, identityFor } = opts.registry;
  if (links && identityFor) {
    const registry = { identityFor: (id: string) => identityFor.call(opts.registry, id) };
    registerLinkRoutes(app, {
      network: links,
      store: opts.store,
      registry,
      defaultIdentity: opts.defaultIdentity ?? DEFAULT_IDENTITY,
      log: opts.log,
      authorize,
      principal: (request) => principals.get(request)!,
    });
  }

  let address: string;
  let removeSocket = () => {};
  if (listen.kind === 'unix') {
    // Plaintext opaque values arrive over it: bound 0600 from the first instant (src/sockets/unix-socket.ts).
    removeSocket = (
      await bindPrivateSocket(listen.path, async (temp) => void (await app.listen({ path: temp })), '--admin-listen')
    ).remove;
    address = opts.listen;
  } else {
    await app.listen({ host: listen.host, port: listen.port });
    const bound = app.server.address();
    address = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${typeof bound === 'object' && bound ? bound.port : listen.port}`;
  }
  opts.log.info(
    { listen: address, tokens: opts.tokens.size, callback_allow: opts.callbackPolicy?.allow.length ?? 0 },
    'admin API listening',
  );
  return { address, close: () => app.close().then(removeSocket) };
}
