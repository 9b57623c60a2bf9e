/**
 * Sandbox links across replicas through a real Redis: two registries stand for two replicas. A link or
 * address written on one is dialled by the other at once (pub/sub), a removal refuses there at once, an
 * old record put back into Redis is refused, and a forged one leaves the sandbox with no links at all.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../src/callbacks/redis-url.js';
import { createLogger } from '../../src/log.js';
import { PolicyRegistry } from '../../src/sandboxes/registry.js';
import { RedisSandboxStore } from '../../src/sandboxes/store.js';
import { eventually } from '../helpers/fs.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const emptyFile = {
  file: { default: undefined, sandboxes: new Map() },
  secrets: new Map<string, string>(),
  fingerprint: '',
};
const log = createLogger('silent');
const KEY = Buffer.alloc(32, 5);

describe('sandbox links across replicas through Redis', () => {
  let redis: RedisServer;
  const clients: Redis[] = [];
  const registries: PolicyRegistry[] = [];
  const prefix = `l${process.pid}:`;
  const replica = async () => {
    const client = createRedisClient(redis.url) as Redis;
    clients.push(client);
    const store = new RedisSandboxStore(client, prefix, KEY);
    const registry = new PolicyRegistry(emptyFile, undefined, log, store, undefined, { linkStore: store.linkStore() });
    registries.push(registry);
    await registry.start(60_000);
    return { registry, links: store.linkStore(), client };
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const r of registries) await r.close();
    for (const c of clients) c.disconnect();
    await redis?.close();
  });

  it('a link and address written on replica A are dialled on B; removing the link refuses on B at once', async () => {
    const a = await replica();
    const b = await replica();
    await a.links.update('sb-2', (net) => ({ ...net, address: '10.0.3.7' }));
    await a.links.update('sb-1', (net) => ({ ...net, links: { 'sb-2': [8080] } }));
    await eventually(
      () => b.registry.links!.dial('sb-1', 'sb-2', 8080) === '10.0.3.7',
      2000,
      'replica B to hear of the link',
    );
    await a.links.update('sb-2', (net) => ({ ...net, address: '10.0.3.8' }));
    await eventually(
      () => b.registry.links!.dial('sb-1', 'sb-2', 8080) === '10.0.3.8',
      2000,
      'replica B to hear of the new address',
    );
    await a.links.update('sb-1', (net) => ({ ...net, links: {} }));
    await eventually(
      () => b.registry.links!.dial('sb-1', 'sb-2', 8080) === undefined,
      2000,
      'replica B to hear of the removal',
    );
  });

  it('refuses an old record put back into Redis, and drops a forged one', async () => {
    const a = await replica();
    await a.links.update('sb-4', (net) => ({ ...net, address: '10.0.4.4' }));
    await a.links.update('sb-3', (net) => ({ ...net, links: { 'sb-4': [80] } }));
    const [linked] = await a.client.keys(`${prefix}*net:*:sb-3`);
    const old = (await a.client.get(linked!))!;
    await a.links.update('sb-3', (net) => ({ ...net, links: {} }));
    const b = await replica();
    expect(b.registry.links!.dial('sb-3', 'sb-4', 80)).toBeUndefined();
    // The old record (with the link) replayed, its stamp announced: B keeps the newer, empty one.
    await a.client.set(linked!, old);
    await a.client.hset(`${prefix}{sbx}:netversions`, 'sb-3', old.split('\n')[0]!);
    await b.registry.links!.refresh('sb-3');
    expect(b.registry.links!.dial('sb-3', 'sb-4', 80)).toBeUndefined();
    // A record whose MAC doesn't match: no link is believed.
    await a.links.update('sb-3', (net) => ({ ...net, links: { 'sb-4': [80] } }));
    await eventually(() => b.registry.links!.dial('sb-3', 'sb-4', 80) === '10.0.4.4', 2000, 'the relinked record');
    const forged = (await a.client.get(linked!))!.replace('"sb-4":[80]', '"sb-4":[80,81]');
    await a.client.set(linked!, forged);
    await b.registry.links!.refresh('sb-3');
    expect(b.registry.links!.dial('sb-3', 'sb-4', 80)).toBeUndefined();
  });
});
