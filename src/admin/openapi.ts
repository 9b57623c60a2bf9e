import { z } from 'zod';
import { callbackHeaderSchema, headerSchema, proxyConfigSchema } from '../config/schema.js';
import { secretSchema } from '../config/provider-schema.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import { TENANT_ID } from '../contracts/identity.js';
import { LINK_SCHEMAS, linkPaths } from './link-openapi.js';

type Json = Record<string, unknown>;

const HOST_LISTS = new Set(['match_hosts', 'no_proxy', 'allow_list', 'deny_list']);

/** Host pattern lists are strings that zod canonicalises (a transform JSON Schema can't express on output). */
function fixHostLists(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [key, value] of Object.entries(node)) {
    if (HOST_LISTS.has(key) && typeof value === 'object' && value !== null) (value as Json).items = { type: 'string' };
    fixHostLists(value);
  }
}

function generate(io: 'input' | 'output', header: (json: Json) => void): Json {
  const { $schema: _drop, ...schema } = z.toJSONSchema(proxyConfigSchema, {
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      if (ctx.zodSchema === headerSchema || ctx.zodSchema === callbackHeaderSchema || ctx.zodSchema === secretSchema)
        header(ctx.jsonSchema as Json);
    },
  }) as Json;
  fixHostLists(schema);
  return schema;
}

/** Request bodies: `value` may be left out of an opaque header in a PATCH, and `is_set` is accepted. */
function writeHeader(json: Json): void {
  const props = json.properties as Json;
  props.is_set = {
    type: 'boolean',
    description: 'opaque only: true (with no value) keeps the stored value in a PATCH',
  };
  (props.value as Json).description =
    'plaintext: sent as is; workspace_secret: a "{KEY}" template; opaque: the secret in plaintext (sealed before storing) or a "sealed:..." value. Required, except for an opaque header in a PATCH, which then keeps its stored value.';
  json.required = 'name' in props ? ['name', 'type'] : ['type'];
}

/** Read bodies: opaque headers come back as `{name, type: "opaque", is_set: true}`, never with a value. */
function viewHeader(json: Json): void {
  const types = ((json.properties as Json).type as Json).enum as string[];
  const visible = types.filter((t) => t !== 'opaque');
  // A provider rule's Secret has no name; a header has one.
  const named = 'name' in (json.properties as Json);
  const name = named ? { name: { type: 'string' } } : {};
  const req = (...keys: string[]) => (named ? ['name', ...keys] : keys);
  for (const key of Object.keys(json)) delete json[key];
  json.oneOf = [
    {
      type: 'object',
      properties: { ...name, type: { enum: visible }, value: { type: 'string' } },
      required: req('type', 'value'),
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: { ...name, type: { const: 'opaque' }, is_set: { const: true } },
      required: req('type', 'is_set'),
      additionalProperties: false,
    },
  ];
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ content: { 'application/json': { schema } } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c], ...json(ref('Error')) }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'bad sandbox id or malformed JSON',
  401: 'no or unknown bearer token',
  403: "the token is scoped to other sandboxes, or (a tenant-scoped token) names another tenant or PUTs onto another tenant's sandbox, or (a keys= scoped token) the config names a workspace secret outside its key scope",
  404: 'no stored proxy_config for this sandbox (for a tenant-scoped token: also when the sandbox belongs to another tenant)',
  409: 'the sandbox is defined in the mounted config file and cannot be written through the API',
  413: 'body larger than the limit',
  415: 'body is not application/json',
  412: 'If-Match / If-None-Match failed: the config changed since it was read',
  422: 'invalid proxy_config: every problem names its field',
};

/**
 * The OpenAPI 3.1 document of the admin API, served at `GET /v1/openapi.json`. Exists so clients in any
 * language can be generated against it; its proxy_config schemas come from the same zod schema the API
 * validates with (`z.toJSONSchema`), so the document and the validator cannot disagree.
 */
