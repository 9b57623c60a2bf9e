/**
 * Two whole authproxy services (as `serve` wires them) sharing one real redis-server: ext_proc requests
 * over gRPC, the side HTTP port with /metrics and /status, the cache key choices and their errors.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCredentialCache } from '../../src/callbacks/cache-setup.js';
import { CacheSealer, parseCacheKey } from '../../src/callbacks/cache-crypto.js';
import { createRedisClient } from '../../src/callbacks/redis-url.js';
import { SharedCredentialCache } from '../../src/callbacks/shared-cache.js';
import { errorLine } from '../../src/errors.js';
import { metricsRoutes } from '../../src/serve/metrics-routes.js';
import { startHttpPort } from '../../src/serve/http-port.js';
import { startService, type Service } from '../../src/serve/service.js';
import { generateSealingKeys, parsePrivateKey } from '../../src/secrets/sealing.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';
import { startRedis, TEST_SEALER, type RedisServer } from '../helpers/redis.js';

const CANARY = 'canary-serve-redis-5d1e';

describe('serve with --redis: two replicas behind one Redis', () => {
  let dir: TempDir;
  let redis: RedisServer;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  const services: Service[] = [];
  const clients: grpc.Client[] = [];
  const logs = captureLogs('debug');
  let side: Awaited<ReturnType<typeof startHttpPort>>;
  const get = async (path: string) => {
    const res = await fetch(`http://${side.address}${path}`);
    return { status: res.status, body: await res.text() };
  };

  beforeAll(async () => {
    dir = tempDir();
    redis = await startRedis();
    callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${CANARY}` }, 50));
    const config = dir.file(
      'config.yaml',
      `callbacks:\n  - match_hosts: ["api.example.com"]\n    url: "${callbacks.url}"\n    ttl_seconds: 60\n`,
    );
    const cacheKey = dir.file('cache.key', `${randomBytes(32).toString('hex')}\n`);
    for (const name of ['a', 'b']) {
      const service = await startService(
        {
          config,
          listen: `unix:${join(dir.path, `${name}.sock`)}`,
          sandboxId: 'sb-1',
          redis: redis.url,
          cacheKey,
          egressAllowCidrs: '127.0.0.0/8',
        },
        logs.log,
      );
      services.push(service);
      clients.push(extProcClient(service.address));
    }
    side = await startHttpPort('127.0.0.1:0', {
      signer: services[0]!.signer,
      ready: () => true,
      extraRoutes: metricsRoutes(services[0]!.metrics, services[0]!.cacheHealth),
    });
  });
  afterAll(async () => {
    side?.server.close();
    for (const c of clients) c.close();
    for (const s of services) await s.close();
    await callbacks?.close();
    await redis?.close();
    dir?.cleanup();
  });

  it('answers 40 concurrent requests over both replicas with one callback call, and reports it on /metrics', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        exchange(clients[i % 2]!, [requestHeaders('api.example.com', '/v1/x')], { 'x-sandbox-id': 'sb-7' }),
      ),
    );
    for (const { responses } of results)
      expect(setHeaders(responses[0]!)).toEqual({ authorization: `Bearer ${CANARY}` });
    expect(callbacks.calls).toHaveLength(1);
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('authproxy_callback_cache_lookups_total');
    expect(metrics.body).toMatch(/authproxy_redis_up 1/);
    expect(metrics.body).toContain('process_cpu_seconds_total');
    expect(metrics.body).not.toContain(CANARY);
    expect(JSON.parse((await get('/status')).body)).toEqual({ status: 'ok', redis: 'up' });
  });

  it('reports degraded on /status and /metrics while Redis is down, keeps /healthz at 200, and still answers', async () => {
    await redis.stop();
    await eventually(() => services.every((s) => s.cacheHealth().status === 'degraded'), 5000, 'degraded');
    expect(JSON.parse((await get('/status')).body)).toEqual({ status: 'degraded', redis: 'down' });
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/metrics')).body).toMatch(/authproxy_redis_up 0/);
    const { responses } = await exchange(clients[1]!, [requestHeaders('api.example.com', '/v1/x')], {
      'x-sandbox-id': 'sb-8',
    });
    expect(setHeaders(responses[0]!)).toEqual({ authorization: `Bearer ${CANARY}` });
    await redis.start();
    await eventually(() => services.every((s) => s.cacheHealth().status === 'ok'), 10_000, 'recovered');
    expect(logs.text()).not.toContain(CANARY);
  });
});

describe('cache keys and Redis URLs', () => {
  const log = captureLogs('info').log;

  it('derives the same cache key from the same sealing key, a different one from another', () => {
    const k1 = parsePrivateKey(generateSealingKeys().privatePem, 'k1');
    const k2 = parsePrivateKey(generateSealingKeys().privatePem, 'k2');
    const entry = { headers: [['A', 'b']] as const, expiresAt: Date.now() + 1000 };
    const sealed = CacheSealer.fromSealingKey(k1).seal('authproxy:{x}:v', entry);
    expect(CacheSealer.fromSealingKey(k1).open('authproxy:{x}:v', sealed)).toEqual({
      headers: [['A', 'b']],
      expiresAt: entry.expiresAt,
    });
    expect(CacheSealer.fromSealingKey(k2).open('authproxy:{x}:v', sealed)).toBeUndefined();
    expect(CacheSealer.fromSealingKey(k1).open('authproxy:{y}:v', sealed)).toBeUndefined();
  });

  it('reads a cache key as 32 raw bytes, 64 hex characters or base64, and rejects anything else', () => {
    const key = randomBytes(32);
    for (const form of [
      key,
      Buffer.from(key.toString('hex')),
      Buffer.from(`${key.toString('base64')}\n`),
      Buffer.from(key.toString('base64url')),
    ]) {
      expect(parseCacheKey(form, 'k')).toEqual(key);
    }
    expect(() => parseCacheKey(Buffer.from('short'), '/etc/cache.key')).toThrow(
      '/etc/cache.key: a cache key must be 32 bytes',
    );
  });

  it('needs --cache-key or --sealing-key with --redis, and names an unreadable key file', async () => {
    await expect(createCredentialCache({ redis: 'redis://127.0.0.1:1', callbackTimeoutMs: 5000 }, log)).rejects.toThrow(
      '--redis: needs --cache-key or --sealing-key',
    );
    await expect(
      createCredentialCache({ redis: 'redis://127.0.0.1:1', cacheKey: '/nonexistent/k', callbackTimeoutMs: 5000 }, log),
    ).rejects.toThrow('/nonexistent/k: cannot read cache key file (ENOENT)');
  });

  it('rejects unknown URL forms without echoing the URL (it may hold a password)', () => {
    for (const url of [
      'memcached://u:hunter2@h:1',
      'redis+sentinel://u:hunter2@h:1',
      'redis+cluster://u:hunter2@h:1/0',
      'redis+sentinel://u:hunter2@h:x/m',
    ]) {
      let message = '';
      try {
        createRedisClient(url).disconnect();
      } catch (err) {
        message = errorLine(err);
      }
      expect(message).toMatch(/^--redis: expected redis:\/\//);
      expect(message).not.toContain('hunter2');
    }
  });

  it('rejects a prefix with braces (it would put every key in one Cluster slot)', () => {
    expect(() =>
      SharedCredentialCache.connect({ url: 'redis://127.0.0.1:1', prefix: 'a{b}', sealer: TEST_SEALER, log }),
    ).toThrow('--redis-prefix');
  });
});
