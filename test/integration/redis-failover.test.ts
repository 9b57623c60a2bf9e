/**
 * What happens when parts of the fleet fail: a replica dies while it holds a key's lock, Redis stops and
 * comes back, Redis stops answering for a while. Real redis-server processes, a real callback endpoint.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CachedCredential } from '../../src/callbacks/cache.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { eventually } from '../helpers/fs.js';
import { startFleet, startRedis, type RedisServer, type Replica } from '../helpers/redis.js';

const target = { host: 'api.example.com', port: 443 };
const VALUE = 'Bearer failover-token';

describe('shared callback cache when things fail', () => {
  let redis: RedisServer;
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  let now: number;
  const cb = (): CompiledCallback => ({
    id: 'cb-f',
    position: 0,
    url: server.url,
    ttlSeconds: 60,
    requestHeaders: [],
    fullRequest: false,
  });
  const lookup = (r: Replica, sandbox = 'sb-1') => Promise.resolve(r.resolver.lookup(cb(), target, sandbox));
  const spread = (rs: Replica[], n: number, sandbox = 'sb-1') =>
    Array.from({ length: n }, (_, i) => lookup(rs[i % rs.length]!, sandbox));
  const token = (e: CachedCredential) => e.headers[0]![1];
  const count = (text: string, what: string) => text.split(what).length - 1;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startCallbackServer(answer({ Authorization: VALUE }));
  });
  afterAll(async () => {
    await server.close();
    await redis.close();
  });
  beforeEach(async () => {
    if (!redis.running) await redis.start();
    server.calls.length = 0;
    server.set(answer({ Authorization: VALUE }, 50));
    now = Date.now();
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
  });

  it('a replica that dies holding the lock is taken over after the deadline by exactly one other', async () => {
    fleet = await startFleet({ url: redis.url, clock: () => now, lockMs: 800, timeoutMs: 20_000 });
    const [a, b, c] = fleet.replicas as [Replica, Replica, Replica];
    server.set((req, res, body) => {
      if (server.calls.length === 1) return; // the first call (replica a's) hangs
      answer({ Authorization: VALUE }, 20)(req, res, body);
    });
    const orphan = lookup(a).catch((err: unknown) => err);
    await eventually(() => server.calls.length === 1, 5000, 'replica a calling');
    const waiting = spread([b, c], 40);
    await eventually(
      () => b.metrics.count('wait', 'fleet') > 0 && c.metrics.count('wait', 'fleet') > 0,
      5000,
      'b and c waiting',
    );
    await a.cache.close(); // crash: its lock is never released

    const results = await Promise.all(waiting);
    expect(results.map(token)).toEqual(Array(40).fill(VALUE));
    expect(server.calls).toHaveLength(2);
    void orphan; // settles when the endpoint closes its connections
  });

  it('keeps answering while Redis is down, reports it once, and shares again once Redis is back', async () => {
    fleet = await startFleet({ url: redis.url, clock: () => now });
    const replicas = fleet.replicas;
    await Promise.all(spread(replicas, 30, 'warm'));
    expect(server.calls).toHaveLength(1);

    await redis.stop();
    await eventually(() => replicas.every((r) => r.cache.redisState === 'down'), 5000, 'every replica degraded');
    // Warm keys: straight from memory.
    for (const r of replicas) expect(token(r.resolver.lookup(cb(), target, 'warm') as CachedCredential)).toBe(VALUE);
    // New keys: one direct call per replica (single flight stays per process), every answer right.
    const cold = await Promise.all(spread(replicas, 30, 'cold'));
    expect(cold.map(token)).toEqual(Array(30).fill(VALUE));
    expect(server.calls).toHaveLength(1 + 3);
    for (const r of replicas) expect((await r.metrics.exposition()).body).toMatch(/authproxy_redis_up 0/);
    // Nothing outlives its expiry while degraded either.
    now += 60_001;
    expect(replicas[0]!.resolver.lookup(cb(), target, 'warm')).toBeInstanceOf(Promise);
    await lookup(replicas[0]!, 'warm');
    expect(server.calls).toHaveLength(5);

    await redis.start();
    await eventually(() => replicas.every((r) => r.cache.redisState === 'up'), 10_000, 'every replica back');
    const raw = new Redis(redis.url).on('error', () => undefined);
    const subscribers = async () => ((await raw.pubsub('NUMSUB', 'authproxy:notices')) as [string, number])[1];
    await eventually(async () => (await subscribers()) === 3, 10_000, 'notice subscriptions restored');
    raw.disconnect();
    const again = await Promise.all(spread(replicas, 60, 'after'));
    expect(again.map(token)).toEqual(Array(60).fill(VALUE));
    expect(server.calls).toHaveLength(6);
    for (const r of replicas) {
      const logs = r.logs();
      expect(count(logs, 'redis unavailable')).toBe(1);
      expect(count(logs, 'redis available again')).toBe(1);
      expect((await r.metrics.exposition()).body).toMatch(/authproxy_redis_up 1/);
    }
  });

  it('falls back to direct calls when Redis stops answering (command timeout), then recovers by itself', async () => {
    fleet = await startFleet({ url: redis.url, clock: () => now });
    const replicas = fleet.replicas;
    const blocker = new Redis(redis.url).on('error', () => undefined);
    await blocker.call('CLIENT', 'PAUSE', '1500', 'ALL'); // every other client's commands now stall
    const results = await Promise.all(spread(replicas, 9, 'slow'));
    expect(results.map(token)).toEqual(Array(9).fill(VALUE));
    expect(replicas.some((r) => r.cache.redisState === 'down')).toBe(true);
    await eventually(() => replicas.every((r) => r.cache.redisState === 'up'), 10_000, 'recovery after the stall');
    expect((await replicas[0]!.metrics.exposition()).body).toMatch(/authproxy_redis_errors_total [1-9]/);
    blocker.disconnect();
    const later = await Promise.all(spread(replicas, 30, 'later'));
    expect(later.map(token)).toEqual(Array(30).fill(VALUE));
    expect(server.calls.filter((c) => JSON.parse(c.body).identity.sandbox_id === 'later')).toHaveLength(1);
  });
});
