import { describe, expect, it } from 'vitest';
import { decide, type Decision } from '../../src/policy/decide.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import { policyFrom } from './support.js';

const header = (value: string) =>
  `    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {${value}}" }]\n`;
const SECRETS = new Map([
  ['GH', 'ghp_FAKEcanary'],
  ['GHW', 'ghp_FAKEwildcard'],
  ['OAI', 'sk-FAKE-canary'],
  ['P', 'FAKE-paths'],
  ['CB', 'FAKE-cb-rule'],
  ['X', 'FAKE-x'],
]);

/** One config exercising every matching step; access_control is tested with separate configs below. */
const POLICY = policyFrom(
  `rules:
  - name: github-disabled
    enabled: false
    match_hosts: ["api.github.com"]
${header('X')}  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/repos/*", "/user"]
${header('GH')}  - name: github-wildcard
    match_hosts: ["*.github.com"]
${header('GHW')}  - name: openai
    match_hosts: ["api.openai.com"]
${header('OAI')}  - name: paths
    match_hosts: ["paths.example.com"]
    match_paths: ["/repos/*", "/user", "/ABC", "/v?/items", "/v1.0/*", "/a+b/*", "/x[12]/*", "/i{2}/*", "/exact.json"]
${header('P')}  - name: cb-rule
    match_hosts: ["cb.example.com"]
    match_paths: ["/special"]
${header('CB')}  - name: shadowed-by-no-proxy
    match_hosts: ["api.internal.example.com"]
${header('X')}callbacks:
  - match_hosts: ["cb.example.com", "*.cb.example.com"]
    url: "https://tokens.internal.example/first"
    ttl_seconds: 300
  - match_hosts: ["cb.example.com"]
    url: "https://tokens.internal.example/second"
    ttl_seconds: 300
no_proxy: ["localhost", "127.0.0.1", "::1", "*.internal.example.com"]
`,
  SECRETS,
);

function summary(d: Decision): string {
  switch (d.outcome) {
    case 'inject':
      return `inject ${d.rule.name}`;
    case 'callback':
      return `callback ${d.callback.url.split('/').pop()}`;
    case 'aws':
    case 'gcp':
    case 'azure':
      return `${d.outcome} ${d.rule.name}`;
    case 'pass':
      return `pass ${d.reason}`;
    case 'refuse':
      return `refuse ${d.status} ${d.reason}`;
  }
}

const run = (policy: CompiledPolicy, authority: string, path = '/', scheme = 'https') =>
  decide(policy, { method: 'GET', scheme, authority, path });
const check = (policy: CompiledPolicy, authority: string, path: string, expected: string, scheme = 'https') =>
  expect(summary(run(policy, authority, path, scheme)), `${scheme}://${authority}${path}`).toBe(expected);

describe('step 1: host normalisation', () => {
  it.each([
    ['api.openai.com', 'api.openai.com', 443],
    ['API.OpenAI.COM', 'api.openai.com', 443],
    ['api.openai.com:443', 'api.openai.com', 443],
    ['api.openai.com:8443', 'api.openai.com', 8443],
    ['api.openai.com.', 'api.openai.com', 443],
    ['Api.OpenAI.com.:8443', 'api.openai.com', 8443],
  ])('%s -> %s:%i, credential injected', (authority, host, port) => {
    const d = run(POLICY, authority, '/v1/models');
    expect(summary(d)).toBe('inject openai');
    expect(d.target).toEqual({ host, port });
  });

  it('removes only one trailing dot', () => {
    expect(summary(run(POLICY, 'api.openai.com..'))).toBe('pass invalid_authority');
  });

  it.each([
    'user@api.openai.com',
    'api.openai.com:99999',
    'api.openai.com:0',
    'api.openai.com:',
    'api.openai.com:443:443',
    '',
    '[::1',
    'api_openai.com',
  ])('authority %j matches nothing and gets no credential', (authority) => {
    const d = run(POLICY, authority, '/v1/models');
    expect(summary(d)).toBe('pass invalid_authority');
    expect(d.target).toBeUndefined();
  });

  it('IPv6 literals are unbracketed and keep their port', () => {
    expect(run(POLICY, '[::1]:8443').target).toEqual({ host: '::1', port: 8443 });
    expect(run(POLICY, '[2001:DB8::1]', '/', 'http').target).toEqual({ host: '2001:db8::1', port: 80 });
  });
});

describe('step 2: host patterns', () => {
  it.each([
    ['a.github.com', 'inject github-wildcard'],
    ['a.b.github.com', 'inject github-wildcard'],
    ['A.B.GitHub.com:444', 'inject github-wildcard'],
    ['github.com', 'pass no_match'],
    ['notgithub.com', 'pass no_match'],
    ['github.com.evil.example', 'pass no_match'],
    ['api.openai.com', 'inject openai'],
    ['x.api.openai.com', 'pass no_match'],
    ['openai.com', 'pass no_match'],
  ])('%s -> %s', (authority, expected) => check(POLICY, authority, '/anything', expected));
});

