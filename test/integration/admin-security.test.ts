/**
 * Admin API gaps closed (issue 12, section 3), against a real Redis and a real registry: the opaque values
 * the API seals are bound to the sandbox in the path and to where each goes; a sealed value copied to
 * another sandbox or moved to other hosts is refused; `keys=PREFIX*` tokens may only name their own
 * workspace secrets; a bodyless GET or DELETE with a stray JSON content type is accepted.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/admin/tokens.js';
import { parseSealed } from '../../src/secrets/sealing.js';
import { ADMIN_TOKEN, startAdminRig, writeTokens, type AdminRig } from '../helpers/admin.js';

const CANARY = 'canary-bind-opaque-3e8b';
const CB_CANARY = 'canary-bind-callback-91c4';
const AWS_SECRET = 'canary-bind-aws-secret-5f0a';
const TEAM_A = 'team-a-token-0123456789abcdef';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;

/** `value: null` sends the opaque header without a value (a PATCH keeps the stored one). */
const config = (value: string | null = `Bearer ${CANARY}`, hosts = ['api.github.com']) => ({
  rules: [
    {
      name: 'github-api',
      match_hosts: hosts,
      headers: [{ name: 'Authorization', type: 'opaque', ...(value === null ? {} : { value }) }],
    },
    {
      name: 'cloud',
      type: 'aws',
      aws: {
        access_key_id: { type: 'opaque', value: 'AKIAFAKECANARY000000' },
        secret_access_key: { type: 'opaque', value: AWS_SECRET },
      },
    },
  ],
  callbacks: [
    {
      match_hosts: ['api.example.com'],
      url: 'https://tokens.example.com/v1/resolve',
      ttl_seconds: 300,
      request_headers: [{ name: 'X-Key', type: 'opaque', value: CB_CANARY }],
    },
  ],
});
const keyed = (key: string) => ({
  rules: [
    {
      name: 'r',
      match_hosts: ['api.example.com'],
      headers: [{ name: 'Authorization', type: 'workspace_secret', value: `Bearer {${key}}` }],
    },
  ],
});

