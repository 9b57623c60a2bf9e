/**
 * Refresh-ahead of the shared cache with an injected clock (no real 60 s waits): a hit in the last 20 %
 * of an entry's life (the TTL, or the credential's own shorter expiry) answers at once with the current value and starts one background call for the whole fleet.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CachedCredential } from '../../src/callbacks/cache.js';
import { CallbackFailure } from '../../src/callbacks/client.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { eventually } from '../helpers/fs.js';
import { fleetMetric, startFleet, startRedis, type RedisServer, type Replica } from '../helpers/redis.js';

const target = { host: 'api.example.com', port: 443 };

describe('refresh ahead across replicas', () => {
  let redis: RedisServer;
  let raw: Redis;
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let fleet: Awaited<ReturnType<typeof startFleet>>;
  let replicas: Replica[];
  let now: number;
  const cb = (): CompiledCallback => ({
    id: 'cb-r',
    position: 0,
    url: server.url,
    ttlSeconds: 60,
    requestHeaders: [],
    fullRequest: false,
  });
  /** A lookup that must be answered synchronously, from memory. */
  const hit = (r: Replica) => {
    const found = r.resolver.lookup(cb(), target, 'sb-1');
    expect(found).not.toBeInstanceOf(Promise);
    return (found as CachedCredential).headers[0]![1];
  };
  const refreshes = (result: string) => fleetMetric(replicas, `authproxy_callback_refreshes_total{result="${result}"}`);

  beforeAll(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url).on('error', () => undefined); // it sees Redis stop in some tests
    server = await startCallbackServer(answer({ Authorization: 'Bearer v1' }));
  });
  afterAll(async () => {
    raw.disconnect();
    await server.close();
    await redis.close();
  });
  beforeEach(async () => {
    await raw.flushall();
    server.calls.length = 0;
    server.set(answer({ Authorization: 'Bearer v1' }));
    now = Date.now();
    fleet = await startFleet({ url: redis.url, clock: () => now, refreshRetryMs: 1000 });
    replicas = fleet.replicas;
    await Promise.all(replicas.map((r) => r.resolver.lookup(cb(), target, 'sb-1')));
    expect(server.calls).toHaveLength(1);
  });
  afterEach(() => fleet.close());

  it('does nothing before the last 20 % of the TTL', async () => {
    now += 47_000; // 13 s of 60 left
    for (let i = 0; i < 30; i++) expect(hit(replicas[i % 3]!)).toBe('Bearer v1');
    await new Promise((r) => setTimeout(r, 100));
    expect(server.calls).toHaveLength(1);
    expect(await refreshes('ok')).toBe(0);
  });

  it('an access in the last 20 % returns the old value and makes exactly one background call fleet-wide', async () => {
    server.set(answer({ Authorization: 'Bearer v2' }, 100));
    now += 50_000; // 10 s of 60 left
    for (let i = 0; i < 60; i++) expect(hit(replicas[i % 3]!)).toBe('Bearer v1');
    await eventually(async () => (await refreshes('ok')) === 1, 5000, 'the refresh');
    expect(server.calls).toHaveLength(2);

    // The other replicas pick the new value up from Redis on their next refresh check, without a call.
    now += 1_500;
    await eventually(() => replicas.every((r) => hit(r) === 'Bearer v2'), 5000, 'every replica on v2');
    expect(server.calls).toHaveLength(2);
    expect(await refreshes('adopted')).toBeGreaterThanOrEqual(1);

    // The new value lives a full TTL from its call; it expires at the same moment everywhere.
    const expiries = new Set(
      replicas.map((r) => (r.resolver.lookup(cb(), target, 'sb-1') as CachedCredential).expiresAt),
    );
    expect(expiries.size).toBe(1);
    expect([...expiries][0]).toBeGreaterThan(now + 50_000);
  });

  it('an entry that lives shorter than its TTL is refreshed near its own end, not on every hit', async () => {
    // A temporary cloud credential: 10 minutes of life under the 1-hour cap (the window of the TTL alone,
    // 12 minutes, would have refreshed it on every hit from the start).
    let mints = 0;
    const load = async () => ({
      headers: [['authorization', `Bearer t${++mints}`]] as [string, string][],
      expiresAt: now + 600_000,
    });
    const get = () => replicas[0]!.cache.get('cloud\nshort', 3600, load);
    await get();
    expect(mints).toBe(1);
    now += 470_000; // 130 s of 600 left: outside the last 20 % of its life
    for (let i = 0; i < 20; i++) expect(get()).not.toBeInstanceOf(Promise);
    await new Promise((r) => setTimeout(r, 100));
    expect(mints).toBe(1);
    now += 20_000; // 110 s left: inside, one refresh
    for (let i = 0; i < 20; i++) expect(get()).not.toBeInstanceOf(Promise);
    await eventually(() => mints === 2, 5000, 'the refresh');
    // The new entry starts a fresh life: hits right after it make no call.
    now += 1_500;
    for (let i = 0; i < 20; i++) expect(get()).not.toBeInstanceOf(Promise);
    await new Promise((r) => setTimeout(r, 100));
    expect(mints).toBe(2);
  });

  it('a failed refresh keeps the current value until its expiry, and never past it', async () => {
    server.set((_q, res) => res.writeHead(500).end());
    now += 50_000;
    for (let i = 0; i < 30; i++) expect(hit(replicas[i % 3]!)).toBe('Bearer v1');
    await eventually(async () => (await refreshes('failed')) === 1, 5000, 'the failed refresh');
    expect(server.calls).toHaveLength(2);
    expect(replicas.filter((r) => r.logs().includes('callback refresh failed'))).toHaveLength(1);

    now += 9_999; // the last millisecond of the TTL: still served
    for (const r of replicas) expect(hit(r)).toBe('Bearer v1');
    now += 1; // expired: a miss, which fails closed while the endpoint fails
    const late = replicas[0]!.resolver.lookup(cb(), target, 'sb-1');
    expect(late).toBeInstanceOf(Promise);
    await expect(late).rejects.toBeInstanceOf(CallbackFailure);
  });

  it('refreshes in memory, once per replica, while Redis is down', async () => {
    await redis.stop();
    await eventually(() => replicas.every((r) => r.cache.redisState === 'down'), 5000, 'degraded');
    server.set(answer({ Authorization: 'Bearer v3' }));
    now += 55_000;
    for (let i = 0; i < 30; i++) expect(hit(replicas[i % 3]!)).toBe('Bearer v1');
    await eventually(() => replicas.every((r) => hit(r) === 'Bearer v3'), 5000, 'local refreshes');
    expect(server.calls).toHaveLength(1 + 3);
    await redis.start();
  });
});