export function openApiDocument(): Json {
  const tenantId = { type: 'string', pattern: TENANT_ID.source };
  const sandboxConfig = {
    type: 'object',
    properties: {
      sandbox_id: { type: 'string' },
      tenant_id: {
        ...tenantId,
        description:
          'the tenant (workspace) the sandbox belongs to, sent to callbacks as identity.tenant_id: the stored one, else the server default (--tenant-id)',
      },
      organization_id: {
        ...tenantId,
        description:
          'sent to callbacks as identity.organization_id; absent when none is stored and the server has no --organization-id',
      },
      version: { type: 'integer' },
      etag: { type: 'string' },
      updated_at: { type: 'string', format: 'date-time' },
      proxy_config: ref('ProxyConfigView'),
    },
    required: ['sandbox_id', 'tenant_id', 'version', 'etag', 'updated_at', 'proxy_config'],
  };
  const writeSchema = generate('input', writeHeader);
  const writeBody = {
    ...writeSchema,
    properties: {
      ...(writeSchema.properties as Json),
      tenant_id: {
        ...tenantId,
        description:
          "the sandbox's tenant (beside the proxy_config fields). PUT: omitted = a tenant-scoped token's tenant, else the server default; PATCH: omitted = kept. A tenant-scoped token may name only its own tenant.",
      },
      organization_id: {
        oneOf: [tenantId, { type: 'null' }],
        description:
          "the sandbox's organization. PUT: omitted = the server default; PATCH: omitted = kept, null = removed.",
      },
    },
  };
  const idParam = {
    name: 'id',
    in: 'path',
    required: true,
    description: 'sandbox id',
    schema: { type: 'string', pattern: SANDBOX_ID.source },
  };
  const preconditions = [
    {
      name: 'If-Match',
      in: 'header',
      required: false,
      description: 'an etag: apply only to that version (else 412)',
      schema: { type: 'string' },
    },
    {
      name: 'If-None-Match',
      in: 'header',
      required: false,
      description: '`*`: create only (else 412)',
      schema: { type: 'string', enum: ['*'] },
    },
  ];
  const write = (summary: string, extra: Json) => ({
    summary,
    parameters: preconditions,
    requestBody: { required: true, ...json(ref('ProxyConfigWrite')) },
    ...extra,
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'authproxy admin API',
      version: '1',
      description: 'Per-sandbox proxy_config of a shared authproxy service. Opaque values are write-only.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        ProxyConfigWrite: { ...writeBody, title: 'proxy_config with tenant_id / organization_id (request body)' },
        ProxyConfigView: { ...generate('output', viewHeader), title: 'proxy_config (as read)' },
        SandboxConfig: sandboxConfig,
        SandboxEnv: {
          type: 'object',
          properties: {
            sandbox_id: { type: 'string' },
            version: { type: 'integer' },
            env_vars: { type: 'object', additionalProperties: { type: 'string' } },
          },
          required: ['sandbox_id', 'version', 'env_vars'],
        },
        ...LINK_SCHEMAS,
        Error: {
          type: 'object',
          properties: { error: { type: 'string' }, problems: { type: 'array', items: { type: 'string' } } },
          required: ['error'],
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/sandboxes/{id}/proxy-config': {
        parameters: [idParam],
        get: {
          summary: 'read a sandbox config (opaque values shown as is_set)',
          responses: {
            200: { description: 'the config', ...json(ref('SandboxConfig')) },
            ...errors(400, 401, 403, 404),
          },
        },
        put: write('create or replace a sandbox config', {
          responses: {
            200: { description: 'replaced', ...json(ref('SandboxConfig')) },
            201: { description: 'created', ...json(ref('SandboxConfig')) },
            ...errors(400, 401, 403, 409, 412, 413, 415, 422),
          },
        }),
        patch: write('replace a sandbox config wholesale, keeping opaque values sent without a value', {
          responses: {
            200: { description: 'patched', ...json(ref('SandboxConfig')) },
            ...errors(400, 401, 403, 404, 409, 412, 413, 415, 422),
          },
        }),
        delete: {
          summary: 'delete a sandbox config',
          responses: { 204: { description: 'deleted' }, ...errors(400, 401, 403, 404, 409) },
        },
      },
      '/v1/sandboxes/{id}/env': {
        parameters: [idParam],
        get: {
          summary: 'env_vars placeholders of the enabled rules',
          responses: {
            200: { description: 'placeholders', ...json(ref('SandboxEnv')) },
            ...errors(400, 401, 403, 404),
          },
        },
      },
      ...linkPaths(idParam),
      '/v1/openapi.json': {
        get: { summary: 'this document', security: [], responses: { 200: { description: 'OpenAPI 3.1' } } },
      },
      '/healthz': { get: { summary: 'liveness', security: [], responses: { 200: { description: 'ok' } } } },
    },
  };
}
