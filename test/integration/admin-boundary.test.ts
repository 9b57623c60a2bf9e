/**
 * The admin API's boundary: bearer tokens (missing, wrong, scoped, reloaded from the file), body limits,
 * content types, malformed JSON, field-named validation errors, sandbox id checks, the OpenAPI document
 * and the health probe — all over real HTTP against a real Redis-backed store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SCOPED_TOKEN, startAdminRig, writeTokens, type AdminRig } from '../helpers/admin.js';

const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const simple = {
  rules: [{ name: 'r', match_hosts: ['api.example.com'], headers: [{ name: 'X-Key', type: 'plaintext', value: 'v' }] }],
};

describe('admin API: authentication and scopes', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig();
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('401 with a Bearer challenge without a token, and with a wrong or malformed one', async () => {
    const none = await rig.call('PUT', path('sb-a'), { token: null, body: simple });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(none.json).toEqual({ error: 'bearer token required' });
    const wrong = await rig.call('GET', path('sb-a'), { token: 'wrong-token-0123456789abcdef' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    const prefix = await rig.call('GET', path('sb-a'), { token: ADMIN_TOKEN.slice(0, -1) });
    expect(prefix.status).toBe(401);
    const basic = await fetch(`${rig.url}${path('sb-a')}`, { headers: { authorization: `Basic ${ADMIN_TOKEN}` } });
    expect(basic.status).toBe(401);
    expect(await rig.store.get('sb-a')).toBeUndefined();
  });

  it('a scoped token reaches its ids and prefixes only (403 elsewhere)', async () => {
    expect((await rig.call('PUT', path('team-42'), { token: SCOPED_TOKEN, body: simple })).status).toBe(201);
    expect((await rig.call('PUT', path('sb-solo'), { token: SCOPED_TOKEN, body: simple })).status).toBe(201);
    const other = await rig.call('PUT', path('sb-solo2'), { token: SCOPED_TOKEN, body: simple });
    expect(other.status).toBe(403);
    expect(other.json.error).toMatch(/may not access/);
    expect((await rig.call('GET', path('sb-solo2'), { token: SCOPED_TOKEN })).status).toBe(403);
    expect((await rig.call('GET', path('team-42'), { token: ADMIN_TOKEN })).status).toBe(200);
    expect(await rig.store.get('sb-solo2')).toBeUndefined();
  });

  it('follows the tokens file: a removed token stops working, a new one starts', async () => {
    const fresh = 'fresh-token-0123456789abcdef';
    writeTokens(rig, `${fresh}\n`);
    expect((await rig.call('GET', path('team-42'), { token: ADMIN_TOKEN })).status).toBe(401);
    expect((await rig.call('GET', path('team-42'), { token: fresh })).status).toBe(200);
    writeTokens(rig, `${ADMIN_TOKEN}\n${SCOPED_TOKEN} team-*,sb-solo\nshort\n`);
    expect((await rig.call('GET', path('team-42'), { token: fresh })).status).toBe(401);
    expect((await rig.call('GET', path('team-42'), { token: ADMIN_TOKEN })).status).toBe(200);
    expect(rig.logs.text()).toMatch(/admin-tokens:3: a token must be at least 16/);
  });

  it('healthz needs no token; unknown routes are 404 JSON', async () => {
    const health = await rig.call('GET', '/healthz', { token: null });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
    const unknown = await rig.call('GET', '/v1/nothing', { token: null });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ error: 'not found' });
  });

  it('never logs a token', () => {
    for (const token of [ADMIN_TOKEN, SCOPED_TOKEN, 'wrong-token-0123456789abcdef', 'fresh-token-0123456789abcdef']) {
      expect(rig.logs.text()).not.toContain(token);
    }
  });
});

describe('admin API: bodies and validation', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig({ bodyLimitBytes: 8 * 1024 });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('413 for a body over the limit', async () => {
    const big = {
      ...simple,
      description: 'x'.repeat(1000),
      no_proxy: Array.from({ length: 2000 }, (_, i) => `h${i}.example.com`),
    };
    const res = await rig.call('PUT', path('sb-big'), { body: big });
    expect(res.status).toBe(413);
    expect(res.json.error).toMatch(/larger than 8192 bytes/);
  });

  it('415 for a body that is not JSON, or no body at all', async () => {
    const text = await rig.call('PUT', path('sb-ct'), { raw: 'rules: []', contentType: 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.json.error).toMatch(/application\/json/);
    const yaml = await rig.call('PUT', path('sb-ct'), { raw: 'rules: []', contentType: 'application/yaml' });
    expect(yaml.status).toBe(415);
    const none = await rig.call('PUT', path('sb-ct'));
    expect(none.status).toBe(415);
  });

  it('400 for malformed JSON, an empty body and prototype poisoning', async () => {
    const bad = await rig.call('PUT', path('sb-json'), { raw: '{"rules": [' });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ error: 'request body is not valid JSON' });
    expect((await rig.call('PUT', path('sb-json'), { raw: '' })).status).toBe(400);
    const proto = await rig.call('PUT', path('sb-json'), { raw: '{"__proto__": {"polluted": true}, "rules": []}' });
    expect(proto.status).toBe(400);
    expect(proto.text).not.toMatch(/at .*\.js/);
  });

  it('400 for a sandbox id outside the allowed characters or length', async () => {
    for (const id of ['bad%20id', '-lead', 'a%2Fb', 'x'.repeat(129)]) {
      const res = await rig.call('PUT', path(id), { body: simple });
      expect(res.status, id).toBe(400);
      expect(res.json.problems[0]).toMatch(/^id: /);
    }
  });

  it('422 names every invalid field, without a file prefix', async () => {
    const body = {
      rules: [
        { name: 'r', match_hosts: ['*'], headers: [{ name: 'Host', type: 'plaintext', value: 'x' }] },
        { name: 'r', match_hosts: ['ok.example.com'], headers: [{ name: 'X', type: 'secret', value: 'x' }], extra: 1 },
      ],
      callbacks: [{ match_hosts: ['cb.example.com'], url: 'ftp://x', ttl_seconds: 5 }],
    };
    const res = await rig.call('PUT', path('sb-invalid'), { body });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('invalid proxy_config');
    const problems: string[] = res.json.problems;
    for (const field of [
      'rules[0].match_hosts[0]',
      'rules[0].headers[0].name',
      'rules[1].headers[0].type',
      'rules[1]',
      'callbacks[0].url',
      'callbacks[0].ttl_seconds',
    ]) {
      expect(
        problems.some((p) => p.startsWith(`${field}: `)),
        field,
      ).toBe(true);
    }
    expect(problems.every((p) => !p.includes('sandbox') && /^[a-z_]+(\[\d+\])?[.:[]/.test(p))).toBe(true);
    expect(await rig.store.get('sb-invalid')).toBeUndefined();
  });

  it('422 for a body that is not an object, and for a bad is_set', async () => {
    expect((await rig.call('PUT', path('sb-arr'), { body: [1, 2] })).json.problems).toEqual([
      expect.stringMatching(/^\(root\): /),
    ]);
    const body = {
      rules: [
        {
          name: 'r',
          match_hosts: ['a.example.com'],
          headers: [{ name: 'X', type: 'opaque', value: 'v', is_set: 'yes' }],
        },
      ],
    };
    const res = await rig.call('PUT', path('sb-isset'), { body });
    expect(res.status).toBe(422);
    expect(res.json.problems).toContain('rules[0].headers[0].is_set: must be true or false');
  });

  it('422 for an opaque value too long to seal into a header value, without echoing it', async () => {
    const long = 'L'.repeat(6001);
    const body = {
      rules: [{ name: 'r', match_hosts: ['a.example.com'], headers: [{ name: 'X', type: 'opaque', value: long }] }],
    };
    const res = await rig.call('PUT', path('sb-long'), { body });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual(['rules[0].headers[0].value: opaque value is longer than 6000 bytes']);
  });
});

describe('admin API: without a sealing key', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig({ noSealingKey: true });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('refuses plaintext opaque values (422 naming the field) and accepts configs without them', async () => {
    const body = {
      rules: [
        {
          name: 'r',
          match_hosts: ['a.example.com'],
          headers: [{ name: 'Authorization', type: 'opaque', value: 'canary-nokey-8812' }],
        },
      ],
    };
    const res = await rig.call('PUT', path('sb-nokey'), { body });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual([
      expect.stringMatching(/^rules\[0\]\.headers\[0\]\.value: opaque values need a sealing key/),
    ]);
    expect(res.text).not.toContain('canary-nokey-8812');
    expect((await rig.call('PUT', path('sb-nokey'), { body: simple })).status).toBe(201);
  });
});

describe('admin API: OpenAPI document', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig();
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('is OpenAPI 3.1 JSON listing every route, with the proxy_config schemas from zod', async () => {
    const res = await rig.call('GET', '/v1/openapi.json', { token: null });
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/v1/openapi.json',
      '/v1/sandboxes/{id}/address',
      '/v1/sandboxes/{id}/env',
      '/v1/sandboxes/{id}/links',
      '/v1/sandboxes/{id}/links/{to}',
      '/v1/sandboxes/{id}/proxy-config',
    ]);
    expect(
      Object.keys(doc.paths['/v1/sandboxes/{id}/proxy-config'])
        .filter((k) => k !== 'parameters')
        .sort(),
    ).toEqual(['delete', 'get', 'patch', 'put']);
    const write = doc.components.schemas.ProxyConfigWrite;
    expect(write.additionalProperties).toBe(false);
    // rules are a oneOf: the header rule (no type), aws and gcp.
    const headerRule = (rules: { items: { oneOf: Array<{ properties: Record<string, any> }> } }) =>
      rules.items.oneOf.find(
        (o) => 'headers' in o.properties && 'match_hosts' in o.properties && o.properties.headers.type !== undefined,
      )!;
    const header = headerRule(write.properties.rules).properties.headers.items;
    expect(header.properties.type.enum).toEqual(['plaintext', 'workspace_secret', 'opaque']);
    expect(header.properties.is_set).toEqual(expect.objectContaining({ type: 'boolean' }));
    expect(header.required).toEqual(['name', 'type']);
    const viewRule = headerRule(doc.components.schemas.ProxyConfigView.properties.rules);
    const view = viewRule.properties.headers.items;
    expect(view.oneOf[1].properties).toEqual({
      name: { type: 'string' },
      type: { const: 'opaque' },
      is_set: { const: true },
    });
    expect(viewRule.properties.match_hosts.items).toEqual({ type: 'string' });
    const gcpView = doc.components.schemas.ProxyConfigView.properties.rules.items.oneOf.find(
      (o: { properties: { type?: { const?: string } } }) => o.properties.type?.const === 'gcp',
    );
    expect(gcpView.properties.gcp.properties.service_account_json.oneOf[1].properties).toEqual({
      type: { const: 'opaque' },
      is_set: { const: true },
    });
    expect(
      doc.paths['/v1/sandboxes/{id}/proxy-config'].put.responses['422'].content['application/json'].schema,
    ).toEqual({ $ref: '#/components/schemas/Error' });
    expect(JSON.stringify(doc)).not.toMatch(
      /"\$ref":"#\/components\/schemas\/(?!ProxyConfigWrite|ProxyConfigView|SandboxConfig|SandboxEnv|SandboxAddress|SandboxAddressWrite|SandboxLink|SandboxLinkWrite|SandboxLinks|Error")/,
    );
  });
});
