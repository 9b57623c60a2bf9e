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
import { callbackUrlProblems, type CallbackPolicy } from '../config/callback-policy.js';
import { prepareConfig } from './config-input.js';
import { checkRoleUnchanged } from './role-guard.js';
import { keyScopeProblems } from './key-scope.js';
import { sandboxResponse } from './config-view.js';
import type { AdminPrincipal } from './tokens.js';
import {
  effectiveIdentity,
  identityFieldProblem,
  type IdentityFields,
  type SandboxIdentity,
} from '../contracts/identity.js';

/** What the sandbox routes work with. */
export interface SandboxRoutesDeps {
  readonly store: SandboxStore;
  readonly registry: Pick<PolicyRegistry, 'isFileSandbox' | 'check'> & Partial<Pick<PolicyRegistry, 'links'>>;
  readonly sealPublicKey: KeyObject | undefined;
  readonly callbackPolicy: CallbackPolicy;
  readonly log: Logger;
  /** The serve defaults (`--tenant-id`, `--organization-id`) of sandboxes stored without a tenant. */
  readonly defaultIdentity: SandboxIdentity;
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

type Obj = Record<string, unknown>;

/** The identity fields of a write body; `null` clears a stored organization_id. */
interface GivenIdentity {
  readonly tenantId?: string;
  readonly organizationId?: string | null;
}

/**
 * Takes the top-level `tenant_id` and `organization_id` out of a write body (they sit beside the
 * proxy_config fields), so the strict proxy_config schema sees only its own keys. Problems name the field.
 */
function splitIdentity(body: unknown, problems: string[]): { config: unknown; given: GivenIdentity } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { config: body, given: {} };
  const { tenant_id: tenantId, organization_id: organizationId, ...config } = body as Obj;
  const given: { tenantId?: string; organizationId?: string | null } = {};
  if (tenantId !== undefined) {
    const problem = identityFieldProblem(tenantId);
    if (problem) problems.push(`tenant_id: ${problem}`);
    else given.tenantId = tenantId as string;
  }
  if (organizationId === null) given.organizationId = null;
  else if (organizationId !== undefined) {
    const problem = identityFieldProblem(organizationId);
    if (problem) problems.push(`organization_id: ${problem} (or null to remove it)`);
    else given.organizationId = organizationId as string;
  }
  return { config, given };
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
  const tenantOf = (stored: StoredSandbox): string => effectiveIdentity(stored, deps.defaultIdentity).tenantId;
  /** A tenant-scoped token sees only its tenant's sandboxes: others answer like a missing one (404). */
  const visible = (principal: AdminPrincipal, stored: StoredSandbox): boolean =>
    principal.tenant === undefined || tenantOf(stored) === principal.tenant;

  const notFound = (id: string) =>
    new ApiError(
      404,
      registry.isFileSandbox(id)
        ? 'no proxy_config stored for this sandbox (it is defined in the config file)'
        : 'no proxy_config stored for this sandbox',
    );
  const refuseFileSandbox = (id: string) => {
    if (registry.isFileSandbox(id))
      throw new ApiError(409, 'sandbox is defined in the mounted config file; change it there');
  };

  const checkApplicable = (config: ProxyConfig, id: string): void => {
    const problems = [...callbackUrlProblems(config, deps.callbackPolicy), ...registry.check(config, id)];
    if (problems.length > 0) throw invalidConfig(problems);
  };

