import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { decideRoute, mayIntercept } from '../../src/policy/connect.js';
import { decide } from '../../src/policy/decide.js';

const policy = compilePolicy(
  validateConfig(
    {
      rules: [
        {
          name: 'gh',
          match_hosts: ['api.github.com', '*.cdn-example.com'],
          headers: [{ name: 'Authorization', type: 'plaintext', value: 'Bearer t' }],
        },
        {
          name: 'off',
          enabled: false,
          match_hosts: ['disabled.example.com'],
          headers: [{ name: 'A', type: 'plaintext', value: 'v' }],
        },
        { name: 'np', match_hosts: ['internal.example.com'], headers: [{ name: 'A', type: 'plaintext', value: 'v' }] },
      ],
      callbacks: [{ match_hosts: ['cb.example.com'], url: 'https://tokens.example/resolve', ttl_seconds: 60 }],
      access_control: { deny_list: ['evil.example.com'] },
      no_proxy: ['internal.example.com'],
    },
    'test',
  ),
  { secrets: new Map(), unsealer: undefined },
);

describe("decideRoute: the outer listener's intercept-or-tunnel choice", () => {
  it.each([
    ['CONNECT', 'api.github.com:443', 'intercept'],
    ['CONNECT', 'API.GitHub.com.:8443', 'intercept'],
    ['CONNECT', 'raw.cdn-example.com:443', 'intercept'],
    ['CONNECT', 'cb.example.com:443', 'intercept'],
    ['CONNECT', 'example.org:443', 'tunnel'],
    ['CONNECT', 'disabled.example.com:443', 'tunnel'],
    ['CONNECT', 'internal.example.com:443', 'tunnel'],
    ['CONNECT', '127.0.0.1:443', 'tunnel'],
    ['CONNECT', 'evil.example.com:443', 'refuse'],
    ['CONNECT', 'api.github.com', 'refuse'],
    ['CONNECT', 'user@api.github.com:443', 'refuse'],
    ['GET', 'example.org', 'tunnel'],
    ['GET', 'api.github.com', 'refuse'],
    ['GET', 'cb.example.com:80', 'refuse'],
    ['GET', 'evil.example.com', 'refuse'],
  ])('%s %s -> %s', (method, authority, outcome) => {
    expect(decideRoute(policy, method, authority).outcome).toBe(outcome);
  });

  it('keeps the CONNECT port as the target port', () => {
    expect(decideRoute(policy, 'CONNECT', 'api.github.com:8443')).toMatchObject({
      outcome: 'intercept',
      target: { host: 'api.github.com', port: 8443 },
    });
  });

  it('says why a plain-http request to a credentialed host is refused', () => {
    expect(decideRoute(policy, 'GET', 'api.github.com')).toMatchObject({
      outcome: 'refuse',
      status: 403,
      reason: 'cleartext',
    });
  });

  it('tunnels every allowed host for an unknown sandbox (no config, no credential)', () => {
    expect(decideRoute(undefined, 'CONNECT', 'api.github.com:443').outcome).toBe('tunnel');
  });

  it('mints only for hosts it would intercept', () => {
    expect(mayIntercept(policy, 'api.github.com')).toBe(true);
    expect(mayIntercept(policy, 'a.b.cdn-example.com')).toBe(true);
    expect(mayIntercept(policy, 'cdn-example.com')).toBe(false);
    expect(mayIntercept(policy, 'example.org')).toBe(false);
    expect(mayIntercept(policy, 'internal.example.com')).toBe(false);
    expect(mayIntercept(policy, 'evil.example.com')).toBe(false);
    expect(mayIntercept(undefined, 'api.github.com')).toBe(false);
  });
});

describe('decide inside an intercepted tunnel: Host, SNI and CONNECT target must agree', () => {
  const req = (authority: string, connectAuthority: string | undefined, sni: string | undefined) => ({
    method: 'GET',
    scheme: 'https',
    authority,
    path: '/',
    tunnel: { connectAuthority, sni },
  });

  it('injects when all three agree, using the CONNECT port', () => {
    const d = decide(policy, req('api.github.com', 'api.github.com:8443', 'api.github.com'));
    expect(d).toMatchObject({ outcome: 'inject', target: { host: 'api.github.com', port: 8443 } });
  });

  it('tolerates case and a trailing dot in the SNI', () => {
    expect(decide(policy, req('api.github.com', 'API.github.com:443', 'Api.GitHub.com.')).outcome).toBe('inject');
  });

  it.each([
    ['Host differs from CONNECT target', req('api.github.com', 'example.org:443', 'api.github.com')],
    ['SNI differs from Host', req('api.github.com', 'api.github.com:443', 'example.org')],
    ['SNI missing', req('api.github.com', 'api.github.com:443', undefined)],
    ['CONNECT target missing', req('api.github.com', undefined, 'api.github.com')],
  ])('refuses with 421 when %s', (_what, r) => {
    expect(decide(policy, r)).toMatchObject({ outcome: 'refuse', status: 421, reason: 'misdirected' });
  });
});
