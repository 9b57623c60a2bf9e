/**
 * Regressions found in review: a PATCH may not point a kept secret at new hosts; is_set with a value and
 * empty opaque values are refused; a callback URL's query never appears in a problem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startAdminRig, type AdminRig } from '../helpers/admin.js';

const SECRET = 'canary-hardening-secret-51ac';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const rule = (hosts: string[], header: Record<string, unknown>) => ({
  rules: [{ name: 'gh', match_hosts: hosts, headers: [{ name: 'Authorization', type: 'opaque', ...header }] }],
});

describe('admin API hardening', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig();
  });
  afterAll(() => rig?.close());

  it('a PATCH that keeps an opaque value may not send it to a new host', async () => {
    expect(
      (
        await rig.call('PUT', path('sb-h1'), {
          body: rule(['api.github.com', 'uploads.github.com'], { value: `Bearer ${SECRET}` }),
        })
      ).status,
    ).toBe(201);
    const moved = await rig.call('PATCH', path('sb-h1'), { body: rule(['attacker.example'], { is_set: true }) });
    expect(moved.status).toBe(422);
    expect(moved.json.problems.join('\n')).toContain('rules[0].headers[0].value: no stored value to keep');
    const narrowed = await rig.call('PATCH', path('sb-h1'), { body: rule(['api.github.com'], { is_set: true }) });
    expect(narrowed.status).toBe(200);
    expect(JSON.stringify(narrowed.json)).not.toContain(SECRET);
  });

  it("a rewrite rule's opaque value is sealed to its destination, and a PATCH that keeps it may not change the destination", async () => {
    const rewrite = (host: string, header: Record<string, unknown>) => ({
      rules: [
        {
          name: 'moved',
          type: 'rewrite',
          match_hosts: ['api.old.example'],
          rewrite: { host, port: 443 },
          headers: [{ name: 'Authorization', type: 'opaque', ...header }],
        },
      ],
    });
    expect(
      (await rig.call('PUT', path('sb-h4'), { body: rewrite('api.new.example', { value: `Bearer ${SECRET}` }) }))
        .status,
    ).toBe(201);
    const moved = await rig.call('PATCH', path('sb-h4'), { body: rewrite('attacker.example', { is_set: true }) });
    expect(moved.status).toBe(422);
    expect(moved.json.problems.join('\n')).toContain('rules[0].headers[0].value: no stored value to keep');
    const same = await rig.call('PATCH', path('sb-h4'), {
      body: {
        rules: [{ ...rewrite('api.new.example', { is_set: true }).rules[0], match_hosts: ['api.other.example'] }],
      },
    });
    expect(same.status).toBe(200);
    expect(same.json.proxy_config.rules[0]).toMatchObject({
      type: 'rewrite',
      rewrite: { host: 'api.new.example', port: 443, credentials: 'strip' },
    });
    expect(JSON.stringify(same.json)).not.toContain(SECRET);
  });

  it('refuses a rewrite to another sandbox that no link allows (422, one line naming the field)', async () => {
    const body = {
      rules: [
        {
          name: 'to-b',
          type: 'rewrite',
          match_hosts: ['svc.internal.example'],
          rewrite: { sandbox: 'sb-b', port: 8080 },
        },
      ],
    };
    const res = await rig.call('PUT', path('sb-h5'), { body });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual([
      'rules[0].rewrite.sandbox: no link lets sandbox "sb-h5" reach sandbox "sb-b" on port 8080',
    ]);
  });

  it('refuses is_set: true together with a value, and empty opaque values', async () => {
    await rig.call('PUT', path('sb-h2'), { body: rule(['api.github.com'], { value: `Bearer ${SECRET}` }) });
    const both = await rig.call('PATCH', path('sb-h2'), {
      body: rule(['api.github.com'], { is_set: true, value: '' }),
    });
    expect(both.status).toBe(422);
    expect(both.json.problems[0]).toContain('is_set: true keeps the stored value');
    const empty = await rig.call('PUT', path('sb-h3'), { body: rule(['api.github.com'], { value: '' }) });
    expect(empty.status).toBe(422);
    expect(empty.json.problems).toContain('rules[0].headers[0].value: must not be empty');
  });

  it('never shows a callback URL query in a problem', async () => {
    const body = {
      callbacks: [
        {
          match_hosts: ['api.example.com'],
          url: `https://tokens.example/r?key=${SECRET}`,
          ttl_seconds: 60,
          request_headers: [{ name: 'K', type: 'opaque' }],
        },
      ],
    };
    const res = await rig.call('PUT', path('sb-h4'), { body });
    expect(res.status).toBe(422);
    expect(res.text).not.toContain(SECRET);
  });
});

describe('conditional writes (ETag / If-Match)', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig();
  });
  afterAll(() => rig?.close());
  const config = (name: string) => ({
    rules: [{ name, match_hosts: ['api.example.com'], headers: [{ name: 'X-Key', type: 'plaintext', value: name }] }],
  });

  it('GET returns an ETag; a write naming a stale one gets 412 and changes nothing', async () => {
    await rig.call('PUT', path('sb-c1'), { body: config('first') });
    const read = await rig.call('GET', path('sb-c1'));
    const etag = read.headers.get('etag')!;
    expect(etag).toMatch(/^"1-[0-9a-f-]+"$/);
    expect(read.json.etag).toBe(etag);
    await rig.call('PUT', path('sb-c1'), { body: config('second') });
    const stale = await rig.call('PATCH', path('sb-c1'), { body: config('third'), headers: { 'if-match': etag } });
    expect(stale.status).toBe(412);
    expect((await rig.call('GET', path('sb-c1'))).json.proxy_config.rules[0].name).toBe('second');
    const fresh = (await rig.call('GET', path('sb-c1'))).headers.get('etag')!;
    expect(
      (await rig.call('PATCH', path('sb-c1'), { body: config('third'), headers: { 'if-match': fresh } })).status,
    ).toBe(200);
  });

  it('If-None-Match: * creates only', async () => {
    expect(
      (await rig.call('PUT', path('sb-c2'), { body: config('a'), headers: { 'if-none-match': '*' } })).status,
    ).toBe(201);
    expect(
      (await rig.call('PUT', path('sb-c2'), { body: config('b'), headers: { 'if-none-match': '*' } })).status,
    ).toBe(412);
  });

  it('configureGithubProxy never overwrites a change made between its read and its write', async () => {
    const { AuthProxyClient, configureGithubProxy } = await import('../../src/sdk/index.js');
    await rig.call('PUT', path('sb-c3'), { body: config('keep-me') });
    let interfered = false;
    const sneaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!interfered && (init?.method ?? 'GET') === 'GET') {
        interfered = true;
        await rig.call('PUT', path('sb-c3'), {
          body: { rules: [...config('keep-me').rules, ...config('added-meanwhile').rules] },
        });
      }
      return res;
    };
    const client = new AuthProxyClient({ baseUrl: rig.url, token: ADMIN_TOKEN, fetch: sneaky });
    await configureGithubProxy(client, 'sb-c3', 'ghs_conditional_token');
    const names = (await rig.call('GET', path('sb-c3'))).json.proxy_config.rules.map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining(['keep-me', 'added-meanwhile', 'github-api', 'github-git']));
  });
});
