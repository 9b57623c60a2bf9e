/**
 * `match_headers` (langsmith 0.12.0, ProxyConfig.Rule.match_headers) and `match_hosts` on provider rules:
 * the decision tables. A rule with match_headers matches only requests carrying every listed header with
 * exactly that value; paired with a header of the same name it swaps the sandbox's placeholder for a real
 * credential; a request whose placeholder matches no rule falls through like any non-match.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decide, type HeaderLookup, type PolicyRequest } from '../../src/policy/decide.js';
import { policyFrom } from './support.js';

const SECRETS = new Map([
  ['A', 'FAKE-account-a-canary'],
  ['B', 'FAKE-account-b-canary'],
  ['DEF', 'FAKE-default-canary'],
]);

const POLICY = policyFrom(
  `rules:
  - name: account-a
    match_hosts: ["api.example.com"]
    match_headers: ["authorization: Bearer account-a"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {A}" }]
  - name: account-b
    match_hosts: ["api.example.com"]
    match_paths: ["/v1/*"]
    match_headers: ["authorization: Bearer account-b", "x-org:  acme"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {B}" }]
  - name: default
    match_hosts: ["api.example.com"]
    match_paths: ["/public/*"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {DEF}" }]
callbacks:
  - match_hosts: ["api.example.com"]
    url: "https://tokens.internal.example/resolve"
    ttl_seconds: 300
`,
  SECRETS,
);

/** Headers as the sandbox sent them; a name listed twice is sent twice. */
function lookup(pairs: Array<[string, string]>): HeaderLookup {
  return {
    lookup(name) {
      const values = pairs.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
      return values.length === 0 ? null : values.length === 1 ? values[0] : undefined;
    },
  };
}

function outcome(path: string, pairs: Array<[string, string]> | undefined): string {
  const req: PolicyRequest = {
    method: 'GET',
    scheme: 'https',
    authority: 'api.example.com',
    path,
    ...(pairs ? { headers: lookup(pairs) } : {}),
  };
  const d = decide(POLICY, req);
  if (d.outcome === 'inject') return `inject ${d.rule.name}`;
  return d.outcome === 'pass' ? `pass ${d.reason}` : d.outcome;
}

describe('match_headers decisions', () => {
  it.each([
    ['/v1/x', [['Authorization', 'Bearer account-a']], 'inject account-a'],
    ['/anything', [['authorization', 'Bearer account-a']], 'inject account-a'],
    [
      '/v1/x',
      [
        ['authorization', 'Bearer account-b'],
        ['x-org', 'acme'],
      ],
      'inject account-b',
    ],
    // every listed header must be there
    ['/v1/x', [['authorization', 'Bearer account-b']], 'callback'],
    // ... on a path the rule matches
    [
      '/v2/x',
      [
        ['authorization', 'Bearer account-b'],
        ['x-org', 'acme'],
      ],
      'callback',
    ],
    // exact, case-sensitive values
    ['/v1/x', [['authorization', 'bearer account-a']], 'callback'],
    ['/v1/x', [['authorization', 'Bearer account-a ']], 'callback'],
    ['/v1/x', [['authorization', 'Bearer account-A']], 'callback'],
    [
      '/v1/x',
      [
        ['authorization', 'Bearer account-b'],
        ['x-org', 'ACME'],
      ],
      'callback',
    ],
    // a header sent twice is ambiguous: it never matches
    [
      '/v1/x',
      [
        ['authorization', 'Bearer account-a'],
        ['authorization', 'Bearer account-a'],
      ],
      'callback',
    ],
    [
      '/v1/x',
      [
        ['authorization', 'Bearer account-a'],
        ['authorization', 'Bearer account-b'],
      ],
      'callback',
    ],
    // an unknown placeholder falls through to later rules and the callback, like any non-match
    ['/public/x', [['authorization', 'Bearer account-c']], 'inject default'],
    ['/v1/x', [['authorization', 'Bearer account-c']], 'callback'],
    ['/public/x', [], 'inject default'],
  ] as Array<[string, Array<[string, string]>, string]>)('%s with %j -> %s', (path, pairs, expected) => {
    expect(outcome(path, pairs)).toBe(expected);
  });

  it('a request whose headers the caller could not give never matches a match_headers rule', () => {
    expect(outcome('/v1/x', undefined)).toBe('callback');
    expect(outcome('/public/x', undefined)).toBe('inject default');
  });

  it('the matched rule swaps the placeholder: its Authorization replaces the one the sandbox sent', () => {
    const d = decide(POLICY, {
      method: 'GET',
      scheme: 'https',
      authority: 'api.example.com',
      path: '/',
      headers: lookup([['authorization', 'Bearer account-a']]),
    });
    expect(d.outcome === 'inject' && d.rule.pairs).toEqual([['Authorization', 'Bearer FAKE-account-a-canary']]);
  });
});