describe('steps 3 and 4: path normalisation and path patterns', () => {
  it.each([
    // query and fragment dropped
    ['/user?per_page=100', 'inject paths'],
    ['/user#top', 'inject paths'],
    ['/user?a=/repos/x', 'inject paths'],
    // The upstream gets the path as sent: a rule with match_paths matches only a path that is already normal.
    // Dot segments, encoded dots, encoded unreserved characters and repeated slashes get no credential from it,
    // whichever way they would normalise (into the prefix or out of it).
    ['/repos/../user', 'pass ambiguous_path'],
    ['/repos/%2e%2e/user', 'pass ambiguous_path'],
    ['/repos/%2E%2E/%2e/user', 'pass ambiguous_path'],
    ['/./user', 'pass ambiguous_path'],
    ['/%75ser', 'pass ambiguous_path'],
    ['/%41BC', 'pass ambiguous_path'],
    ['//user', 'pass ambiguous_path'],
    ['/repos//x', 'pass ambiguous_path'],
    ['/repos/../admin', 'pass ambiguous_path'],
    ['/repos/%2e%2e/admin', 'pass ambiguous_path'],
    ['/repos/x/../../admin', 'pass ambiguous_path'],
    ['/admin/../repos/x', 'pass ambiguous_path'],
    ['//repos/x', 'pass ambiguous_path'],
    // a percent-encoded character that is not unreserved stays as sent: still normal
    ['/repos/a%20b', 'inject paths'],
    // LangSmith's prefix form: "/repos/*" is every path starting with the string "/repos"
    ['/repos/a/b/pulls', 'inject paths'],
    ['/repos/', 'inject paths'],
    ['/repos', 'inject paths'],
    ['/reposx', 'inject paths'],
    ['/repo', 'pass no_match'],
    // the glob extension: "?" matches exactly one character
    ['/v1/items', 'inject paths'],
    ['/v2/items', 'inject paths'],
    ['/v/items', 'pass no_match'],
    ['/v10/items', 'pass no_match'],
    ['/v//items', 'pass ambiguous_path'],
    // "/user" matches only "/user"
    ['/user', 'inject paths'],
    ['/user/', 'pass no_match'],
    ['/user/repos', 'pass no_match'],
    ['/users', 'pass no_match'],
    ['/USER', 'pass no_match'],
    // everything else literally
    ['/v1.0/models', 'inject paths'],
    ['/v1x0/models', 'pass no_match'],
    ['/a+b/c', 'inject paths'],
    ['/aab/c', 'pass no_match'],
    ['/x[12]/c', 'inject paths'],
    ['/x1/c', 'pass no_match'],
    ['/i{2}/c', 'inject paths'],
    ['/ii/c', 'pass no_match'],
    ['/exact.json', 'inject paths'],
    ['/exactxjson', 'pass no_match'],
    ['/ABC', 'inject paths'],
    ['/abc', 'pass no_match'],
    // an empty path is "/"
    ['', 'pass no_match'],
  ])('paths.example.com%s -> %s', (path, expected) => check(POLICY, 'paths.example.com', path, expected));

  it.each([
    '/repos/a%2Fb',
    '/repos/a%2fb',
    '/repos/a%5Cb',
    '/repos/a%5cb',
    '/repos/a\\b',
    '/user;jsessionid=1',
    '/repos/x;v=1/y',
    '/repos/%3B',
    '/repos/%zz',
    '/repos/%',
    '/repos/%2',
    '/repos/%%41',
    'repos/x',
    '*',
  ])('ambiguous path %j gets no credential', (path) => {
    for (const authority of ['paths.example.com', 'api.openai.com', 'cb.example.com']) {
      const d = run(POLICY, authority, path);
      expect(summary(d), `${authority} ${path}`).toBe('pass ambiguous_path');
    }
  });

  it('keeps encoded reserved characters encoded, so they never match a literal', () => {
    check(POLICY, 'paths.example.com', '/x%5B12%5D/c', 'pass no_match');
    check(POLICY, 'paths.example.com', '/user%3Fx', 'pass no_match');
  });
});

describe('step 5: no_proxy', () => {
  it.each([
    ['localhost', 'http'],
    ['LOCALHOST:3000', 'http'],
    ['127.0.0.1', 'https'],
    ['127.0.0.1:8080', 'http'],
    ['[::1]:8443', 'https'],
    ['a.internal.example.com', 'https'],
    ['api.internal.example.com', 'https'],
    ['api.internal.example.com', 'http'],
  ])('%s (%s) is never intercepted', (authority, scheme) => {
    check(POLICY, authority, '/', 'pass no_proxy', scheme);
  });

  it('a wildcard entry does not cover the bare domain', () => {
    check(POLICY, 'internal.example.com', '/', 'pass no_match');
  });
});

