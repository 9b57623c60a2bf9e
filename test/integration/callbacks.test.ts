import { createHash } from 'node:crypto';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryCredentialCache } from '../../src/callbacks/cache.js';
import { CallbackFailure, DEFAULT_CALLBACK_LIMITS } from '../../src/callbacks/client.js';
import { CallbackResolver } from '../../src/callbacks/resolver.js';
import { CallbackSigner, SIGNATURE_HEADER } from '../../src/callbacks/signer.js';
import type { SandboxIdentity } from '../../src/contracts/identity.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';

const CANARY = 'canary-callback-41b2';
const target = { host: 'api.example.com', port: 443 };

describe('callbacks against a real HTTP endpoint', () => {
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let signer: CallbackSigner;
  let now = 1_000_000;
  let cache: MemoryCredentialCache;
  let resolver: CallbackResolver;
  const callback = (path = '/resolve', ttlSeconds = 60): CompiledCallback => ({
    id: `cb${path}`,
    position: 0,
    url: `${server.base}${path}`,
    ttlSeconds,
    fullRequest: false,
    requestHeaders: [
      { name: 'X-Callback-Key', value: `key-${CANARY}`, sensitive: true },
      { name: 'X-Team', value: 'blue', sensitive: false },
    ],
  });
  const resolve = async (cb: CompiledCallback, sandbox = 'sb-1') => resolver.lookup(cb, target, sandbox);
  const failure = async (cb: CompiledCallback): Promise<CallbackFailure> => {
    try {
      await resolve(cb);
    } catch (err) {
      expect(err).toBeInstanceOf(CallbackFailure);
      expect(String((err as Error).message)).not.toContain(CANARY);
      return err as CallbackFailure;
    }
    throw new Error('expected the callback to fail');
  };

  beforeAll(async () => {
    server = await startCallbackServer(answer({ Authorization: `Bearer ${CANARY}` }));
    signer = await CallbackSigner.ephemeral();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.calls.length = 0;
    server.set(answer({ Authorization: `Bearer ${CANARY}` }));
    cache = new MemoryCredentialCache(100, () => now);
    resolver = new CallbackResolver(cache, signer, { ...DEFAULT_CALLBACK_LIMITS, timeoutMs: 300 });
  });

  it('POSTs the contract body with Content-Type, configured headers and a verifiable signature', async () => {
    const result = await resolve(callback());
    expect(result.headers).toEqual([['Authorization', `Bearer ${CANARY}`]]);
    const call = server.calls[0]!;
    expect(call.body).toBe(
      '{"host":"api.example.com","port":443,"identity":{"tenant_id":"default","sandbox_id":"sb-1"}}',
    );
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['x-callback-key']).toBe(`key-${CANARY}`);
    expect(call.headers['x-team']).toBe('blue');
    expect(call.headers['x-authproxy-signature']).toBeUndefined();
    const jwt = call.headers['x-langsmith-signature-jwt'] as string;
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(signer.jwks()), {
      audience: `${server.base}/resolve`,
      issuer: 'authproxy',
    });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: signer.kid });
    expect(signer.jwks().keys[0]!.kid).toBe(signer.kid);
    expect(payload.sub).toBe('langsmith-sandbox-callback');
    expect(payload.aud).toEqual([`${server.base}/resolve`]);
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.exp).toBe(payload.iat! + 300);
    expect(payload.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(payload.body_sha256).toBe(createHash('sha256').update(call.body).digest('hex'));
    expect(payload.body_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("sends each sandbox's identity as its source says at call time, organization_id only when set", async () => {
    const identities = new Map<string, SandboxIdentity>([
      ['sb-acme', { tenantId: 'acme', organizationId: 'org-1' }],
      ['sb-solo', { tenantId: 'solo' }],
    ]);
    resolver = new CallbackResolver(cache, signer, DEFAULT_CALLBACK_LIMITS, undefined, {
      identityFor: (id) => identities.get(id)!,
    });
    await resolve(callback(), 'sb-acme');
    await resolve(callback(), 'sb-solo');
    expect(server.calls.map((c) => JSON.parse(c.body).identity)).toEqual([
      { tenant_id: 'acme', sandbox_id: 'sb-acme', organization_id: 'org-1' },
      { tenant_id: 'solo', sandbox_id: 'sb-solo' },
    ]);
    expect(server.calls[1]!.body).toBe(
      '{"host":"api.example.com","port":443,"identity":{"tenant_id":"solo","sandbox_id":"sb-solo"}}',
    );
  });

  it('adds a request snapshot to the body of an uncached full-request call', async () => {
    const request = {
      method: 'POST',
      url: 'https://api.example.com/v1?x=1',
      scheme: 'https',
      host: 'api.example.com',
      path: '/v1',
      query: 'x=1',
      headers: { 'x-a': ['1'] },
      body_base64: 'aGk=',
      body_truncated: false,
    };
    expect(await resolver.callFull(callback(), target, 'sb-1', request)).toEqual([
      ['Authorization', `Bearer ${CANARY}`],
    ]);
    const call = server.calls[0]!;
    expect(JSON.parse(call.body)).toEqual({
      host: 'api.example.com',
      port: 443,
      identity: { tenant_id: 'default', sandbox_id: 'sb-1' },
      request,
    });
    const { payload } = await jwtVerify(
      call.headers['x-langsmith-signature-jwt'] as string,
      createLocalJWKSet(signer.jwks()),
    );
    expect(payload.body_sha256).toBe(createHash('sha256').update(call.body).digest('hex'));
    expect(cache.size).toBe(0);
  });

  it('signs with the configured issuer, trailing slashes removed', async () => {
    const issued = await CallbackSigner.ephemeral({ issuer: 'https://auth.example.com//' });
    expect(issued.issuer).toBe('https://auth.example.com');
    resolver = new CallbackResolver(cache, issued, DEFAULT_CALLBACK_LIMITS);
    await resolve(callback());
    const jwt = server.calls[0]!.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(issued.jwks()), { issuer: 'https://auth.example.com' });
    expect(payload.iss).toBe('https://auth.example.com');
  });

  it('a signature for one URL does not verify for another audience', async () => {
    await resolve(callback());
    const jwt = server.calls[0]!.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    await expect(
      jwtVerify(jwt, createLocalJWKSet(signer.jwks()), { audience: 'https://elsewhere.example/x' }),
    ).rejects.toThrow();
  });

  it('caches per (sandbox, callback, host, port) for ttl_seconds, then calls again', async () => {
    const cb = callback('/resolve', 120);
    await resolve(cb);
    expect(resolver.lookup(cb, target, 'sb-1')).not.toBeInstanceOf(Promise);
    expect(server.calls).toHaveLength(1);
    await resolve(cb, 'sb-2');
    await resolver.lookup(cb, { host: 'api.example.com', port: 8443 }, 'sb-1');
    expect(server.calls).toHaveLength(3);
    now += 119_000;
    await resolve(cb);
    expect(server.calls).toHaveLength(3);
    now += 2_000;
    await resolve(cb);
    expect(server.calls).toHaveLength(4);
  });

  it('makes one call for many concurrent misses of one key', async () => {
    server.set(answer({ Authorization: `Bearer ${CANARY}` }, 100));
    const results = await Promise.all(Array.from({ length: 50 }, () => resolve(callback())));
    expect(server.calls).toHaveLength(1);
    expect(new Set(results.map((r) => r.headers[0]![1]))).toEqual(new Set([`Bearer ${CANARY}`]));
  });

  const failures: Array<[string, Parameters<typeof server.set>[0], string]> = [
    ['non-2xx status', (_q, res) => res.writeHead(503).end('down'), 'status'],
    [
      'a redirect (never followed)',
      (_q, res) => res.writeHead(302, { location: `${'http://127.0.0.1:1'}/elsewhere` }).end(),
      'redirect',
    ],
    ['a timeout', () => undefined, 'timeout'],
    [
      'an oversized body',
      (_q, res) => res.writeHead(200).end(JSON.stringify({ headers: { A: 'x'.repeat(70_000) } })),
      'too_large',
    ],
    [
      'an oversized chunked body',
      (_q, res) => {
        res.writeHead(200);
        for (let i = 0; i < 70; i++) res.write('x'.repeat(1024));
        res.end();
      },
      'too_large',
    ],
    ['malformed JSON', (_q, res) => res.writeHead(200).end('{"headers": '), 'malformed'],
    ['headers not an object', (_q, res) => res.writeHead(200).end('{"headers": ["a"]}'), 'malformed'],
    ['a JSON array body', (_q, res) => res.writeHead(200).end('[]'), 'malformed'],
    ['an invalid header name', (_q, res) => res.writeHead(200).end('{"headers": {"Bad Name": "v"}}'), 'invalid_header'],
    ['a reserved header name', (_q, res) => res.writeHead(200).end('{"headers": {"Host": "v"}}'), 'invalid_header'],
    [
      'a header value with CRLF',
      (_q, res) => res.writeHead(200).end(JSON.stringify({ headers: { A: `x\r\nInjected: ${CANARY}` } })),
      'invalid_header',
    ],
    ['a non-string header value', (_q, res) => res.writeHead(200).end('{"headers": {"A": 1}}'), 'invalid_header'],
  ];
  for (const [what, behaviour, reason] of failures) {
    it(`fails closed on ${what}, caches nothing, and the next request calls again`, async () => {
      server.set(behaviour);
      expect((await failure(callback())).reason).toBe(reason);
      expect(cache.size).toBe(0);
      server.set(answer({ Authorization: `Bearer ${CANARY}` }));
      const before = server.calls.length;
      expect((await resolve(callback())).headers).toEqual([['Authorization', `Bearer ${CANARY}`]]);
      expect(server.calls.length).toBe(before + 1);
    });
  }

  it('fails closed on a transport error (nothing listening)', async () => {
    const cb = { ...callback(), url: 'http://127.0.0.1:1/resolve' };
    expect((await failure(cb)).reason).toBe('transport');
  });

  it('never follows a redirect to its target', async () => {
    let followed = false;
    server.set((req, res) => {
      if (req.url === '/target') {
        followed = true;
        answer({ A: 'b' })(req, res, '');
      } else res.writeHead(307, { location: `${server.base}/target` }).end();
    });
    expect((await failure(callback())).reason).toBe('redirect');
    expect(followed).toBe(false);
  });

  it('shares one failure among concurrent waiters', async () => {
    server.set((_q, res) => setTimeout(() => res.writeHead(500).end(), 100));
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => resolve(callback())));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(server.calls).toHaveLength(1);
  });
});