describe('match_hosts on provider rules narrows their built-in hosts', () => {
  const SA = JSON.stringify({
    type: 'service_account',
    client_email: 'sa@p.iam.gserviceaccount.com',
    private_key: PEM(),
    token_uri: 'https://oauth2.googleapis.com/token',
  });
  const narrowed = policyFrom(
    `rules:
  - name: aws
    type: aws
    match_hosts: ["sts.amazonaws.com", "bucket.s3.us-east-1.amazonaws.com"]
    aws:
      access_key_id: { type: workspace_secret, value: "{KID}" }
      secret_access_key: { type: workspace_secret, value: "{KEY}" }
  - name: gcp
    type: gcp
    match_hosts: ["bigquery.googleapis.com"]
    gcp:
      service_account_json: { type: workspace_secret, value: "{SA}" }
`,
    new Map([
      ['KID', 'AKIAFAKEKEYID0000001'],
      ['KEY', 'FAKEsecret'],
      ['SA', SA],
    ]),
  );
  const run = (host: string) =>
    decide(narrowed, { method: 'GET', scheme: 'https', authority: host, path: '/' }).outcome;

  it.each([
    ['sts.amazonaws.com', 'aws'],
    ['bucket.s3.us-east-1.amazonaws.com', 'aws'],
    ['other.s3.us-east-1.amazonaws.com', 'pass'],
    ['s3.us-east-1.amazonaws.com', 'pass'],
    ['dynamodb.us-east-1.amazonaws.com', 'pass'],
    ['bigquery.googleapis.com', 'gcp'],
    ['storage.googleapis.com', 'pass'],
  ])('%s -> %s', (host, expected) => {
    expect(run(host)).toBe(expected);
  });

  it('gcp scopes default to cloud-platform, as langsmith documents', () => {
    expect(narrowed.gcp?.scopes).toEqual(['https://www.googleapis.com/auth/cloud-platform']);
  });
});

/** A throwaway RSA key in PEM, made once per run (never a real credential). */
function PEM(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

describe('a rewrite destination and access_control', () => {
  const policy = policyFrom(`rules:
  - name: moved
    type: rewrite
    match_hosts: ["api.old.example"]
    rewrite: { host: internal.corp.example, port: 443 }
  - name: allowed
    type: rewrite
    match_hosts: ["api.ok.example"]
    rewrite: { host: api.new.example, port: 443 }
access_control:
  allow_list: ["api.old.example", "api.ok.example", "api.new.example"]
`);
  const run = (host: string) => decide(policy, { method: 'GET', scheme: 'https', authority: host, path: '/' });

  it('a destination the allow_list does not name is refused (403), like a request to it', () => {
    expect(run('api.old.example')).toMatchObject({ outcome: 'refuse', status: 403, reason: 'access_denied' });
    expect(run('api.ok.example')).toMatchObject({ outcome: 'inject' });
  });
});
