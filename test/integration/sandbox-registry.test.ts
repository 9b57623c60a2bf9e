/**
 * Per-sandbox configs shared through a real Redis: two registries stand for two replicas. A write on one
 * reaches the other through pub/sub; a lost announcement is healed by the resync; a sandbox never gets
 * another sandbox's config.
 */
import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../src/callbacks/redis-url.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { PolicyRegistry } from '../../src/sandboxes/registry.js';
import { RedisSandboxStore } from '../../src/sandboxes/store.js';
import { encodeRecord } from '../../src/sandboxes/record.js';
import { eventually } from '../helpers/fs.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const config = (token: string) =>
  validateConfig(
    {
      rules: [
        {
          name: 'gh',
          match_hosts: ['api.github.com'],
          headers: [{ name: 'Authorization', type: 'workspace_secret', value: `Bearer {${token}}` }],
        },
      ],
    },
    'test',
  );
const emptyFile = {
  file: { default: undefined, sandboxes: new Map() },
  secrets: new Map([
    ['T1', 'one'],
    ['T2', 'two'],
  ]),
  fingerprint: '',
};
const log = createLogger('silent');
const KEY = Buffer.alloc(32, 9);
const mac = (id: string, json: string) => createHmac('sha256', KEY).update(`${id}\n${json}`).digest('base64url');
const auth = (r: PolicyRegistry, id: string) => r.policyFor(id)?.rules[0]?.headers[0]?.value;

describe('sandbox configs across replicas through Redis', () => {
  let redis: RedisServer;
  const clients: Redis[] = [];
  const registries: PolicyRegistry[] = [];
  const replica = async (resyncMs = 60_000) => {
    const client = createRedisClient(redis.url) as Redis;
    clients.push(client);
    const registry = new PolicyRegistry(
      emptyFile,
      undefined,
      log,
      new RedisSandboxStore(client, `t${process.pid}:`, KEY),
    );
    registries.push(registry);
    await registry.start(resyncMs);
    return registry;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const r of registries) await r.close();
    for (const c of clients) c.disconnect();
    await redis?.close();
  });

  it('a write on replica A is served by replica B, and a delete removes it', async () => {
    const a = await replica();
    const b = await replica();
    await a.store!.put('sb-1', config('T1'));
    await eventually(() => auth(b, 'sb-1') === 'Bearer one', 2000, 'replica B to hear of the write');
    await a.store!.put('sb-1', config('T2'));
    await eventually(() => auth(b, 'sb-1') === 'Bearer two', 2000, 'replica B to hear of the update');
    await a.store!.delete('sb-1');
    await eventually(() => b.policyFor('sb-1') === undefined, 2000, 'replica B to drop the sandbox');
  });

  it("never applies one sandbox's config to another", async () => {
    const a = await replica();
    await a.store!.put('sb-a', config('T1'));
    await eventually(() => auth(a, 'sb-a') === 'Bearer one', 2000, 'sb-a');
    expect(a.policyFor('sb-b')).toBeUndefined();
    expect(a.policyFor('sb-a ')).toBeUndefined();
  });

  it('a replica that missed the announcement catches up at the next resync', async () => {
    const c = await replica(200);
    const writer = createRedisClient(redis.url) as Redis;
    clients.push(writer);
    const store = new RedisSandboxStore(writer, `t${process.pid}:`, KEY);
    expect(await store.ready(3000)).toBe(true);
    await c.close();
    await store.put('sb-missed', config('T1'));
    const late = await replica(200);
    expect(auth(late, 'sb-missed')).toBe('Bearer one');
    // A write whose announcement is lost: the value and version change, nothing is published.
    const [key] = await writer.keys(`t${process.pid}:{sbx}:cfg:*:sb-missed`);
    const epoch = Number(await writer.get(`t${process.pid}:{sbx}:epoch`));
    const record = encodeRecord(KEY, 'sb-missed', {
      stamp: '99-lost',
      updatedAt: Date.now(),
      order: { epoch, seq: 1_000_000 },
      identity: {},
      config: config('T2'),
    });
    await writer.hset(`t${process.pid}:{sbx}:versions`, 'sb-missed', '99-lost');
    await writer.set(key!, record);
    await eventually(() => auth(late, 'sb-missed') === 'Bearer two', 3000, 'resync');
  });

  it('refuses a config planted or altered in Redis without the shared key, keeping the last good one', async () => {
    const e = await replica(200);
    await e.store!.put('sb-planted', config('T1'));
    await eventually(() => auth(e, 'sb-planted') === 'Bearer one', 2000, 'initial');
    const writer = createRedisClient(redis.url) as Redis;
    clients.push(writer);
    expect(await new RedisSandboxStore(writer, `t${process.pid}:`, KEY).ready(3000)).toBe(true);
    const [key] = await writer.keys(`t${process.pid}:{sbx}:cfg:*:sb-planted`);
    const json = JSON.stringify(config('T2'));
    await writer.set(key!, `77-evil\n${Date.now()}\n${mac('sb-other', json)}\n${json}`);
    await writer.hset(`t${process.pid}:{sbx}:versions`, 'sb-planted', '77-evil');
    await e.resync();
    expect(auth(e, 'sb-planted')).toBe('Bearer one');
    const unauthenticated = new PolicyRegistry(
      emptyFile,
      undefined,
      log,
      new RedisSandboxStore(writer, `t${process.pid}:`, Buffer.alloc(32, 1)),
    );
    registries.push(unauthenticated);
    await unauthenticated.start(60_000);
    expect(unauthenticated.policyFor('sb-planted')).toBeUndefined();
  });

  it('keeps serving what it has while Redis is down, and catches up when it returns', async () => {
    const d = await replica(200);
    await d.store!.put('sb-down', config('T1'));
    await eventually(() => auth(d, 'sb-down') === 'Bearer one', 2000, 'initial');
    await redis.stop();
    await d.resync();
    expect(auth(d, 'sb-down')).toBe('Bearer one');
    await redis.start();
    const writer = createRedisClient(redis.url) as Redis;
    clients.push(writer);
    const store = new RedisSandboxStore(writer, `t${process.pid}:`, KEY);
    expect(await store.ready(3000)).toBe(true);
    await store.put('sb-down', config('T2'));
    await eventually(() => auth(d, 'sb-down') === 'Bearer two', 8000, 'recovery after Redis came back');
  });
});
