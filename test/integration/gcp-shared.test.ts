/**
 * Google Cloud tokens in shared-service mode: three replicas (each its own shared cache) behind one real
 * redis-server and the real google-auth-library minter against the fake token endpoint. Thirty concurrent
 * requests make one mint for the fleet; Redis holds the token only sealed, under a name that reveals no
 * key, and it expires there 5 minutes before the token does; a failed mint is one call, shared by every
 * waiter as a 502, and nothing is cached.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpTokenHandler, type GcpDecision } from '../../src/cloud/gcp/handler.js';
import { googleTokenMinter } from '../../src/cloud/gcp/token-minter.js';
import { RENEW_BEFORE_EXPIRY_MS, TemporaryCredentials } from '../../src/cloud/shared/temporary-credentials.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { decide } from '../../src/policy/decide.js';
import type { Outcome } from '../../src/engine/engine.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { makeServiceAccount, startGcpFake, type GcpFake } from '../helpers/gcp-fake.js';
import { captureLogs } from '../helpers/logs.js';
import { startFleet, startRedis, type RedisServer } from '../helpers/redis.js';

const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

describe('Google Cloud tokens shared by replicas through Redis', () => {
  let dir: TempDir;
  let fake: GcpFake;
  let redis: RedisServer;

  beforeAll(async () => {
    dir = tempDir('authproxy-gcp-shared-');
    fake = await startGcpFake(dir.path);
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
    await fake?.close();
    dir?.cleanup();
  });

  /** A decision for storage.googleapis.com under a gcp rule with a fresh key pointing at the fake. */
  function decisionWithNewKey(): { decision: GcpDecision; email: string } {
    const account = makeServiceAccount(
      fake.url,
      `agent-${Math.random().toString(36).slice(2, 8)}@authproxy-test.iam.gserviceaccount.com`,
    );
    fake.accept(account, SCOPES);
    const config = validateConfig(
      {
        rules: [
          {
            name: 'gcp',
            type: 'gcp',
            gcp: { service_account_json: { type: 'workspace_secret', value: '{SA}' }, scopes: SCOPES },
          },
        ],
      },
      'T',
    );
    const policy = compilePolicy(config, {
      secrets: new Map([['SA', account.json]]),
      unsealer: undefined,
      gcpTokenUriAllow: [new URL(fake.url).origin],
    });
    return {
      decision: decide(policy, {
        method: 'GET',
        scheme: 'https',
        authority: 'storage.googleapis.com',
        path: '/',
      }) as GcpDecision,
      email: account.clientEmail,
    };
  }

  async function withFleet(run: (handlers: GcpTokenHandler[], logs: () => string) => Promise<void>): Promise<void> {
    const fleet = await startFleet({ url: redis.url, prefix: 'gcp:' });
    const logs = captureLogs();
    try {
      const minter = googleTokenMinter({ timeoutMs: 3000, agent: fake.agent() });
      await run(
        fleet.replicas.map((r) => new GcpTokenHandler(new TemporaryCredentials(r.cache), minter, { log: logs.log })),
        () => logs.text() + fleet.replicas.map((r) => r.logs()).join(''),
      );
    } finally {
      await fleet.close();
    }
  }

  const ask = (handlers: GcpTokenHandler[], decision: GcpDecision, n: number): Promise<Outcome[]> =>
    Promise.all(
      Array.from({ length: n }, async (_, i) =>
        handlers[i % handlers.length]!.handle(
          decision,
          { method: 'GET', scheme: 'https', authority: 'storage.googleapis.com', path: '/' },
          undefined,
          `sb-${i % 5}`,
        ),
      ),
    );

  it('30 concurrent requests on 3 replicas: one mint; Redis holds it sealed, expiring 5 minutes early', async () => {
    await withFleet(async (handlers, logs) => {
      const { decision, email } = decisionWithNewKey();
      const before = fake.calls.length;
      const out = await ask(handlers, decision, 30);
      const calls = fake.calls.slice(before);
      expect(calls.map((c) => c.ok)).toEqual([true]);
      const token = calls[0]!.token!;
      expect(new Set(out.map((o) => JSON.stringify(o)))).toEqual(
        new Set([
          JSON.stringify({
            kind: 'continue',
            set: [['authorization', `Bearer ${token}`]],
            remove: ['proxy-authorization'],
          }),
        ]),
      );
      const client = new Redis(redis.url);
      try {
        const keys = await client.keys('gcp:*');
        const values = keys.filter((k) => k.endsWith(':v'));
        expect(values).toHaveLength(1);
        const sealed = (await client.get(values[0]!))!;
        expect(sealed).not.toContain(token);
        expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain(token);
        const pttl = await client.pttl(values[0]!);
        expect(pttl).toBeGreaterThan(3600_000 - RENEW_BEFORE_EXPIRY_MS - 15_000);
        expect(pttl).toBeLessThanOrEqual(3600_000 - RENEW_BEFORE_EXPIRY_MS);
        expect(keys.join(' ')).not.toContain(decision.rule.id);
        expect(keys.join(' ')).not.toContain(email);
      } finally {
        client.disconnect();
      }
      expect(logs()).not.toContain(token);
    });
  }, 30_000);

  it('a failed mint is one call for the fleet; every waiter gets 502 and the next request tries again', async () => {
    await withFleet(async (handlers) => {
      const { decision } = decisionWithNewKey();
      fake.mode = 'error_400';
      const before = fake.calls.length;
      try {
        const out = await ask(handlers, decision, 30);
        expect(fake.calls.length - before).toBe(1);
        for (const o of out)
          expect(o).toMatchObject({
            kind: 'immediate',
            status: 502,
            body: expect.stringMatching(/^Google Cloud token minting failed: /),
          });
        expect(out.map((o) => (o as { body: string }).body)).toContain(
          'Google Cloud token minting failed: the token endpoint answered 400 (invalid_grant)',
        );
      } finally {
        fake.mode = 'ok';
      }
      const [again] = await ask(handlers, decision, 1);
      expect(again).toMatchObject({ kind: 'continue' });
      expect(fake.calls.length - before).toBe(2);
    });
  }, 30_000);
});
