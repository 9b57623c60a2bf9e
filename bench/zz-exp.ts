import { answer, startCallbackServer } from '../test/helpers/callback-server.js';
import { startFleet, startRedis } from '../test/helpers/redis.js';
const redis = await startRedis();
const endpoint = await startCallbackServer(answer({ Authorization: 'Bearer bench' }, 5));
const fleet = await startFleet({ url: redis.url });
for (const [round, keys] of [100, 100, 300, 300].entries()) {
  const cb = { id: `x${round}`, position: 0, url: endpoint.url, ttlSeconds: 60, requestHeaders: [] };
  endpoint.calls.length = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: keys * 3 }, (_, i) => fleet.replicas[i % 3]!.resolver.lookup(cb, { host: 'a.example', port: 443 }, `sb-${Math.floor(i / 3)}`)));
  console.log(keys, 'keys', Date.now() - t0, 'ms', endpoint.calls.length, 'calls', fleet.replicas.map((r) => r.cache.redisState).join(','));
}
for (const r of fleet.replicas) console.log(r.logs().split('\n').filter((l) => l.includes('redis')).map((l) => l.slice(0, 200)).join('\n'));
await fleet.close(); await endpoint.close(); await redis.close(); process.exit(0);
