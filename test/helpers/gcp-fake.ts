/**
 * A loopback fake of Google's OAuth2 token endpoint (https, with its own test CA) for the `type: gcp`
 * tests: it takes the JWT bearer grant as Google does (form POST, `grant_type` and `assertion`), verifies
 * the assertion's RS256 signature against the PUBLIC half of the service-account key the test generated,
 * checks `iss` = client_email, `aud` = the token_uri, `scope` = the expected scopes, `iat`/`exp`, and
 * answers `{access_token, expires_in, token_type}`. Every call is recorded; `mode` makes it fail.
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from './pki.js';

/** A service-account key file as Google issues them, and its public half. */
export interface ServiceAccount {
  readonly json: string;
  readonly clientEmail: string;
  readonly privateKey: string;
  readonly publicKey: KeyObject;
}

/** Builds a service-account key JSON with a fresh RSA key, pointing at `tokenUri`. */
export function makeServiceAccount(
  tokenUri: string,
  clientEmail = 'agent@authproxy-test.iam.gserviceaccount.com',
): ServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const json = JSON.stringify({
    type: 'service_account',
    project_id: 'authproxy-test',
    private_key_id: randomBytes(20).toString('hex'),
    private_key: pem,
    client_email: clientEmail,
    client_id: '100000000000000000001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
  });
  return { json, clientEmail, privateKey: pem, publicKey };
}

/** One call the fake received, with what it found. */
export interface TokenCall {
  readonly ok: boolean;
  /** Why it was refused, when it was. */
  readonly problem?: string;
  readonly claims?: Record<string, unknown>;
  /** The token it issued. */
  readonly token?: string;
  /** The raw request body (the sandbox's placeholder must never appear in it). */
  readonly raw: string;
}

/** How the next calls are answered. */
export type FakeMode = 'ok' | 'error_400' | 'error_503' | 'malformed' | 'redirect' | 'huge' | 'hang';

/** The running fake: its token_uri, its CA, the calls it got, and switches for how it answers next. */
export interface GcpFake {
  readonly url: string;
  readonly host: string;
  readonly pki: TestPki;
  readonly calls: TokenCall[];
  mode: FakeMode;
  /** `expires_in` of issued tokens (default 3600). */
  expiresIn: number;
  /** Registers a key the fake accepts assertions from, with the scopes it expects. */
  accept(account: ServiceAccount, scopes: readonly string[]): void;
  /** For in-process clients: an agent that trusts the fake's test CA and resolves every name to 127.0.0.1. */
  agent(): Agent;
  close(): Promise<void>;
}

interface Expectation {
  readonly publicKey: KeyObject;
  readonly scope: string;
}

function decodePart(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Checks one assertion; returns its claims, or why it is refused. */
function check(
  assertion: string,
  accepted: Map<string, Expectation>,
  aud: string,
): { claims?: Record<string, unknown>; problem?: string } {
  const parts = assertion.split('.');
  if (parts.length !== 3) return { problem: 'assertion is not a JWS' };
  const [h, p, sig] = parts as [string, string, string];
  const header = decodePart(h);
  const claims = decodePart(p);
  if (header.alg !== 'RS256') return { claims, problem: `alg ${String(header.alg)}` };
  const expected = accepted.get(String(claims.iss));
  if (!expected) return { claims, problem: 'unknown iss' };
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), expected.publicKey, Buffer.from(sig, 'base64url')))
    return { claims, problem: 'bad signature' };
  if (claims.aud !== aud) return { claims, problem: `aud ${String(claims.aud)}` };
  if (claims.scope !== expected.scope) return { claims, problem: `scope ${String(claims.scope)}` };
  const now = Date.now() / 1000;
  const { iat, exp } = claims as { iat?: number; exp?: number };
  if (typeof iat !== 'number' || typeof exp !== 'number' || iat > now + 60 || exp <= now || exp - iat > 3600)
    return { claims, problem: 'iat/exp' };
  return { claims };
}

/** Starts the fake on 127.0.0.1 as `https://<host>:<port>/token` (map `host` in the rig's DNS). */
export async function startGcpFake(dir: string, host = 'oauth2.gcp-fake.test'): Promise<GcpFake> {
  const pki = await makePki(dir, 'gcp-token', [host, 'localhost']);
  const leaf = pki.leaves.get(host)!;
  const accepted = new Map<string, Expectation>();
  let url = '';
  const fake: GcpFake = {
    get url() {
      return url;
    },
    host,
    pki,
    calls: [],
    mode: 'ok',
    expiresIn: 3600,
    accept: (account, scopes) =>
      void accepted.set(account.clientEmail, { publicKey: account.publicKey, scope: scopes.join(' ') }),
    agent: () =>
      new Agent({
        keepAlive: true,
        ca: pki.caPem,
        lookup: ((_h: string, o: { all?: boolean }, cb: (e: null, a: unknown, f?: number) => void) =>
          o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as never,
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server: Server = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const form = new URLSearchParams(raw);
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (fake.mode === 'hang') return;
      if (
        req.method !== 'POST' ||
        req.url !== '/token' ||
        form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer'
      ) {
        fake.calls.push({ ok: false, problem: 'not a JWT bearer grant', raw });
        return json(400, { error: 'unsupported_grant_type' });
      }
      const { claims, problem } = check(form.get('assertion') ?? '', accepted, url);
      if (problem) {
        fake.calls.push({ ok: false, problem, claims, raw });
        return json(400, { error: 'invalid_grant', error_description: problem });
      }
      const token = `ya29.fake-${randomBytes(12).toString('hex')}`;
      fake.calls.push({ ok: true, claims, token, raw });
      if (fake.mode === 'error_400')
        return json(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
      if (fake.mode === 'error_503') return json(503, { error: 'backend_error' });
      if (fake.mode === 'malformed')
        return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>oops</html>');
      if (fake.mode === 'huge')
        return json(200, { access_token: token, expires_in: 3600, padding: 'x'.repeat(100_000) });
      if (fake.mode === 'redirect') return res.writeHead(302, { location: 'https://accounts.google.com/' }).end();
      return json(200, { access_token: token, expires_in: fake.expiresIn, token_type: 'Bearer' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `https://${host}:${(server.address() as AddressInfo).port}/token`;
  return fake;
}
