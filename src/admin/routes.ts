import type { KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ProxyConfig } from '../config/schema.js';
import { envVarPlaceholders } from '../envoy/sandbox-env.js';
import { errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { PolicyRegistry } from '../sandboxes/registry.js';
import type { SandboxStore, StoredSandbox } from '../sandboxes/store.js';
import type { SandboxEnvResponse } from '../sdk/types.js';
import { ApiError, invalidConfig } from './api-error.js';
import { audit, diffConfigs } from './audit.js';
import type { CallbackPolicy } from './callback-policy.js';
import { prepareConfig } from './config-input.js';
import { sandboxResponse } from './config-view.js';
import type { AdminPrincipal } from './tokens.js';

/** What the sandbox routes work with. */
export interface SandboxRoutesDeps {
  readonly store: SandboxStore;
  readonly registry: Pick<PolicyRegistry, 'isFileSandbox' | 'check'>;
  readonly sealPublicKey: KeyObject | undefined;
  readonly callbackPolicy: CallbackPolicy;
  readonly log: Logger;
  /** Authenticates and authorises a request for the sandbox in its path (a fastify onRequest hook). */
  readonly authorize: (request: FastifyRequest) => Promise<void>;
  /** The caller that `authorize` found for a request. */
  readonly principal: (request: FastifyRequest) => AdminPrincipal;
}

type WithId = { Params: { id: string }; Body: unknown };

/** Runs a store operation; a store failure (Redis down) is a 503 the SDK retries, never a stack trace. */
async function fromStore<T>(log: Logger, what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    log.error({ err: errorLine(err) }, `admin API: sandbox store ${what} failed`);
    throw new ApiError(503, 'sandbox store unavailable', undefined, { 'retry-after': '1' });
  }
}

/** A write needs a JSON body; fastify parses `application/json` and leaves `body` undefined without one. */
function requireJson(request: FastifyRequest): unknown {
  if (request.body === undefined) throw new ApiError(415, 'content-type must be application/json');
  return request.body;
}

/**
 * The `/v1/sandboxes/{id}/...` routes. Exists to hold the order of checks of a write — file-defined
 * sandbox (409), schema and sealing (422), callback URL policy and apply-time check against the current
 * workspace secrets and sealing key (422) — so that nothing reaches the store until all of them passed,
 * and every change is audited by rule name.
 */
export function registerSandboxRoutes(app: FastifyInstance, deps: SandboxRoutesDeps): void {
  const { store, registry, log } = deps;
  const onRequest = deps.authorize;

  const notFound = (id: string) =>
    new ApiError(404, registry.isFileSandbox(id) ? 'no proxy_config stored for this sandbox (it is defined in the config file)' : 'no proxy_config stored for this sandbox');
  const refuseFileSandbox = (id: string) => {
    if (registry.isFileSandbox(id)) throw new ApiError(409, 'sandbox is defined in the mounted config file; change it there');
  };

  const checkApplicable = (config: ProxyConfig): void => {
    const problems: string[] = [];
    config.callbacks.forEach((cb, i) => {
      const problem = deps.callbackPolicy.problem(cb.url);
      if (problem) problems.push(`callbacks[${i}].url: ${problem}`);
    });
    problems.push(...registry.check(config));
    if (problems.length > 0) throw invalidConfig(problems);
  };

  const write = async (request: FastifyRequest<WithId>, reply: FastifyReply, mode: 'put' | 'patch') => {
    const id = request.params.id;
    refuseFileSandbox(id);
    const body = requireJson(request);
    const before = await fromStore(log, 'read', () => store.get(id));
    if (mode === 'patch' && !before) throw notFound(id);
    const ifMatch = parseIfMatch(request.headers['if-match']);
    if (ifMatch !== undefined && (before === undefined || (ifMatch !== '*' && ifMatch !== before.stamp))) {
      throw new ApiError(412, 'the config changed since the version named in If-Match; read it again');
    }
    const createOnly = parseIfMatch(request.headers['if-none-match']) === '*';
    if (createOnly && before) throw new ApiError(412, 'a config already exists (If-None-Match: *)');
    const prepared = prepareConfig(body, { mode, stored: before?.config, sealPublicKey: deps.sealPublicKey });
    if (!prepared.ok) throw invalidConfig(prepared.problems);
    checkApplicable(prepared.config);
    // Written only if nothing changed since `before` was read: a PATCH keeps opaque values from `before`.
    const saved = await fromStore(log, 'write', () => store.put(id, prepared.config, before?.stamp ?? null));
    if (!saved) throw new ApiError(ifMatch === undefined && !createOnly ? 409 : 412, 'the config changed while this request was applied; read it again and retry');
    const action = mode === 'patch' ? 'patch' : before ? 'replace' : 'create';
    audit(log, { actor: deps.principal(request).id, action, sandbox: id, change: diffConfigs(before?.config, saved.config), version: saved.version });
    return reply.code(before ? 200 : 201).header('etag', `"${saved.stamp}"`).send(sandboxResponse(id, saved));
  };

  const read = async (id: string): Promise<StoredSandbox> => {
    const stored = await fromStore(log, 'read', () => store.get(id));
    if (!stored) throw notFound(id);
    return stored;
  };

  app.get<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, async (request, reply) => {
    const stored = await read(request.params.id);
    return reply.header('etag', `"${stored.stamp}"`).send(sandboxResponse(request.params.id, stored));
  });

  app.put<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, (request, reply) => write(request, reply, 'put'));

  app.patch<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, (request, reply) => write(request, reply, 'patch'));

  app.delete<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, async (request, reply) => {
    const id = request.params.id;
    refuseFileSandbox(id);
    const before = await read(id);
    if (!(await fromStore(log, 'delete', () => store.delete(id)))) throw notFound(id);
    audit(log, { actor: deps.principal(request).id, action: 'delete', sandbox: id, change: diffConfigs(before.config, undefined) });
    return reply.code(204).send();
  });

  app.get<WithId>('/v1/sandboxes/:id/env', { onRequest }, async (request): Promise<SandboxEnvResponse> => {
    const stored = await read(request.params.id);
    return { sandbox_id: request.params.id, version: stored.version, env_vars: envVarPlaceholders(stored.config) };
  });
}

/** The entity tag of an If-Match header (quotes and a weak prefix removed), `*`, or undefined. */
function parseIfMatch(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
