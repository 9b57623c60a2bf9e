/**
 * AWS role sessions: AssumeRole with ExternalId = the sandbox's tenant and the session tags, cached until
 * 5 minutes before STS's expiry (then assumed again), failures fail closed and are never cached; in
 * shared mode three replicas behind one real Redis make one AssumeRole per key, and Redis holds the
 * session only sealed.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCredentialCache } from '../../src/callbacks/cache.js';
import { TemporaryCredentials, RENEW_BEFORE_EXPIRY_MS } from '../../src/cloud/shared/temporary-credentials.js';
import {
  AwsRoleCredentials,
  AwsRoleFailure,
  roleSessionName,
  type AssumeRoleParams,
  type RoleAssumer,
} from '../../src/cloud/aws/role-credentials.js';
import { AwsSigner } from '../../src/cloud/aws/handler.js';
import { awsEndpoint } from '../../src/policy/provider-hosts.js';
import { createLogger } from '../../src/log.js';
import { startFleet, startRedis, type RedisServer } from '../helpers/redis.js';

const ROLE = 'arn:aws:iam::123456789012:role/sandbox';
const TAGS = { team: 'agents', env: 'test' };
const SESSION_SECRET = 'session/secret/never/in/redis/or/logs0000';

/** A stand-in STS: records calls, answers sessions expiring `lifetimeMs` from now (by `clock`), or fails. */
function fakeSts(clock: () => number, lifetimeMs = 3600_000, delayMs = 0) {
  const calls: AssumeRoleParams[] = [];
  const state = { fail: false };
  const sts: RoleAssumer = {
    async assume(p) {
      calls.push(p);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      if (state.fail) throw new AwsRoleFailure('status', 'STS refused AssumeRole (AccessDenied, HTTP 403)');
      return {
        accessKeyId: `ASIAFAKE${calls.length}`,
        secretAccessKey: SESSION_SECRET,
        sessionToken: `token-${calls.length}`,
        expiresAt: clock() + lifetimeMs,
      };
    },
  };
  return { sts, calls, state };
}

const tenants = { identityFor: (id: string) => ({ tenantId: id === 'sb-2' ? 'globex' : 'acme' }) };

describe('AWS role sessions in memory (sidecar mode)', () => {
  it('assumes with ExternalId = tenant and the tags, caches until 5 minutes before expiry, then renews', async () => {
    let now = 1_000_000;
    const { sts, calls } = fakeSts(() => now);
    const roles = new AwsRoleCredentials(
      new TemporaryCredentials(new MemoryCredentialCache(100, () => now)),
      sts,
      tenants,
    );
    const first = await roles.get(ROLE, TAGS, 'sb-1');
    expect(first).toEqual({ accessKeyId: 'ASIAFAKE1', secretAccessKey: SESSION_SECRET, sessionToken: 'token-1' });
    expect(calls).toEqual([{ roleArn: ROLE, sessionName: 'authproxy-sb-1', externalId: 'acme', sessionTags: TAGS }]);
    expect(roles.get(ROLE, TAGS, 'sb-1')).toEqual(first); // a warm hit answers synchronously
    await roles.get(ROLE, TAGS, 'sb-2');
    expect(calls[1]!.externalId).toBe('globex');
    now += 3600_000 - RENEW_BEFORE_EXPIRY_MS - 1;
    expect(roles.get(ROLE, TAGS, 'sb-1')).toEqual(first);
    now += 1;
    expect(await roles.get(ROLE, TAGS, 'sb-1')).toMatchObject({ accessKeyId: 'ASIAFAKE3' });
    expect(calls).toHaveLength(3);
  });

  it('session names keep only what STS allows', () => {
    expect(roleSessionName('tenant:sb.1')).toBe('authproxy-tenant_sb.1');
    expect(roleSessionName('x'.repeat(128))).toHaveLength(64);
  });

  it('a denial is 502 naming AWS role auth, never cached, never a fallback', async () => {
    const { sts, calls, state } = fakeSts(Date.now);
    state.fail = true;
    const signer = new AwsSigner({
      log: createLogger('silent'),
      roles: new AwsRoleCredentials(new TemporaryCredentials(new MemoryCredentialCache()), sts, tenants),
    });
    const host = 'sts.us-east-1.amazonaws.com';
    const decision = {
      outcome: 'aws',
      rule: { name: 'aws', position: 0, hosts: undefined, auth: { kind: 'role', roleArn: ROLE, sessionTags: {} } },
      endpoint: awsEndpoint(host)!,
      target: { host, port: 443 },
    } as const;
    const extras = {
      endOfStream: true,
      headers: () => ({
        authorization: [
          `AWS4-HMAC-SHA256 Credential=AKIAAUTHPROXYEXAMPLE/20250101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`,
        ],
      }),
    };
    const req = { method: 'GET', scheme: 'https', authority: host, path: '/' };
    for (let i = 0; i < 2; i++) {
      expect(await signer.handle(decision, req, extras, 'sb-1')).toEqual({
        kind: 'immediate',
        status: 502,
        body: 'AWS role auth failed: STS refused AssumeRole (AccessDenied, HTTP 403)',
      });
    }
    expect(calls).toHaveLength(2);
    state.fail = false;
    expect(await signer.handle(decision, req, extras, 'sb-1')).toMatchObject({ kind: 'continue' });
  });
});

describe('AWS role sessions shared through Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await redis?.close();
  });

  it('three replicas, 30 concurrent lookups: one AssumeRole; Redis holds the session sealed', async () => {
    const fleet = await startFleet({ url: redis.url, prefix: 'awsroles:' });
    try {
      const { sts, calls } = fakeSts(Date.now, 3600_000, 100);
      const replicas = fleet.replicas.map(
        (r) => new AwsRoleCredentials(new TemporaryCredentials(r.cache), sts, tenants),
      );
      const all = await Promise.all(Array.from({ length: 30 }, (_, i) => replicas[i % 3]!.get(ROLE, TAGS, 'sb-1')));
      expect(calls).toHaveLength(1);
      expect(new Set(all.map((c) => c.accessKeyId))).toEqual(new Set(['ASIAFAKE1']));
      const client = new Redis(redis.url);
      try {
        const keys = await client.keys('awsroles:*');
        expect(keys.some((k) => k.endsWith(':v'))).toBe(true);
        for (const k of keys.filter((key) => key.endsWith(':v'))) {
          const value = await client.get(k);
          expect(value).not.toContain(SESSION_SECRET);
          expect(Buffer.from(value!, 'base64url').toString('latin1')).not.toContain(SESSION_SECRET);
          const pttl = await client.pttl(k);
          expect(pttl).toBeGreaterThan(3600_000 - RENEW_BEFORE_EXPIRY_MS - 10_000);
          expect(pttl).toBeLessThanOrEqual(3600_000 - RENEW_BEFORE_EXPIRY_MS);
        }
        expect(keys.join(' ')).not.toContain('sb-1');
      } finally {
        client.disconnect();
      }
      for (const r of fleet.replicas) expect(r.logs()).not.toContain(SESSION_SECRET);
    } finally {
      await fleet.close();
    }
  }, 30_000);
});
