import { SANDBOX_ID } from '../contracts/envoy.js';
import { MAX_LINK_PORTS } from '../sandboxes/link-store.js';

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ content: { 'application/json': { schema } } });
const errors = (text: Record<number, string>) =>
  Object.fromEntries(Object.entries(text).map(([code, description]) => [code, { description, ...json(ref('Error')) }]));
const port = { type: 'integer', minimum: 1, maximum: 65535 };

/** The schemas of the sandbox link routes (src/admin/link-routes.ts), merged into the document's components. */
export const LINK_SCHEMAS: Json = {
  SandboxAddress: {
    type: 'object',
    properties: {
      sandbox_id: { type: 'string' },
      address: { type: 'string', description: 'an IPv4 or IPv6 literal (no brackets, no hostname)' },
    },
    required: ['sandbox_id', 'address'],
  },
  SandboxAddressWrite: {
    type: 'object',
    properties: { address: { type: 'string', description: "an IP literal where the sandbox's own services listen" } },
    required: ['address'],
    additionalProperties: false,
  },
  SandboxLinkWrite: {
    type: 'object',
    properties: { ports: { type: 'array', items: port, minItems: 1, maxItems: MAX_LINK_PORTS } },
    required: ['ports'],
    additionalProperties: false,
  },
  SandboxLink: {
    type: 'object',
    properties: { from: { type: 'string' }, to: { type: 'string' }, ports: { type: 'array', items: port } },
    required: ['from', 'to', 'ports'],
  },
  SandboxLinks: {
    type: 'object',
    properties: { sandbox_id: { type: 'string' }, links: { type: 'array', items: ref('SandboxLink') } },
    required: ['sandbox_id', 'links'],
  },
};

/**
 * The OpenAPI paths of sandbox links and addresses: what a `rewrite: {sandbox, port}` rule needs. Kept
 * beside the routes' own file so the two change together.
 */
export function linkPaths(idParam: Json): Json {
  const toParam = {
    name: 'to',
    in: 'path',
    required: true,
    description: 'the sandbox this one may reach',
    schema: { type: 'string', pattern: SANDBOX_ID.source },
  };
  const common = {
    400: 'bad sandbox id',
    401: 'no or unknown bearer token',
    403: 'the token is scoped to other sandboxes, or (tenant-scoped) a sandbox is not in its tenant',
  };
  const write = {
    ...common,
    409: 'a concurrent write; retry',
    415: 'body is not application/json',
    422: 'invalid body, or the two sandboxes are in different tenants; every problem names its field',
  };
  return {
    '/v1/sandboxes/{id}/address': {
      parameters: [idParam],
      put: {
        summary: "register where the sandbox's own services listen (set by the orchestrator)",
        requestBody: { required: true, ...json(ref('SandboxAddressWrite')) },
        responses: { 200: { description: 'registered', ...json(ref('SandboxAddress')) }, ...errors(write) },
      },
      get: {
        summary: "the sandbox's registered address",
        responses: {
          200: { description: 'the address', ...json(ref('SandboxAddress')) },
          ...errors({ ...common, 404: 'no address registered' }),
        },
      },
      delete: {
        summary: 'remove the address: rewrites to this sandbox are refused (403) from the next request',
        responses: { 204: { description: 'removed' }, ...errors({ ...common, 404: 'no address registered' }) },
      },
    },
    '/v1/sandboxes/{id}/links': {
      parameters: [idParam],
      get: {
        summary: 'the links from this sandbox (to sandboxes the token may access)',
        responses: { 200: { description: 'links', ...json(ref('SandboxLinks')) }, ...errors(common) },
      },
    },
    '/v1/sandboxes/{id}/links/{to}': {
      parameters: [idParam, toParam],
      put: {
        summary: 'let sandbox {id} reach these ports of sandbox {to} (replaces the ports of an existing link)',
        requestBody: { required: true, ...json(ref('SandboxLinkWrite')) },
        responses: {
          200: { description: 'replaced', ...json(ref('SandboxLink')) },
          201: { description: 'created', ...json(ref('SandboxLink')) },
          ...errors(write),
        },
      },
      get: {
        summary: 'one link',
        responses: {
          200: { description: 'the link', ...json(ref('SandboxLink')) },
          ...errors({ ...common, 404: 'no such link' }),
        },
      },
      delete: {
        summary: 'remove the link: rewrites through it are refused (403) from the next request',
        responses: { 204: { description: 'removed' }, ...errors({ ...common, 404: 'no such link' }) },
      },
    },
  };
}