  const write = async (request: FastifyRequest<WithId>, reply: FastifyReply, mode: 'put' | 'patch') => {
    const id = request.params.id;
    refuseFileSandbox(id);
    const body = requireJson(request);
    const principal = deps.principal(request);
    const before = await fromStore(log, 'read', () => store.get(id));
    if (before && !visible(principal, before)) {
      // A PUT can't pretend the id is free (that would mean overwriting it), so it is refused outright.
      if (mode === 'put') throw new ApiError(403, 'this token may not access this sandbox');
      throw notFound(id);
    }
    if (mode === 'patch' && !before) throw notFound(id);
    const ifMatch = parseIfMatch(request.headers['if-match']);
    if (ifMatch !== undefined && (before === undefined || (ifMatch !== '*' && ifMatch !== before.stamp))) {
      throw new ApiError(412, 'the config changed since the version named in If-Match; read it again');
    }
    const createOnly = parseIfMatch(request.headers['if-none-match']) === '*';
    if (createOnly && before) throw new ApiError(412, 'a config already exists (If-None-Match: *)');
    const identityProblems: string[] = [];
    const { config: configBody, given } = splitIdentity(body, identityProblems);
    const prepared = prepareConfig(configBody, {
      mode,
      stored: before?.config,
      sealPublicKey: deps.sealPublicKey,
      sandboxId: id,
    });
    if (identityProblems.length > 0 || !prepared.ok)
      throw invalidConfig([...identityProblems, ...(prepared.ok ? [] : prepared.problems)]);
    checkRoleUnchanged(before?.config, prepared.config);
    const outsideKeys = principal.keys ? keyScopeProblems(prepared.config, principal.keys) : [];
    if (outsideKeys.length > 0) throw new ApiError(403, 'this token may not use these workspace secrets', outsideKeys);
    // A PATCH keeps what it doesn't name; a PUT replaces the record (a tenant-scoped token's tenant, else the default).
    const kept: IdentityFields = mode === 'patch' && before ? before : {};
    const identity: IdentityFields = {
      tenantId: given.tenantId ?? kept.tenantId ?? principal.tenant,
      organizationId: given.organizationId === null ? undefined : (given.organizationId ?? kept.organizationId),
    };
    if (
      principal.tenant !== undefined &&
      effectiveIdentity(identity, deps.defaultIdentity).tenantId !== principal.tenant
    ) {
      throw new ApiError(403, `this token may only manage sandboxes of tenant "${principal.tenant}"`);
    }
    // A rewrite to another sandbox is checked against its link as stored now, whichever replica wrote it.
    await deps.registry.links?.refreshFor(id, prepared.config);
    checkApplicable(prepared.config, id);
    // Written only if nothing changed since `before` was read: a PATCH keeps opaque values from `before`.
    const saved = await fromStore(log, 'write', () => store.put(id, prepared.config, before?.stamp ?? null, identity));
    if (!saved)
      throw new ApiError(
        ifMatch === undefined && !createOnly ? 409 : 412,
        'the config changed while this request was applied; read it again and retry',
      );
    const action = mode === 'patch' ? 'patch' : before ? 'replace' : 'create';
    audit(log, {
      actor: principal.id,
      action,
      sandbox: id,
      tenant: tenantOf(saved),
      change: diffConfigs(before?.config, saved.config),
      version: saved.version,
    });
    return reply
      .code(before ? 200 : 201)
      .header('etag', `"${saved.stamp}"`)
      .send(sandboxResponse(id, saved, deps.defaultIdentity));
  };

  const read = async (request: FastifyRequest<WithId>): Promise<StoredSandbox> => {
    const id = request.params.id;
    const stored = await fromStore(log, 'read', () => store.get(id));
    if (!stored || !visible(deps.principal(request), stored)) throw notFound(id);
    return stored;
  };

  app.get<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, async (request, reply) => {
    const stored = await read(request);
    return reply
      .header('etag', `"${stored.stamp}"`)
      .send(sandboxResponse(request.params.id, stored, deps.defaultIdentity));
  });

  app.put<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, (request, reply) => write(request, reply, 'put'));

  app.patch<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, (request, reply) =>
    write(request, reply, 'patch'),
  );

  app.delete<WithId>('/v1/sandboxes/:id/proxy-config', { onRequest }, async (request, reply) => {
    const id = request.params.id;
    refuseFileSandbox(id);
    const before = await read(request);
    if (!(await fromStore(log, 'delete', () => store.delete(id)))) throw notFound(id);
    audit(log, {
      actor: deps.principal(request).id,
      action: 'delete',
      sandbox: id,
      tenant: tenantOf(before),
      change: diffConfigs(before.config, undefined),
    });
    return reply.code(204).send();
  });

  app.get<WithId>('/v1/sandboxes/:id/env', { onRequest }, async (request): Promise<SandboxEnvResponse> => {
    const stored = await read(request);
    return { sandbox_id: request.params.id, version: stored.version, env_vars: envVarPlaceholders(stored.config) };
  });
}

/** The entity tag of an If-Match header (quotes and a weak prefix removed), `*`, or undefined. */
function parseIfMatch(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}
