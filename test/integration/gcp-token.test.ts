/**
 * authproxy's token endpoint client (google-auth-library's JWT bearer grant) against a loopback fake
 * Google token endpoint over real TLS: the fake verifies the assertion against the public half of a key
 * generated here and checks iss, aud (= the key's token_uri) and scope. Every failure (status, redirect,
 * malformed answer, timeout, private destination) is a GcpTokenFailure with one call and no retry, and no
 * message ever holds the key, the assertion or a token.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  GcpTokenFailure,
  googleTokenMinter,
  parseTokenAnswer,
  type TokenMinter,
} from '../../src/cloud/gcp/token-minter.js';
import { parseGcpTokenUriAllow } from '../../src/cloud/gcp/setup.js';
import { EgressGuard } from '../../src/egress/guard.js';
import type { CompiledGcpRule } from '../../src/policy/compiled.js';
import { makeServiceAccount, startGcpFake, type GcpFake, type ServiceAccount } from '../helpers/gcp-fake.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { compilePolicy } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';

const SCOPES = [
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/devstorage.read_write',
];

describe('google token minter against a fake token endpoint', () => {
  let dir: TempDir;
  let fake: GcpFake;
  let account: ServiceAccount;
  let rule: CompiledGcpRule;
  let minter: TokenMinter;

  const failure = async (p: Promise<unknown>): Promise<GcpTokenFailure> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GcpTokenFailure);
    const message = (err as Error).message;
    for (const secret of [account.privateKey.split('\n')[1]!, 'PRIVATE KEY', 'ya29.', 'eyJ'])
      expect(message).not.toContain(secret);
    return err as GcpTokenFailure;
  };

  beforeAll(async () => {
    dir = tempDir('authproxy-gcp-');
    fake = await startGcpFake(dir.path);
    account = makeServiceAccount(fake.url);
    fake.accept(account, SCOPES);
    const yaml = `rules:\n  - name: gcp\n    type: gcp\n    gcp:\n      service_account_json: { type: workspace_secret, value: "{SA}" }\n      scopes: ${JSON.stringify(SCOPES)}\n`;
    rule = compilePolicy(parseConfigText(yaml, 'T'), {
      secrets: new Map([['SA', account.json]]),
      unsealer: undefined,
      gcpTokenUriAllow: parseGcpTokenUriAllow(new URL(fake.url).origin),
    }).gcp!;
    // The fake's name resolves only here; the test CA is trusted only by this agent.
    minter = googleTokenMinter({ timeoutMs: 1500, agent: fake.agent() });
  });
  afterAll(async () => {
    await fake?.close();
    dir?.cleanup();
  });
  beforeEach(() => {
    fake.mode = 'ok';
    fake.expiresIn = 3600;
  });

  it('mints a token with a JWT assertion the fake verifies: iss, aud = token_uri, scope, RS256', async () => {
    const before = fake.calls.length;
    const token = await minter.mint(rule);
    const [call, ...more] = fake.calls.slice(before);
    expect(more).toEqual([]);
    expect(call).toMatchObject({ ok: true, token: token.accessToken });
    expect(call!.claims).toMatchObject({ iss: account.clientEmail, aud: fake.url, scope: SCOPES.join(' ') });
    expect(token.expiresInSeconds).toBe(3600);
  });

  it('a key the endpoint does not know is refused: 400 invalid_grant, one call', async () => {
    const other = makeServiceAccount(fake.url, 'stranger@authproxy-test.iam.gserviceaccount.com');
    const before = fake.calls.length;
    const err = await failure(minter.mint({ ...rule, clientEmail: other.clientEmail, privateKey: other.privateKey }));
    expect(err.reason).toBe('status');
    expect(err.message).toBe('Google Cloud token minting failed: the token endpoint answered 400 (invalid_grant)');
    expect(fake.calls.length - before).toBe(1);
  });

  it.each([
    ['error_400', 'status', 'the token endpoint answered 400 (invalid_grant)'],
    ['error_503', 'status', 'the token endpoint answered 503 (backend_error)'],
    ['malformed', 'malformed', 'the token endpoint did not answer a JSON object'],
    ['redirect', 'redirect', 'the token endpoint answered 302'],
    ['huge', 'too_large', 'the token endpoint answered more than 65536 bytes'],
  ] as const)('%s: fails closed with one call and no retry', async (mode, reason, detail) => {
    fake.mode = mode;
    const before = fake.calls.length;
    const err = await failure(minter.mint(rule));
    expect([err.reason, err.message]).toEqual([reason, `Google Cloud token minting failed: ${detail}`]);
    expect(fake.calls.length - before).toBe(1);
  });

  it('an endpoint that never answers is a timeout', async () => {
    fake.mode = 'hang';
    const started = Date.now();
    const err = await failure(minter.mint(rule));
    expect(err.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('through the egress guard: a token_uri that resolves to loopback is refused before any connection', async () => {
    const guard = new EgressGuard({ resolve: async () => ['127.0.0.1'] });
    const before = fake.calls.length;
    const err = await failure(googleTokenMinter({ timeoutMs: 1500, egress: guard }).mint(rule));
    expect(err.reason).toBe('private_destination');
    expect(err.message).toMatch(/^Google Cloud token minting failed: the token endpoint host /);
    expect(fake.calls.length).toBe(before);
    const literal = await failure(
      googleTokenMinter({ timeoutMs: 1500, egress: guard }).mint({ ...rule, tokenUri: 'https://127.0.0.1:1/token' }),
    );
    expect(literal.reason).toBe('private_destination');
  });

  it('parseTokenAnswer: what a 2xx answer must hold', () => {
    expect(parseTokenAnswer({ access_token: 'ya29.a', expires_in: 3599, token_type: 'Bearer' })).toEqual({
      accessToken: 'ya29.a',
      expiresInSeconds: 3599,
    });
    expect(parseTokenAnswer({ access_token: 'ya29.a', expires_in: '60' })).toEqual({
      accessToken: 'ya29.a',
      expiresInSeconds: 60,
    });
    for (const bad of [
      'text',
      null,
      [],
      {},
      { access_token: 'a b', expires_in: 1 },
      { access_token: 'a\r\nx', expires_in: 1 },
      { access_token: 'a', expires_in: 0 },
      { access_token: 'a' },
      { access_token: 'a', expires_in: 5, token_type: 'mac' },
      { access_token: 'x'.repeat(8001), expires_in: 5 },
    ]) {
      expect(() => parseTokenAnswer(bad), JSON.stringify(bad)?.slice(0, 40)).toThrow(GcpTokenFailure);
    }
  });

  it('--gcp-token-uri-allow: https URLs or origins only', () => {
    expect(parseGcpTokenUriAllow(' https://a.test/token , https://b.test:8443,')).toEqual([
      'https://a.test/token',
      'https://b.test:8443',
    ]);
    expect(parseGcpTokenUriAllow('')).toEqual([]);
    expect(() => parseGcpTokenUriAllow('http://a.test/token')).toThrow(
      '--gcp-token-uri-allow: "http://a.test/token" is not an https:// URL (token endpoints are only called over https)',
    );
    expect(() => parseGcpTokenUriAllow('a.test')).toThrow('is not an https:// URL');
    expect(() => parseGcpTokenUriAllow('https://u:p@a.test')).toThrow(
      '--gcp-token-uri-allow: "https://u:p@a.test" must not have credentials, a query or a fragment',
    );
    expect(() => parseGcpTokenUriAllow('https://a.test/t?x=1')).toThrow(
      'must not have credentials, a query or a fragment',
    );
  });
});
