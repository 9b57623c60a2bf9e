/**
 * The shared callback cache against a real redis-server and a real HTTP callback endpoint, with three
 * replicas (each its own cache, resolver, Redis connections, metrics and logs) in this process.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CachedCredential } from '../../src/callbacks/cache.js';
import { CacheSealer } from '../../src/callbacks/cache-crypto.js';
import { CallbackFailure } from '../../src/callbacks/client.js';
import { callbackCacheKey } from '../../src/callbacks/resolver.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { fleetMetric, startFleet, startRedis, TEST_SEALER, type RedisServer, type Replica } from '../helpers/redis.js';

const CANARY = 'canary-shared-cache-7f3a';
const target = { host: 'api.example.com', port: 443 };
const PREFIX = 'authproxy:';

describe('shared callback cache over Redis, three replicas', () => {
  let redis: RedisServer;
  let raw: Redis;
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let fleet: Awaited<ReturnType<typeof startFleet>>;
  let replicas: Replica[];
  let now: number;
  const cb = (): CompiledCallback => ({
    id: 'cb-1',
    position: 0,
    url: server.url,
    ttlSeconds: 60,
    requestHeaders: [],
    fullRequest: false,
  });
  const lookup = (r: Replica, sandbox = 'sb-1') => Promise.resolve(r.resolver.lookup(cb(), target, sandbox));
  const spread = (n: number, sandbox = 'sb-1') =>
    Array.from({ length: n }, (_, i) => lookup(replicas[i % replicas.length]!, sandbox));
  const valueKey = (sandbox: string, sealer = TEST_SEALER) =>
    `${PREFIX}{${sealer.keyName(callbackCacheKey(sandbox, cb(), target))}}:v`;
  const token = (e: CachedCredential) => e.headers[0]![1];

  beforeAll(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url).on('error', () => undefined);
    server = await startCallbackServer(answer({ Authorization: `Bearer ${CANARY}` }, 100));
  });
  afterAll(async () => {
    raw.disconnect();
    await server.close();
    await redis.close();
  });
  beforeEach(async () => {
    await raw.flushall();
    server.calls.length = 0;
    server.set(answer({ Authorization: `Bearer ${CANARY}` }, 100));
    now = Date.now();
    fleet = await startFleet({ url: redis.url, clock: () => now });
    replicas = fleet.replicas;
  });
  afterEach(() => fleet.close());

  it('100 concurrent lookups of one key over 3 replicas make exactly one call; after expiry exactly one more', async () => {
    const first = await Promise.all(spread(100));
    expect(server.calls).toHaveLength(1);
    expect(new Set(first.map(token))).toEqual(new Set([`Bearer ${CANARY}`]));
    expect(new Set(first.map((e) => e.expiresAt)).size).toBe(1);

    // Warm now: every replica answers from memory, synchronously.
    for (const r of replicas) expect(r.resolver.lookup(cb(), target, 'sb-1')).not.toBeInstanceOf(Promise);

    now += 60_001;
    const second = await Promise.all(spread(100));
    expect(server.calls).toHaveLength(2);
    expect(second.every((e) => e.expiresAt > now)).toBe(true);

    const sum = (f: (r: Replica) => number) => replicas.reduce((n, r) => n + f(r), 0);
    expect(sum((r) => r.metrics.count('lookup', 'miss'))).toBe(2);
    expect(sum((r) => r.metrics.count('lookup', 'l2'))).toBeGreaterThanOrEqual(2);
    expect(await fleetMetric(replicas, 'authproxy_callback_calls_total{result="ok"}')).toBe(2);
    expect(await fleetMetric(replicas, 'authproxy_callback_duration_seconds_count{result="ok"}')).toBe(2);
    expect(await fleetMetric(replicas, 'authproxy_callback_single_flight_waits_total{scope="local"}')).toBeGreaterThan(
      0,
    );
    expect(await fleetMetric(replicas, 'authproxy_callback_single_flight_waits_total{scope="fleet"}')).toBeGreaterThan(
      0,
    );
    expect(await fleetMetric(replicas, 'authproxy_callback_cache_lookups_total{level="l1"}')).toBe(3);
    expect(await fleetMetric(replicas, 'authproxy_redis_up')).toBe(3);
  });

  it('keeps keys apart per sandbox, and Redis holds neither ids, hostnames nor plaintext', async () => {
    await Promise.all([...spread(10, 'sb-1'), ...spread(10, 'sb-2')]);
    expect(server.calls).toHaveLength(2);
    const keys = await raw.keys('*');
    expect(keys.sort()).toEqual([valueKey('sb-1'), valueKey('sb-2')].sort());
    for (const k of keys) {
      expect(k).not.toMatch(/sb-|example|cb-1/);
      const value = (await raw.get(k))!;
      expect(value).not.toContain(CANARY);
      expect(Buffer.from(value, 'base64url').toString('latin1')).not.toContain(CANARY);
      // Absolute expiry: Redis drops it at the entry's expiry (the test clock is real time here).
      expect(Math.abs(Number(await raw.pexpiretime(k)) - (now + 60_000))).toBeLessThan(1000);
    }
  });

  it('waiters on every replica share one failure; nothing is cached and the next request calls again', async () => {
    server.set((_q, res) => setTimeout(() => res.writeHead(503).end(), 150));
    const settled = await Promise.allSettled(spread(30));
    expect(server.calls).toHaveLength(1);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      const err = (s as PromiseRejectedResult).reason as CallbackFailure;
      expect(err).toBeInstanceOf(CallbackFailure);
      expect(err.reason).toBe('status');
    }
    expect(await raw.exists(valueKey('sb-1'))).toBe(0);
    expect(await fleetMetric(replicas, 'authproxy_callback_failures_total{reason="status"}')).toBe(1);
    expect(await fleetMetric(replicas, 'authproxy_callback_shared_failures_total')).toBeGreaterThan(0);

    server.set(answer({ Authorization: `Bearer ${CANARY}` }));
    expect(token(await lookup(replicas[1]!))).toBe(`Bearer ${CANARY}`);
    expect(server.calls).toHaveLength(2);
  });

  it('ignores a Redis value with flipped bytes and calls again', async () => {
    await lookup(replicas[0]!);
    const k = valueKey('sb-1');
    const value = Buffer.from((await raw.get(k))!, 'base64url');
    value[value.length - 20]! ^= 0x01;
    await raw.set(k, value.toString('base64url'), 'KEEPTTL');
    expect(token(await lookup(replicas[1]!))).toBe(`Bearer ${CANARY}`);
    expect(server.calls).toHaveLength(2);
    expect(replicas[1]!.metrics.count('lookup', 'miss')).toBe(1);
    expect(await fleetMetric(replicas, 'authproxy_cache_rejected_values_total')).toBe(1);
  });

  it('ignores a value moved from another key, or sealed under another cache key', async () => {
    await lookup(replicas[0]!, 'sb-1');
    await raw.set(valueKey('sb-2'), (await raw.get(valueKey('sb-1')))!, 'PX', 60_000);
    expect(token(await lookup(replicas[1]!, 'sb-2'))).toBe(`Bearer ${CANARY}`);
    expect(server.calls).toHaveLength(2);

    const foreign = CacheSealer.fromKey(Buffer.alloc(32, 9));
    const planted = foreign.seal(valueKey('sb-3'), {
      headers: [['Authorization', 'Bearer planted']],
      expiresAt: now + 60_000,
    });
    await raw.set(valueKey('sb-3'), planted, 'PX', 60_000);
    expect(token(await lookup(replicas[2]!, 'sb-3'))).toBe(`Bearer ${CANARY}`);
    expect(server.calls).toHaveLength(3);
    expect(await fleetMetric(replicas, 'authproxy_cache_rejected_values_total')).toBe(2);
  });

  it('treats a value of the wrong Redis type as a miss without taking Redis for down', async () => {
    await raw.rpush(valueKey('sb-4'), 'x');
    expect(token(await lookup(replicas[0]!, 'sb-4'))).toBe(`Bearer ${CANARY}`);
    expect(replicas[0]!.cache.redisState).toBe('up');
  });

  it('never logs or throws a secret value (canary)', async () => {
    await Promise.all(spread(10));
    server.set((_q, res) => res.writeHead(200).end(JSON.stringify({ headers: { A: `x\r\n${CANARY}` } })));
    const errors = await Promise.allSettled(spread(6, 'sb-9'));
    for (const e of errors) expect(String((e as PromiseRejectedResult).reason?.message)).not.toContain(CANARY);
    for (const r of replicas) expect(r.logs()).not.toContain(CANARY);
    const text = (await Promise.all(replicas.map((r) => r.metrics.exposition()))).map((e) => e.body).join('\n');
    expect(text).not.toContain(CANARY);
  });
});