describe('step 6: access_control', () => {
  const rule = (host: string) => `  - name: ${host}\n    match_hosts: ["${host}"]\n${header('OAI')}`;
  const allow = policyFrom(
    `rules:\n${rule('api.openai.com')}${rule('github.com')}access_control:\n  allow_list: ["*.github.com", "api.openai.com"]\nno_proxy: ["localhost"]\n`,
    SECRETS,
  );
  const deny = policyFrom(
    `rules:\n${rule('api.openai.com')}${rule('evil.example.com')}access_control:\n  deny_list: ["evil.example.com", "*.tracker.example"]\n`,
    SECRETS,
  );

  it.each([
    ['api.openai.com', 'inject api.openai.com'],
    ['a.github.com', 'pass no_match'],
    ['github.com', 'refuse 403 access_denied'],
    ['example.net', 'refuse 403 access_denied'],
    ['localhost', 'pass no_proxy'],
    ['user@api.openai.com', 'refuse 403 access_denied'],
    ['bad_name.example.net', 'refuse 403 access_denied'],
  ])('allow_list: %s -> %s', (authority, expected) => check(allow, authority, '/', expected));

  it.each([
    ['evil.example.com', 'refuse 403 access_denied'],
    ['EVIL.example.com.:8443', 'refuse 403 access_denied'],
    ['x.tracker.example', 'refuse 403 access_denied'],
    ['tracker.example', 'pass no_match'],
    ['api.openai.com', 'inject api.openai.com'],
  ])('deny_list: %s -> %s', (authority, expected) => check(deny, authority, '/', expected));

  it('a refused request carries no credential, whatever the scheme', () => {
    for (const scheme of ['https', 'http'])
      expect(run(deny, 'evil.example.com', '/', scheme)).not.toHaveProperty('rule');
  });
});

describe('steps 7 to 9: rules, then callbacks, then pass', () => {
  it.each([
    ['api.github.com', '/repos/o/r', 'inject github-api'],
    ['api.github.com', '/user', 'inject github-api'],
    ['api.github.com', '/user/repos', 'inject github-wildcard'],
    ['cb.example.com', '/special', 'inject cb-rule'],
    ['cb.example.com', '/special/x', 'callback first'],
    ['cb.example.com', '/', 'callback first'],
    ['x.cb.example.com', '/special', 'callback first'],
    ['example.net', '/', 'pass no_match'],
  ])('%s%s -> %s', (authority, path, expected) => check(POLICY, authority, path, expected));

  it('disabled rules are skipped and keep their position number', () => {
    const d = run(POLICY, 'api.github.com', '/repos/o/r');
    if (d.outcome !== 'inject') throw new Error(summary(d));
    expect(d.rule.position).toBe(1);
    expect(d.rule.headers).toEqual([{ name: 'Authorization', value: 'Bearer ghp_FAKEcanary', sensitive: true }]);
    expect(POLICY.rules.map((r) => r.name)).not.toContain('github-disabled');
  });

  it('the first rule wins even when a later rule has the exact host', () => {
    const p = policyFrom(
      `rules:\n  - name: wild\n    match_hosts: ["*.example.com"]\n${header('X')}  - name: exact\n    match_hosts: ["api.example.com"]\n${header('X')}`,
      SECRETS,
    );
    check(p, 'api.example.com', '/', 'inject wild');
  });
});

describe('step 10: no credentials over cleartext', () => {
  it.each([
    ['api.openai.com', '/v1/models', 80],
    ['api.openai.com:8080', '/v1/models', 8080],
    ['api.github.com', '/not-a-rule-path', 80],
    ['cb.example.com', '/', 80],
    ['paths.example.com', '/repos/a%2Fb', 80],
  ])('http://%s%s is refused with 403', (authority, path, port) => {
    const d = run(POLICY, authority, path, 'http');
    expect(summary(d)).toBe('refuse 403 cleartext');
    expect(d.target).toEqual({ host: authority.split(':')[0], port });
  });

  it('plain http to an unrelated host passes untouched, default port 80', () => {
    const d = run(POLICY, 'example.net', '/', 'http');
    expect(summary(d)).toBe('pass no_match');
    expect(d.target).toEqual({ host: 'example.net', port: 80 });
  });

  it('https defaults to port 443', () => {
    expect(run(POLICY, 'example.net').target).toEqual({ host: 'example.net', port: 443 });
  });
});
