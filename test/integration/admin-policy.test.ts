/**
 * Callback URL policy (cloud metadata always refused, the operator allow-list enforced) through the real
 * API, plus the tables behind it and behind the tokens file format.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallbackPolicy, parseCallbackAllowList } from '../../src/config/callback-policy.js';
import { AdminTokens, mayAccess, parseTokens } from '../../src/admin/tokens.js';
import { startAdminRig, type AdminRig } from '../helpers/admin.js';

const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const withCallback = (url: string) => ({ callbacks: [{ match_hosts: ['api.example.com'], url, ttl_seconds: 60 }] });

const METADATA_URLS = [
  'http://169.254.169.254/latest/meta-data/',
  'http://169.254.170.2/v2/credentials',
  'http://[fd00:ec2::254]/latest',
  'http://100.100.100.200/latest/meta-data',
  'http://metadata.google.internal/computeMetadata/v1/',
  'http://metadata.goog/',
  'http://METADATA.google.internal./x',
  'http://2852039166/', // 169.254.169.254 as one decimal number
  'http://0xa9fea9fe/',
  'http://[::ffff:169.254.169.254]/',
  'http://169.254.1.1/',
  'http://[fe80::1]/',
];

describe('admin API: callback URL policy', () => {
  let open: AdminRig;
  let restricted: AdminRig;
  beforeAll(async () => {
    open = await startAdminRig();
    restricted = await startAdminRig({
      callbackAllow: ['tokens.example.com', '*.internal.example', '10.0.0.0/8', '169.254.0.0/16', 'fd00::/8'],
    });
  });
  afterAll(async () => {
    await open?.close();
    await restricted?.close();
  });

  it('refuses cloud metadata and link-local callback URLs, naming callbacks[i].url', async () => {
    for (const url of METADATA_URLS) {
      const res = await open.call('PUT', path('sb-meta'), { body: withCallback(url) });
      expect(res.status, url).toBe(422);
      expect(res.json.problems, url).toEqual([
        expect.stringMatching(/^callbacks\[0\]\.url: host ".*" is a cloud metadata or link-local address/),
      ]);
    }
    expect(await open.store.get('sb-meta')).toBeUndefined();
  });

  it('without an allow-list, other hosts (including loopback) are accepted', async () => {
    expect(
      (await open.call('PUT', path('sb-ok'), { body: withCallback('https://tokens.anywhere.example/resolve') })).status,
    ).toBe(201);
    expect(
      (await open.call('PUT', path('sb-ok'), { body: withCallback('http://127.0.0.1:9999/resolve') })).status,
    ).toBe(200);
  });

  it('with an allow-list, only matching hosts and addresses are accepted; metadata stays refused', async () => {
    const allowed = [
      'https://tokens.example.com/r',
      'https://a.b.internal.example/r',
      'http://10.1.2.3:8080/r',
      'http://[::ffff:10.0.0.9]/r',
    ];
    for (const url of allowed)
      expect((await restricted.call('PUT', path('sb-allow'), { body: withCallback(url) })).status, url).toBeLessThan(
        300,
      );
    const refused = [
      'https://evil.example.com/r',
      'https://internal.example/r',
      'https://tokens.example.com.evil.example/r',
      'http://11.0.0.1/r',
      'http://127.0.0.1/r',
    ];
    for (const url of refused) {
      const res = await restricted.call('PUT', path('sb-allow'), { body: withCallback(url) });
      expect(res.status, url).toBe(422);
      expect(res.json.problems[0], url).toMatch(
        /^callbacks\[0\]\.url: host ".*" is not in the operator's callback allow-list$/,
      );
    }
    for (const url of ['http://169.254.169.254/', 'http://[fd00:ec2::254]/']) {
      expect(
        (await restricted.call('PUT', path('sb-allow'), { body: withCallback(url) })).json.problems[0],
        url,
      ).toMatch(/cloud metadata/);
    }
  });

  it('reports the policy problem of the second callback by its index, beside schema-valid others', async () => {
    const body = {
      callbacks: [
        withCallback('https://tokens.example.com/a').callbacks[0],
        withCallback('http://169.254.169.254/').callbacks[0],
      ],
    };
    const res = await restricted.call('PUT', path('sb-two'), { body });
    expect(res.json.problems).toEqual([expect.stringMatching(/^callbacks\[1\]\.url: /)]);
  });
});

describe('callback allow-list parsing', () => {
  it('accepts hostnames, wildcards, IPs and CIDRs separated by commas or spaces', () => {
    expect(parseCallbackAllowList('a.example.com, *.svc.cluster.local 10.0.0.0/8,fd00::/8 192.168.1.5')).toHaveLength(
      5,
    );
    expect(parseCallbackAllowList('')).toEqual([]);
  });

  it('refuses anything else, naming the flag and the entry', () => {
    expect(() => parseCallbackAllowList('https://a.example.com')).toThrow(
      /--callback-allow: "https:\/\/a.example.com" is not a hostname/,
    );
    expect(() => parseCallbackAllowList('10.0.0.0/33')).toThrow(/"10.0.0.0\/33"/);
    expect(() => parseCallbackAllowList('a.*.example.com')).toThrow(/"a\.\*\.example\.com"/);
  });

  it('matches a wildcard at any depth but never the domain itself', () => {
    const policy = createCallbackPolicy(['*.corp.example']);
    expect(policy.problem('https://x.y.corp.example/')).toBeUndefined();
    expect(policy.problem('https://corp.example/')).toMatch(/allow-list/);
    expect(policy.problem('https://xcorp.example/')).toMatch(/allow-list/);
  });
});

describe('admin tokens file format', () => {
  it('reads tokens, scopes and comments; problems name the line and never the token', () => {
    const text = [
      '# comment',
      '',
      'token-aaaaaaaaaaaaaaaa',
      'token-bbbbbbbbbbbbbbbb  sb-a,team-*  # scoped',
      'token-cccccccccccccccc *',
      'shorttok',
      'token-aaaaaaaaaaaaaaaa',
      'token-dddddddddddddddd bad/scope',
      'token-eeeeeeeeeeeeeeee a b',
    ].join('\n');
    const { entries, problems } = parseTokens(text, 'tokens.txt');
    expect(entries.map((e) => e.scope)).toEqual([undefined, ['sb-a', 'team-*'], undefined]);
    expect(problems).toEqual([
      'tokens.txt:6: a token must be at least 16 visible ASCII characters',
      'tokens.txt:7: duplicate token (also line 3)',
      'tokens.txt:8: scope entries must be sandbox ids, "prefix*", "*", "tenant=ID" or "keys=PREFIX*" (entry 1 is not)',
      'tokens.txt:9: expected "TOKEN [SCOPE]" (scope entries are comma-separated, without spaces)',
    ]);
    expect(problems.join('\n')).not.toMatch(/token-|shorttok|bad\/scope/);
  });

  it('scopes match exact ids and prefixes', () => {
    const principal = { id: 'x', scope: ['sb-a', 'team-*'] };
    expect(mayAccess(principal, 'sb-a')).toBe(true);
    expect(mayAccess(principal, 'sb-ab')).toBe(false);
    expect(mayAccess(principal, 'team-7')).toBe(true);
    expect(mayAccess({ id: 'x', scope: undefined }, 'anything')).toBe(true);
  });

  it('authenticates by Bearer only, with the token id as the first 8 hex of its SHA-256', async () => {
    const tokens = AdminTokens.fromText('token-aaaaaaaaaaaaaaaa\n');
    const expected = createHash('sha256').update('token-aaaaaaaaaaaaaaaa').digest('hex').slice(0, 8);
    expect((await tokens.authenticate('Bearer token-aaaaaaaaaaaaaaaa'))?.id).toBe(expected);
    expect(await tokens.authenticate('bearer   token-aaaaaaaaaaaaaaaa')).toBeDefined();
    expect(await tokens.authenticate('Bearer token-aaaaaaaaaaaaaaab')).toBeUndefined();
    expect(await tokens.authenticate('token-aaaaaaaaaaaaaaaa')).toBeUndefined();
    expect(await tokens.authenticate(undefined)).toBeUndefined();
  });
});
