import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorLine } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import type { Logger } from '../log.js';
import { effectiveIdentity, type SandboxIdentity } from '../contracts/identity.js';
import { linkPorts, MAX_LINK_PORTS, MAX_LINKS, type SandboxNet, type StoredNet } from '../sandboxes/link-store.js';
import type { SandboxNetwork } from '../sandboxes/links.js';
import type { PolicyRegistry } from '../sandboxes/registry.js';
import type { SandboxStore } from '../sandboxes/store.js';
import { ApiError } from './api-error.js';
import { mayAccess, type AdminPrincipal } from './tokens.js';

/** What the link and address routes work with. */
export interface LinkRoutesDeps {
  readonly network: SandboxNetwork;
  readonly store: SandboxStore;
  readonly registry: Pick<PolicyRegistry, 'identityFor'>;
  readonly defaultIdentity: SandboxIdentity;
  readonly log: Logger;
  readonly authorize: (request: FastifyRequest) => Promise<void>;
  readonly principal: (request: FastifyRequest) => AdminPrincipal;
}

type Params = { Params: { id: string; to?: string }; Body: unknown };

/** A link as the API shows it. */
export interface LinkView {
  readonly from: string;
  readonly to: string;
  readonly ports: readonly number[];
}

/** Runs a store operation; a store failure (Redis down) is a 503 the client retries, never a stack trace. */
async function fromStore<T>(log: Logger, what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    log.error({ err: errorLine(err) }, `admin API: sandbox link store ${what} failed`);
    throw new ApiError(503, 'sandbox store unavailable', undefined, { 'retry-after': '1' });
  }
}

/** The one object field a body may carry, else a 400/422 naming the field (never echoing an odd key). */
function field(body: unknown, name: string): unknown {
  if (body === undefined) throw new ApiError(415, 'content-type must be application/json');
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(422, 'invalid body', [`body: must be an object {"${name}": ...}`]);
  const extra = Object.keys(body).filter((k) => k !== name);
  if (extra.length > 0)
    throw new ApiError(
      422,
      'invalid body',
      extra.map((k) => (/^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(k) ? `${k}: unknown field` : 'body: unknown field')),
    );
  return (body as Record<string, unknown>)[name];
}

/** The `ports` of a link: 1..64 whole numbers 1..65535, returned sorted and unique. */
export function parsePorts(value: unknown): number[] {
  if (value === undefined) throw new ApiError(422, 'invalid link', ['ports: is required: a list of port numbers']);
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LINK_PORTS)
    throw new ApiError(422, 'invalid link', [`ports: must be a list of 1..${MAX_LINK_PORTS} port numbers`]);
  const problems = value.flatMap((p, i) =>
    Number.isInteger(p) && p >= 1 && p <= 65535 ? [] : [`ports[${i}]: must be a whole number 1..65535`],
  );
  if (problems.length > 0) throw new ApiError(422, 'invalid link', problems);
  return [...new Set(value as number[])].sort((a, b) => a - b);
}

/**
 * The sandbox link routes: `PUT|GET|DELETE /v1/sandboxes/{id}/address` (where a sandbox's own services
 * listen, set by the orchestrator) and `PUT|GET|DELETE /v1/sandboxes/{id}/links/{to}` plus `GET …/links`
 * (which ports of which other sandboxes `id` may reach with a `rewrite: {sandbox, port}` rule). Exists to
 * hold their scope rules in one place: the token must reach both ends, a tenant-scoped token only its own
 * tenant's sandboxes, and a link never crosses tenants. Every change is audited and re-read at once on
 * this replica (the others follow the announcement).
 */
