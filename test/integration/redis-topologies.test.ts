/**
 * The shared cache through Redis Sentinel and Redis Cluster URLs (`redis+sentinel://`, `redis+cluster://`),
 * against real redis-server processes: a master watched by a Sentinel, and a one-node cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { startClusterNode, startFleet, startRedis, startSentinel, type RedisServer } from '../helpers/redis.js';

const target = { host: 'api.example.com', port: 443 };

describe('Sentinel and Cluster URLs', () => {
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  const started: RedisServer[] = [];
  const cb = (): CompiledCallback => ({
    id: 'cb-t',
    position: 0,
    url: server.url,
    ttlSeconds: 60,
    requestHeaders: [],
    fullRequest: false,
  });

  beforeAll(async () => {
    server = await startCallbackServer(answer({ Authorization: 'Bearer topo' }, 50));
  });
  afterAll(async () => {
    await server.close();
    for (const s of started) await s.close();
  });

  async function oneCallFor(url: string, sandbox: string): Promise<void> {
    const before = server.calls.length;
    const fleet = await startFleet({ url, count: 3 });
    try {
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => fleet.replicas[i % 3]!.resolver.lookup(cb(), target, sandbox)),
      );
      expect(results.map((r) => r.headers[0]![1])).toEqual(Array(30).fill('Bearer topo'));
      expect(server.calls.length - before).toBe(1);
      for (const r of fleet.replicas) expect(r.cache.redisState).toBe('up');
    } finally {
      await fleet.close();
    }
  }

  it('redis+sentinel://host:port/mymaster finds the master through the Sentinel', async () => {
    const master = await startRedis();
    started.push(master);
    const sentinel = await startSentinel(master.port);
    started.push(sentinel);
    await oneCallFor(`redis+sentinel://127.0.0.1:${sentinel.port}/mymaster`, 'sb-sentinel');
  });

  it('redis+cluster://host:port runs the scripts on one slot per key', async () => {
    const node = await startClusterNode();
    started.push(node);
    await oneCallFor(`redis+cluster://127.0.0.1:${node.port}`, 'sb-cluster');
  });
});
