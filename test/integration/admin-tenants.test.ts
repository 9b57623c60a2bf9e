/**
 * Tenants in shared-service mode, against a real Redis: `tenant_id` / `organization_id` beside the
 * proxy_config fields of a write, stored in the (HMAC-authenticated) record, returned by reads, kept by a
 * PATCH, and sent to callbacks; `tenant=T` tokens create in T only, see only T's sandboxes (404 for others,
 * 403 for a PUT onto one) and never move a sandbox to another tenant.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/admin/tokens.js';
import { MemoryCredentialCache } from '../../src/callbacks/cache.js';
import { CallbackResolver } from '../../src/callbacks/resolver.js';
import { CallbackSigner } from '../../src/callbacks/signer.js';
import { validateConfig } from '../../src/config/load.js';
import { RedisSandboxStore } from '../../src/sandboxes/store.js';
import { AuthProxyClient } from '../../src/sdk/index.js';
import { ADMIN_TOKEN, startAdminRig, writeTokens, type AdminRig } from '../helpers/admin.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { eventually } from '../helpers/fs.js';

const ACME = 'acme-tenant-token-0123456789abcdef';
const BETA = 'beta-tenant-token-0123456789abcdef';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const simple = {
  rules: [
    { name: 'r', match_hosts: ['api.example.com'], headers: [{ name: 'X-A', type: 'plaintext' as const, value: 'v' }] },
  ],
};
const DEFAULTS = { tenantId: 'ws-default', organizationId: 'org-default' };

describe('admin API: tenants', () => {
  let rig: AdminRig;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;

  beforeAll(async () => {
    rig = await startAdminRig({ defaultIdentity: DEFAULTS });
    writeTokens(rig, `${ADMIN_TOKEN}\n${ACME} tenant=acme\n${BETA} sb-beta-*,tenant=beta\n`);
    callbacks = await startCallbackServer(answer({ Authorization: 'Bearer from-callback' }));
  });
  afterAll(async () => {
    await callbacks?.close();
    await rig?.close();
  });

  it('stores and returns tenant_id / organization_id; a PATCH without them keeps them; null removes the organization', async () => {
    const created = await rig.call('PUT', path('sb-t1'), {
      body: { ...simple, tenant_id: 'acme', organization_id: 'org-acme' },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ sandbox_id: 'sb-t1', tenant_id: 'acme', organization_id: 'org-acme' });
    expect(created.json.proxy_config).not.toHaveProperty('tenant_id');
    expect((await rig.call('GET', path('sb-t1'))).json).toMatchObject({
      tenant_id: 'acme',
      organization_id: 'org-acme',
    });
    const patched = await rig.call('PATCH', path('sb-t1'), { body: { ...simple, description: 'patched' } });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({
      tenant_id: 'acme',
      organization_id: 'org-acme',
      proxy_config: { description: 'patched' },
    });
    const cleared = await rig.call('PATCH', path('sb-t1'), { body: { ...simple, organization_id: null } });
    expect(cleared.json).toMatchObject({ tenant_id: 'acme', organization_id: 'org-default' });
    expect(await rig.store.get('sb-t1')).toMatchObject({ tenantId: 'acme' });
    expect((await rig.store.get('sb-t1'))!.organizationId).toBeUndefined();
  });

  it('a sandbox stored without a tenant reads as the serve defaults; a PUT replaces the identity', async () => {
    const created = await rig.call('PUT', path('sb-t2'), { body: simple });
    expect(created.json).toMatchObject({ tenant_id: 'ws-default', organization_id: 'org-default' });
    await rig.call('PUT', path('sb-t2'), { body: { ...simple, tenant_id: 'beta' } });
    expect((await rig.call('GET', path('sb-t2'))).json).toMatchObject({
      tenant_id: 'beta',
      organization_id: 'org-default',
    });
    expect((await rig.call('PUT', path('sb-t2'), { body: simple })).json.tenant_id).toBe('ws-default');
  });

  it('422 for a malformed tenant_id or organization_id, naming the field and storing nothing', async () => {
    const res = await rig.call('PUT', path('sb-t3'), {
      body: { ...simple, tenant_id: 'has space', organization_id: 7 },
    });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual([
      'tenant_id: must be 1-128 characters of A-Z a-z 0-9 . _ : -',
      'organization_id: must be a string (or null to remove it)',
    ]);
    expect((await rig.call('PUT', path('sb-t3'), { body: { ...simple, tenant_id: 'x'.repeat(129) } })).status).toBe(
      422,
    );
    expect(await rig.store.get('sb-t3')).toBeUndefined();
  });

  it('the stored tenant reaches the callback body through the registry that follows the store', async () => {
    const config = { callbacks: [{ match_hosts: ['api.example.com'], url: callbacks.url, ttl_seconds: 60 }] };
    expect(
      (await rig.call('PUT', path('sb-cb'), { body: { ...config, tenant_id: 'acme', organization_id: 'org-acme' } }))
        .status,
    ).toBe(201);
    await rig.registry.start(60_000);
    await eventually(() => rig.registry.policyFor('sb-cb') !== undefined, 2000, 'registry to load sb-cb');
    const resolver = new CallbackResolver(
      new MemoryCredentialCache(10),
      await CallbackSigner.ephemeral(),
      undefined,
      undefined,
      rig.registry,
    );
    const callback = rig.registry.policyFor('sb-cb')!.callbacks[0]!;
    await resolver.lookup(callback, { host: 'api.example.com', port: 443 }, 'sb-cb');
    expect(JSON.parse(callbacks.calls.at(-1)!.body).identity).toEqual({
      tenant_id: 'acme',
      sandbox_id: 'sb-cb',
      organization_id: 'org-acme',
    });
    // A PATCH by an unscoped token may move the sandbox; the next call sends the new tenant.
    await rig.call('PATCH', path('sb-cb'), { body: { ...config, tenant_id: 'beta' } });
    await eventually(() => rig.registry.identityFor('sb-cb').tenantId === 'beta', 2000, 'registry to hear of the move');
    expect(rig.registry.identityFor('sb-cb')).toEqual({ tenantId: 'beta', organizationId: 'org-acme' });
    expect(rig.registry.identityFor('never-stored')).toEqual(DEFAULTS);
  });

  it('a tenant-scoped token creates in its tenant (the default when omitted) and nowhere else', async () => {
    const created = await rig.call('PUT', path('sb-a1'), { token: ACME, body: simple });
    expect(created.status).toBe(201);
    expect(created.json.tenant_id).toBe('acme');
    const elsewhere = await rig.call('PUT', path('sb-a2'), { token: ACME, body: { ...simple, tenant_id: 'beta' } });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.json.error).toBe('this token may only manage sandboxes of tenant "acme"');
    expect(await rig.store.get('sb-a2')).toBeUndefined();
    expect(
      (
        await rig.call('PUT', path('sb-a3'), {
          token: ACME,
          body: { ...simple, tenant_id: 'acme', organization_id: 'org-acme' },
        })
      ).json,
    ).toMatchObject({ tenant_id: 'acme', organization_id: 'org-acme' });
  });

  it('a tenant-scoped token can never move a sandbox to another tenant', async () => {
    const before = await rig.call('GET', path('sb-a1'), { token: ACME });
    for (const method of ['PATCH', 'PUT']) {
      const res = await rig.call(method, path('sb-a1'), { token: ACME, body: { ...simple, tenant_id: 'beta' } });
      expect(res.status, method).toBe(403);
    }
    const after = await rig.call('GET', path('sb-a1'), { token: ACME });
    expect(after.json.version).toBe(before.json.version);
    expect(after.json.tenant_id).toBe('acme');
    expect(
      (await rig.call('PATCH', path('sb-a1'), { token: ACME, body: { ...simple, description: 'mine' } })).json,
    ).toMatchObject({ tenant_id: 'acme', proxy_config: { description: 'mine' } });
  });

  it("a tenant-scoped token can't read, change or delete another tenant's sandbox (404, and 403 for a PUT)", async () => {
    await rig.call('PUT', path('sb-b1'), { body: { ...simple, tenant_id: 'beta' } });
    await rig.call('PUT', path('sb-default'), { body: simple });
    for (const id of ['sb-b1', 'sb-default']) {
      const version = (await rig.call('GET', path(id))).json.version;
      expect((await rig.call('GET', path(id), { token: ACME })).status).toBe(404);
      expect((await rig.call('GET', `/v1/sandboxes/${id}/env`, { token: ACME })).status).toBe(404);
      expect((await rig.call('PATCH', path(id), { token: ACME, body: simple })).status).toBe(404);
      expect((await rig.call('PATCH', path(id), { token: ACME, body: { ...simple, tenant_id: 'acme' } })).status).toBe(
        404,
      );
      expect((await rig.call('PUT', path(id), { token: ACME, body: { ...simple, tenant_id: 'acme' } })).status).toBe(
        403,
      );
      expect((await rig.call('DELETE', path(id), { token: ACME })).status).toBe(404);
      const still = await rig.call('GET', path(id));
      expect(still.status).toBe(200);
      expect(still.json.version).toBe(version);
    }
    expect((await rig.call('GET', path('sb-b1'), { token: ACME })).json.error).toBe(
      'no proxy_config stored for this sandbox',
    );
  });

  it("a tenant token's sandbox-id scope applies too", async () => {
    expect((await rig.call('PUT', path('sb-b2'), { token: BETA, body: simple })).status).toBe(403);
    expect((await rig.call('GET', path('sb-b1'), { token: BETA })).status).toBe(403);
    const created = await rig.call('PUT', path('sb-beta-1'), { token: BETA, body: simple });
    expect(created.status).toBe(201);
    expect(created.json.tenant_id).toBe('beta');
    expect((await rig.call('DELETE', path('sb-beta-1'), { token: BETA })).status).toBe(204);
  });

  it('audit lines name the tenant', () => {
    const lines = rig.logs.lines().filter((l) => l.msg === 'audit');
    expect(lines.find((l) => l.sandbox === 'sb-a1' && l.action === 'create')).toMatchObject({ tenant: 'acme' });
    expect(lines.find((l) => l.sandbox === 'sb-beta-1' && l.action === 'delete')).toMatchObject({ tenant: 'beta' });
    for (const token of [ACME, BETA, ADMIN_TOKEN]) expect(rig.logs.text()).not.toContain(token);
  });

  it('the SDK sends tenantId / organizationId beside the config and reads them back', async () => {
    const sdk = new AuthProxyClient({ baseUrl: rig.url, token: ADMIN_TOKEN, retries: 0 });
    const created = await sdk.create('sb-sdk', simple, { tenantId: 'acme', organizationId: 'org-acme' });
    expect([created.tenant_id, created.organization_id]).toEqual(['acme', 'org-acme']);
    const patched = await sdk.patch('sb-sdk', { ...simple, description: 'x' });
    expect([patched.tenant_id, patched.organization_id]).toEqual(['acme', 'org-acme']);
    const moved = await sdk.patch('sb-sdk', simple, { tenantId: 'beta', organizationId: null });
    expect([moved.tenant_id, moved.organization_id]).toEqual(['beta', 'org-default']);
    const replaced = await sdk.replace('sb-sdk', simple, { organizationId: 'org-2' });
    expect([replaced.tenant_id, replaced.organization_id]).toEqual(['ws-default', 'org-2']);
    const scoped = new AuthProxyClient({ baseUrl: rig.url, token: ACME, retries: 0 });
    await expect(scoped.create('sb-sdk-2', simple, { tenantId: 'beta' })).rejects.toMatchObject({ status: 403 });
    expect((await scoped.create('sb-sdk-2', simple)).tenant_id).toBe('acme');
    expect((await sdk.get('sb-sdk-2')).tenant_id).toBe('acme');
  });

  it('documents tenant_id and organization_id in the OpenAPI document', async () => {
    const doc = (await rig.call('GET', '/v1/openapi.json', { token: null })).json;
    expect(doc.components.schemas.SandboxConfig.required).toContain('tenant_id');
    expect(Object.keys(doc.components.schemas.SandboxConfig.properties)).toEqual(
      expect.arrayContaining(['tenant_id', 'organization_id']),
    );
    expect(Object.keys(doc.components.schemas.ProxyConfigWrite.properties)).toEqual(
      expect.arrayContaining(['rules', 'callbacks', 'tenant_id', 'organization_id']),
    );
  });

  it('the record HMAC covers the tenant: a tenant edited in Redis is refused', async () => {
    const key = Buffer.alloc(32, 5);
    const store = new RedisSandboxStore(rig.redis, 'mac-test:', key);
    await store.put('sb-mac', validateConfig(simple, 'test'), null, { tenantId: 'acme', organizationId: 'org-acme' });
    expect(await store.get('sb-mac')).toMatchObject({ tenantId: 'acme', organizationId: 'org-acme' });
    const [redisKey] = await (rig.redis as Redis).keys('mac-test:{sbx}:cfg:*:sb-mac');
    const raw = (await rig.redis.get(redisKey!))!;
    expect(raw.split('\n')[4]).toBe('{"tenant_id":"acme","organization_id":"org-acme"}');
    await rig.redis.set(redisKey!, raw.replace('"tenant_id":"acme"', '"tenant_id":"beta"'));
    await expect(store.get('sb-mac')).rejects.toThrow('stored config failed authentication');
    // Dropping the record line (the pre-tenant format) doesn't pass either.
    const lines = raw.split('\n');
    await rig.redis.set(redisKey!, [...lines.slice(0, 4), ...lines.slice(5)].join('\n'));
    await expect(store.get('sb-mac')).rejects.toThrow('stored config failed authentication');
  });
});

describe('admin tokens: tenant= scope entries', () => {
  it('reads tenant=T beside sandbox-id entries and refuses bad or repeated ones without echoing them', () => {
    const text = [
      'token-aaaaaaaaaaaaaaaa tenant=acme',
      'token-bbbbbbbbbbbbbbbb sb-a,tenant=beta,team-*',
      'token-cccccccccccccccc tenant=',
      'token-dddddddddddddddd tenant=a,tenant=b',
      'token-eeeeeeeeeeeeeeee tenant=bad/one',
      'token-ffffffffffffffff *,tenant=acme',
    ].join('\n');
    const { entries, problems } = parseTokens(text, 'tokens');
    expect(entries.map((e) => [e.scope, e.tenant])).toEqual([
      [undefined, 'acme'],
      [['sb-a', 'team-*'], 'beta'],
      [undefined, 'acme'],
    ]);
    expect(problems).toEqual([
      'tokens:3: "tenant=" needs a tenant id of 1-128 characters of A-Z a-z 0-9 . _ : - (entry 1 is not)',
      'tokens:4: at most one "tenant=" scope entry per token',
      'tokens:5: "tenant=" needs a tenant id of 1-128 characters of A-Z a-z 0-9 . _ : - (entry 1 is not)',
    ]);
    expect(problems.join('\n')).not.toMatch(/token-|bad\/one/);
  });
});