export function registerLinkRoutes(app: FastifyInstance, deps: LinkRoutesDeps): void {
  const { network, log } = deps;
  const onRequest = deps.authorize;
  const tenantOf = async (id: string): Promise<string> => {
    const stored = await fromStore(log, 'read', () => deps.store.get(id));
    return stored ? effectiveIdentity(stored, deps.defaultIdentity).tenantId : deps.registry.identityFor(id).tenantId;
  };
  /** A tenant-scoped token may only touch sandboxes of its tenant (an unconfigured one is the default tenant's). */
  const checkTenant = async (principal: AdminPrincipal, fieldName: string, id: string): Promise<string> => {
    const tenant = await tenantOf(id);
    if (principal.tenant !== undefined && tenant !== principal.tenant)
      throw new ApiError(403, `this token may only manage sandboxes of tenant "${principal.tenant}"`, [
        `${fieldName}: sandbox "${id}" is not in tenant "${principal.tenant}"`,
      ]);
    return tenant;
  };
  const target = (request: FastifyRequest<Params>): string => {
    const to = request.params.to ?? '';
    if (!SANDBOX_ID.test(to))
      throw new ApiError(400, 'invalid sandbox id', [
        'to: sandbox ids are 1-128 characters of A-Z a-z 0-9 . _ : - and start with a letter or digit',
      ]);
    if (!mayAccess(deps.principal(request), to))
      throw new ApiError(403, 'this token may not access this sandbox', [
        `to: sandbox "${to}" is outside this token's scope`,
      ]);
    return to;
  };
  const read = (id: string) => fromStore(log, 'read', () => network.store.get(id));
  const write = async (id: string, change: (net: SandboxNet) => SandboxNet): Promise<StoredNet> => {
    const saved = await fromStore(log, 'write', () => network.store.update(id, change));
    if (!saved) throw new ApiError(409, 'the links changed while this request was applied; retry');
    await network.refresh(id);
    return saved;
  };
  const auditLine = (request: FastifyRequest, entry: Record<string, unknown>) =>
    log.info({ actor: deps.principal(request).id, ...entry }, 'audit');

  app.put<Params>('/v1/sandboxes/:id/address', { onRequest }, async (request) => {
    const id = request.params.id;
    const address = field(request.body, 'address');
    const problem = typeof address !== 'string' ? 'must be a string: an IP address' : network.addressProblem(address);
    if (problem) throw new ApiError(422, 'invalid address', [`address: ${problem}`]);
    const tenant = await checkTenant(deps.principal(request), 'id', id);
    await write(id, (net) => ({ ...net, address: address as string }));
    auditLine(request, { action: 'set_address', sandbox: id, tenant, address });
    return { sandbox_id: id, address };
  });

  app.get<Params>('/v1/sandboxes/:id/address', { onRequest }, async (request) => {
    const id = request.params.id;
    await checkTenant(deps.principal(request), 'id', id);
    const address = (await read(id))?.address;
    if (address === undefined) throw new ApiError(404, 'no address registered for this sandbox');
    return { sandbox_id: id, address };
  });

  app.delete<Params>('/v1/sandboxes/:id/address', { onRequest }, async (request, reply: FastifyReply) => {
    const id = request.params.id;
    const tenant = await checkTenant(deps.principal(request), 'id', id);
    if ((await read(id))?.address === undefined) throw new ApiError(404, 'no address registered for this sandbox');
    await write(id, ({ links }) => ({ links }));
    auditLine(request, { action: 'delete_address', sandbox: id, tenant });
    return reply.code(204).send();
  });

  app.put<Params>('/v1/sandboxes/:id/links/:to', { onRequest }, async (request, reply: FastifyReply) => {
    const id = request.params.id;
    const to = target(request);
    const ports = parsePorts(field(request.body, 'ports'));
    if (to === id) throw new ApiError(422, 'invalid link', ['to: a sandbox does not need a link to itself']);
    const principal = deps.principal(request);
    const [tenant, toTenant] = [await checkTenant(principal, 'id', id), await checkTenant(principal, 'to', to)];
    if (tenant !== toTenant)
      throw new ApiError(422, 'invalid link', [
        `to: sandbox "${to}" is in another tenant than sandbox "${id}"; a link never crosses tenants`,
      ]);
    let existed = false;
    await write(id, (net) => {
      existed = linkPorts(net, to) !== undefined;
      if (!existed && Object.keys(net.links).length >= MAX_LINKS)
        throw new ApiError(422, 'invalid link', [`to: sandbox "${id}" already has ${MAX_LINKS} links`]);
      return { ...net, links: { ...net.links, [to]: ports } };
    });
    auditLine(request, { action: 'link', sandbox: id, to, tenant, ports });
    return reply.code(existed ? 200 : 201).send({ from: id, to, ports } satisfies LinkView);
  });

  app.get<Params>('/v1/sandboxes/:id/links/:to', { onRequest }, async (request) => {
    const id = request.params.id;
    const to = target(request);
    await checkTenant(deps.principal(request), 'id', id);
    const ports = linkPorts(await read(id), to);
    if (!ports) throw new ApiError(404, 'no link from this sandbox to that one');
    return { from: id, to, ports } satisfies LinkView;
  });

  app.get<Params>('/v1/sandboxes/:id/links', { onRequest }, async (request) => {
    const id = request.params.id;
    const principal = deps.principal(request);
    await checkTenant(principal, 'id', id);
    const links = Object.entries((await read(id))?.links ?? {}).filter(([to]) => mayAccess(principal, to));
    return { sandbox_id: id, links: links.map(([to, ports]) => ({ from: id, to, ports }) satisfies LinkView) };
  });

  app.delete<Params>('/v1/sandboxes/:id/links/:to', { onRequest }, async (request, reply: FastifyReply) => {
    const id = request.params.id;
    const to = target(request);
    const tenant = await checkTenant(deps.principal(request), 'id', id);
    if (!linkPorts(await read(id), to)) throw new ApiError(404, 'no link from this sandbox to that one');
    await write(id, (net) => ({
      ...net,
      links: Object.fromEntries(Object.entries(net.links).filter(([t]) => t !== to)),
    }));
    auditLine(request, { action: 'unlink', sandbox: id, to, tenant });
    return reply.code(204).send();
  });
}
