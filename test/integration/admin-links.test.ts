/**
 * The admin API's sandbox links and addresses against a real Redis: validation (one line per problem,
 * naming the field), token scopes on both ends, tenants, audit lines, the OpenAPI document, and a config
 * write that counts a link written a moment ago through another replica.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthProxyClient } from '../../src/sdk/index.js';
import { ADMIN_TOKEN, SCOPED_TOKEN, startAdminRig, writeTokens, type AdminRig } from '../helpers/admin.js';

const ACME = 'acme-links-token-0123456789abcdef';
const rewrite = (to: string, port: number) => ({
  rules: [{ name: 'svc', type: 'rewrite', match_hosts: ['svc.example'], rewrite: { sandbox: to, port } }],
});

describe('admin API: sandbox links and addresses', () => {
  let rig: AdminRig;

  beforeAll(async () => {
    rig = await startAdminRig({ links: {} });
    writeTokens(rig, `${ADMIN_TOKEN}\n${SCOPED_TOKEN} team-*,sb-solo\n${ACME} tenant=acme\n`);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('registers, reads and removes an address; refuses what is not a sandbox address, naming the field', async () => {
    expect(await rig.call('PUT', '/v1/sandboxes/team-b/address', { body: { address: '10.0.3.7' } })).toMatchObject({
      status: 200,
      json: { sandbox_id: 'team-b', address: '10.0.3.7' },
    });
    expect((await rig.call('GET', '/v1/sandboxes/team-b/address')).json).toEqual({
      sandbox_id: 'team-b',
      address: '10.0.3.7',
    });
    const bad = async (body: unknown) => (await rig.call('PUT', '/v1/sandboxes/team-b/address', { body })).json;
    expect(await bad({ address: 'svc.internal' })).toEqual({
      error: 'invalid address',
      problems: ['address: must be an IP address (no hostname: nothing to resolve, nothing to rebind)'],
    });
    expect((await bad({ address: '169.254.169.254' })).problems).toEqual([
      'address: is a metadata address, which no sandbox can be reached at',
    ]);
    expect((await bad({ address: '127.0.0.1' })).problems[0]).toMatch(/^address: is a loopback address/);
    expect((await bad({ address: 7 })).problems).toEqual(['address: must be a string: an IP address']);
    expect((await bad({ address: '10.0.0.1', port: 1 })).problems).toEqual(['port: unknown field']);
    expect((await bad({ address: '10.0.0.1', 'x y': 1 })).problems).toEqual(['body: unknown field']);
    expect(
      (await rig.call('PUT', '/v1/sandboxes/team-b/address', { raw: 'x', contentType: 'text/plain' })).status,
    ).toBe(415);
    expect((await rig.call('GET', '/v1/sandboxes/team-b/address')).json.address).toBe('10.0.3.7');
    expect((await rig.call('DELETE', '/v1/sandboxes/team-c/address')).status).toBe(404);
  });

  it('creates, replaces, lists and deletes a link; ports sorted and unique', async () => {
    const created = await rig.call('PUT', '/v1/sandboxes/team-a/links/team-b', { body: { ports: [8080, 80, 8080] } });
    expect(created).toMatchObject({ status: 201, json: { from: 'team-a', to: 'team-b', ports: [80, 8080] } });
    expect((await rig.call('PUT', '/v1/sandboxes/team-a/links/team-b', { body: { ports: [80] } })).status).toBe(200);
    expect((await rig.call('GET', '/v1/sandboxes/team-a/links/team-b')).json).toEqual({
      from: 'team-a',
      to: 'team-b',
      ports: [80],
    });
    expect((await rig.call('GET', '/v1/sandboxes/team-a/links')).json).toEqual({
      sandbox_id: 'team-a',
      links: [{ from: 'team-a', to: 'team-b', ports: [80] }],
    });
    expect(rig.registry.links!.dial('team-a', 'team-b', 80)).toBe('10.0.3.7');
    expect(rig.registry.links!.dial('team-a', 'team-b', 8080)).toBeUndefined();
    expect((await rig.call('DELETE', '/v1/sandboxes/team-a/links/team-b')).status).toBe(204);
    expect(rig.registry.links!.dial('team-a', 'team-b', 80)).toBeUndefined();
    expect((await rig.call('GET', '/v1/sandboxes/team-a/links/team-b')).status).toBe(404);
    expect((await rig.call('DELETE', '/v1/sandboxes/team-a/links/team-b')).status).toBe(404);
  });

  it('takes ids that are names of object properties as plain ids (constructor, toString)', async () => {
    expect(rig.registry.links!.dial('team-a', 'constructor', 80)).toBeUndefined();
    expect(rig.registry.links!.whyNot('team-a', 'toString', 80)).toBe(
      'no link lets sandbox "team-a" reach sandbox "toString" on port 80',
    );
    expect((await rig.call('GET', '/v1/sandboxes/team-a/links/constructor')).status).toBe(404);
    expect((await rig.call('PUT', '/v1/sandboxes/team-a/links/constructor', { body: { ports: [80] } })).status).toBe(
      201,
    );
    expect((await rig.call('DELETE', '/v1/sandboxes/team-a/links/constructor')).status).toBe(204);
  });

  it('refuses bad ports, a bad target id and a link to itself, one line per problem', async () => {
    const put = async (to: string, body: unknown) => rig.call('PUT', `/v1/sandboxes/team-a/links/${to}`, { body });
    expect((await put('team-b', {})).json.problems).toEqual(['ports: is required: a list of port numbers']);
    expect((await put('team-b', { ports: [] })).json.problems).toEqual(['ports: must be a list of 1..64 port numbers']);
    expect((await put('team-b', { ports: [80, 0, 1.5, '8080'] })).json.problems).toEqual([
      'ports[1]: must be a whole number 1..65535',
      'ports[2]: must be a whole number 1..65535',
      'ports[3]: must be a whole number 1..65535',
    ]);
    expect((await put('team-b', { ports: [80], extra: true })).json.problems).toEqual(['extra: unknown field']);
    expect((await put('team-a', { ports: [80] })).json.problems).toEqual([
      'to: a sandbox does not need a link to itself',
    ]);
    expect((await put('-bad', { ports: [80] })).status).toBe(400);
  });

  it('needs a token that reaches both ends', async () => {
    const r = await rig.call('PUT', '/v1/sandboxes/team-a/links/other', { body: { ports: [80] }, token: SCOPED_TOKEN });
    expect(r).toMatchObject({
      status: 403,
      json: { problems: ['to: sandbox "other" is outside this token\'s scope'] },
    });
    expect(
      (await rig.call('PUT', '/v1/sandboxes/other/links/team-a', { body: { ports: [80] }, token: SCOPED_TOKEN }))
        .status,
    ).toBe(403);
    expect(
      (await rig.call('PUT', '/v1/sandboxes/team-a/links/team-b', { body: { ports: [80] }, token: SCOPED_TOKEN }))
        .status,
    ).toBe(201);
    expect(
      (await rig.call('PUT', '/v1/sandboxes/team-a/links/team-b', { body: { ports: [80] }, token: null })).status,
    ).toBe(401);
  });

  it('keeps links within a tenant: a tenant token only links its own sandboxes, no token links across tenants', async () => {
    expect(
      (await rig.call('PUT', '/v1/sandboxes/acme-1/proxy-config', { body: { rules: [] }, token: ACME })).status,
    ).toBe(201);
    expect(
      (await rig.call('PUT', '/v1/sandboxes/acme-2/proxy-config', { body: { rules: [] }, token: ACME })).status,
    ).toBe(201);
    expect(
      (await rig.call('PUT', '/v1/sandboxes/acme-1/links/acme-2', { body: { ports: [80] }, token: ACME })).status,
    ).toBe(201);
    const across = await rig.call('PUT', '/v1/sandboxes/acme-1/links/team-b', { body: { ports: [80] }, token: ACME });
    expect(across).toMatchObject({ status: 403, json: { problems: ['to: sandbox "team-b" is not in tenant "acme"'] } });
    expect(
      (await rig.call('PUT', '/v1/sandboxes/team-b/address', { body: { address: '10.0.0.2' }, token: ACME })).status,
    ).toBe(403);
    expect((await rig.call('GET', '/v1/sandboxes/team-a/links', { token: ACME })).status).toBe(403);
    const admin = await rig.call('PUT', '/v1/sandboxes/team-a/links/acme-1', { body: { ports: [80] } });
    expect(admin).toMatchObject({
      status: 422,
      json: {
        problems: ['to: sandbox "acme-1" is in another tenant than sandbox "team-a"; a link never crosses tenants'],
      },
    });
  });

  it('audits every change by token id, never with the token', async () => {
    await rig.call('PUT', '/v1/sandboxes/team-x/links/team-y', { body: { ports: [9000] } });
    const lines = rig.logs
      .lines()
      .filter((l) => l.msg === 'audit' && (l.action === 'link' || l.action === 'set_address'));
    expect(
      lines.some(
        (l) =>
          l.action === 'link' &&
          l.sandbox === 'team-x' &&
          l.to === 'team-y' &&
          JSON.stringify(l.ports) === '[9000]' &&
          typeof l.actor === 'string',
      ),
    ).toBe(true);
    expect(lines.some((l) => l.action === 'set_address' && l.sandbox === 'team-b')).toBe(true);
    expect(rig.logs.text()).not.toContain(ADMIN_TOKEN);
  });

  it('checks a config write against the links as stored now, even one written through another replica a moment ago', async () => {
    expect(
      (await rig.call('PUT', '/v1/sandboxes/team-p/proxy-config', { body: rewrite('team-q', 8080) })).json.problems,
    ).toEqual(['rules[0].rewrite.sandbox: no link lets sandbox "team-p" reach sandbox "team-q" on port 8080']);
    // Straight into the store, as another replica would: this replica has not heard the announcement.
    const links = rig.store.linkStore();
    await links.update('team-p', (net) => ({ ...net, links: { 'team-q': [8080] } }));
    await links.update('team-q', (net) => ({ ...net, address: '10.0.9.9' }));
    expect((await rig.call('PUT', '/v1/sandboxes/team-p/proxy-config', { body: rewrite('team-q', 8080) })).status).toBe(
      201,
    );
  });

  it('the SDK sets, reads and removes addresses and links', async () => {
    const sdk = new AuthProxyClient({ baseUrl: rig.url, token: ADMIN_TOKEN, retries: 0 });
    await sdk.setAddress('team-s2', '10.0.7.7');
    expect(await sdk.getAddress('team-s2')).toBe('10.0.7.7');
    expect(await sdk.link('team-s1', 'team-s2', [443, 80])).toEqual({
      from: 'team-s1',
      to: 'team-s2',
      ports: [80, 443],
    });
    expect(await sdk.getLink('team-s1', 'team-s2')).toEqual({ from: 'team-s1', to: 'team-s2', ports: [80, 443] });
    expect(await sdk.links('team-s1')).toEqual([{ from: 'team-s1', to: 'team-s2', ports: [80, 443] }]);
    expect(await sdk.unlink('team-s1', 'team-s2')).toBe(true);
    expect(await sdk.unlink('team-s1', 'team-s2')).toBe(false);
    expect(await sdk.getLink('team-s1', 'team-s2')).toBeUndefined();
    expect(await sdk.deleteAddress('team-s2')).toBe(true);
    expect(await sdk.getAddress('team-s2')).toBeUndefined();
    await expect(sdk.link('team-s1', 'team-s2', [0])).rejects.toThrow(
      '422 invalid link: ports[0]: must be a whole number 1..65535',
    );
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = (await rig.call('GET', '/v1/openapi.json', { token: null })).json;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/sandboxes/{id}/address',
        '/v1/sandboxes/{id}/links',
        '/v1/sandboxes/{id}/links/{to}',
      ]),
    );
    expect(doc.components.schemas.SandboxLinkWrite.required).toEqual(['ports']);
  });
});