describe('admin API: sealed values bound to where they may go', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig({
      secrets: {
        TEAM_A_TOKEN: 'ws-team-a-canary',
        TEAM_B_TOKEN: 'ws-team-b-canary',
        TEAM_B_AWS: 'AKIAFAKETEAMB0000000',
      },
    });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('seals each plaintext opaque value to the sandbox in the path and the rule hosts, provider or callback origin', async () => {
    expect((await rig.call('PUT', path('sb-bind-a'), { body: config() })).status).toBe(201);
    const stored = (await rig.store.get('sb-bind-a'))!.config;
    const aws = stored.rules[1] as { aws: { access_key_id: { value: string }; secret_access_key: { value: string } } };
    expect(parseSealed(stored.rules[0]!.headers![0]!.value).binding).toEqual({
      sandbox: 'sb-bind-a',
      target: { hosts: ['api.github.com'] },
    });
    expect(parseSealed(aws.aws.secret_access_key.value).binding).toEqual({
      sandbox: 'sb-bind-a',
      target: { provider: 'aws' },
    });
    expect(parseSealed(stored.callbacks[0]!.request_headers[0]!.value).binding).toEqual({
      sandbox: 'sb-bind-a',
      target: { callback: 'https://tokens.example.com' },
    });
    expect(rig.unsealer.unseal(stored.rules[0]!.headers![0]!.value)).toBe(`Bearer ${CANARY}`);
  });

  it("a sealed value copied into another sandbox's config, or moved to other hosts, is a 422 naming the field", async () => {
    const sealed = (await rig.store.get('sb-bind-a'))!.config.rules[0]!.headers![0]!.value;
    const copied = await rig.call('PUT', path('sb-bind-b'), { body: config(sealed) });
    expect(copied.status).toBe(422);
    expect(copied.json.problems).toEqual([
      'rules[0].headers[0].value: rule "github-api", header "Authorization": sealed value is bound to sandbox "sb-bind-a", not "sb-bind-b"',
    ]);
    expect(await rig.store.get('sb-bind-b')).toBeUndefined();
    const moved = await rig.call('PUT', path('sb-bind-a'), {
      body: config(sealed, ['api.github.com', 'evil.example.com']),
    });
    expect(moved.status).toBe(422);
    expect(moved.json.problems).toEqual([
      'rules[0].headers[0].value: rule "github-api", header "Authorization": sealed value is bound to hosts api.github.com; "evil.example.com" is not among them',
    ]);
    expect(copied.text + moved.text).not.toContain(CANARY);
  });

  it('PATCH still keeps a stored value whose hosts stay within the stored ones (it is bound to them already)', async () => {
    const before = (await rig.store.get('sb-bind-a'))!.config.rules[0]!.headers![0]!.value;
    const body = config(null);
    (body.rules[1] as { aws: object }).aws = {
      access_key_id: { type: 'opaque' },
      secret_access_key: { type: 'opaque' },
    };
    (body.callbacks[0]!.request_headers[0] as { value?: string }).value = undefined;
    const kept = await rig.call('PATCH', path('sb-bind-a'), { body });
    expect(kept.status).toBe(200);
    expect((await rig.store.get('sb-bind-a'))!.config.rules[0]!.headers![0]!.value).toBe(before);
    const widened = await rig.call('PATCH', path('sb-bind-a'), {
      body: config(null, ['api.github.com', 'evil.example.com']),
    });
    expect(widened.status).toBe(422);
  });

  it('a keys=PREFIX* token may only store configs whose {KEY} placeholders match its key scopes (403 naming field and key)', async () => {
    writeTokens(rig, `${ADMIN_TOKEN}\n${TEAM_A} keys=TEAM_A_*\n`);
    expect((await rig.call('PUT', path('sb-keys'), { token: TEAM_A, body: keyed('TEAM_A_TOKEN') })).status).toBe(201);
    const other = await rig.call('PUT', path('sb-keys'), { token: TEAM_A, body: keyed('TEAM_B_TOKEN') });
    expect(other.status).toBe(403);
    expect(other.json).toEqual({
      error: 'this token may not use these workspace secrets',
      problems: [
        'rules[0].headers[0].value: workspace secret "TEAM_B_TOKEN" is outside this token\'s key scope (keys=TEAM_A_*)',
      ],
    });
    const provider = {
      rules: [
        {
          name: 'cloud',
          type: 'aws',
          aws: {
            access_key_id: { type: 'workspace_secret', value: '{TEAM_B_AWS}' },
            secret_access_key: { type: 'workspace_secret', value: '{TEAM_A_TOKEN}' },
          },
        },
      ],
    };
    const viaProvider = await rig.call('PATCH', path('sb-keys'), { token: TEAM_A, body: provider });
    expect(viaProvider.status).toBe(403);
    expect(viaProvider.json.problems).toEqual([
      'rules[0].aws.access_key_id.value: workspace secret "TEAM_B_AWS" is outside this token\'s key scope (keys=TEAM_A_*)',
    ]);
    expect(other.text + viaProvider.text).not.toMatch(/ws-team-|AKIAFAKETEAMB/);
    // Tokens without keys= entries (and the stored config) are unaffected.
    expect((await rig.call('PUT', path('sb-keys'), { body: keyed('TEAM_B_TOKEN') })).status).toBe(200);
  });

  it('keys= scope entries are parsed beside sandbox and tenant entries; bad ones name the line, never the token', () => {
    const { entries, problems } = parseTokens(
      [
        'keys-token-aaaaaaaaaaaa keys=TEAM_A_*,keys=SHARED_KEY,tenant=acme,acme-*',
        'keys-token-bbbbbbbbbbbb keys=*',
        'keys-token-cccccccccccc keys=bad-name',
      ].join('\n'),
      'tokens',
    );
    expect(entries.map(({ digest: _d, ...p }) => p)).toEqual([
      { id: expect.any(String), scope: ['acme-*'], tenant: 'acme', keys: ['TEAM_A_*', 'SHARED_KEY'] },
      { id: expect.any(String), scope: undefined },
    ]);
    expect(problems).toEqual(['tokens:3: "keys=" needs a workspace secret name or "PREFIX*" (entry 1 is not)']);
  });

  it('a bodyless GET or DELETE with a stray Content-Type: application/json is accepted', async () => {
    expect((await rig.call('PUT', path('sb-stray'), { body: keyed('TEAM_A_TOKEN') })).status).toBe(201);
    const raw = (method: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${rig.url}${path('sb-stray')}`);
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method,
            headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await raw('GET', { 'content-type': 'application/json', 'content-length': '0' })).toBe(200);
    expect(await raw('GET', { 'content-type': 'application/json' })).toBe(200);
    expect(await raw('DELETE', { 'content-type': 'application/json', 'content-length': '0' })).toBe(204);
    expect((await rig.call('PUT', path('sb-stray'), { body: keyed('TEAM_A_TOKEN') })).status).toBe(201);
    expect(await raw('DELETE', { 'content-type': 'application/json; charset=utf-8' })).toBe(204);
    // A write still needs its body.
    expect((await rig.call('PUT', path('sb-stray'), { raw: '' })).status).toBe(400);
  });
});
