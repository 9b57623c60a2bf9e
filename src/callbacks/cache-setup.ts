import { readFileSync } from 'node:fs';
import { AuthProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { parsePrivateKey } from '../secrets/sealing.js';
import { MemoryCredentialCache, type CredentialCache } from './cache.js';
import { CacheSealer, parseCacheKey } from './cache-crypto.js';
import type { LinkState } from './redis-link.js';
import { SharedCredentialCache } from './shared-cache.js';

/** The `serve` settings the callback cache reads. */
export interface CacheSettings {
  /** `--redis` (AUTHPROXY_REDIS, else REDIS_URL): without it, the in-memory sidecar cache. */
  readonly redis?: string;
  /** `--redis-prefix` (AUTHPROXY_REDIS_PREFIX), default `authproxy:`. */
  readonly redisPrefix?: string;
  /** `--cache-key` (AUTHPROXY_CACHE_KEY): 32-byte key file shared by the replicas. */
  readonly cacheKey?: string;
  /** `--sealing-key`: the cache key is derived from it when `cacheKey` is absent. */
  readonly sealingKey?: string;
  readonly callbackTimeoutMs: number;
}

/** What `/status` reports: `degraded` while Redis is configured but unusable (requests are still answered). */
export interface CacheHealth {
  readonly status: 'ok' | 'degraded';
  readonly redis: 'disabled' | LinkState;
}

/** A callback cache chosen from the settings, with its health. */
export interface CacheChoice {
  readonly cache: CredentialCache;
  health(): CacheHealth;
}

/**
 * Builds the callback cache `serve` uses: in memory without `--redis`; with it, the shared cache, whose
 * values are encrypted with `--cache-key`, or else with a key derived (HKDF) from `--sealing-key`.
 * Waits up to `readyMs` for Redis, then starts anyway (degraded until Redis answers).
 */
export async function createCredentialCache(
  settings: CacheSettings,
  log: Logger,
  metrics?: Metrics,
  readyMs = 2000,
): Promise<CacheChoice> {
  if (!settings.redis) {
    const cache = new MemoryCredentialCache(10_000, Date.now, metrics);
    return { cache, health: () => ({ status: 'ok', redis: 'disabled' }) };
  }
  const sealer = cacheSealer(settings);
  log.info(
    { key: settings.cacheKey ? '--cache-key' : 'derived from --sealing-key' },
    'callback results are shared through redis, encrypted',
  );
  const cache = SharedCredentialCache.connect({
    url: settings.redis,
    prefix: settings.redisPrefix,
    sealer,
    log,
    metrics,
    // The holder of a key's lock always finishes (answer or timeout) before the deadline.
    lockMs: settings.callbackTimeoutMs + 1000,
  });
  await cache.ready(readyMs);
  return {
    cache,
    health: () => ({ status: cache.redisState === 'up' ? 'ok' : 'degraded', redis: cache.redisState }),
  };
}

function cacheSealer(settings: CacheSettings): CacheSealer {
  if (settings.cacheKey) {
    let content: Buffer;
    try {
      content = readFileSync(settings.cacheKey);
    } catch (err) {
      throw new AuthProxyError(
        'config_io',
        `${settings.cacheKey}: cannot read cache key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    return CacheSealer.fromKey(parseCacheKey(content, settings.cacheKey));
  }
  if (settings.sealingKey) {
    let pem: string;
    try {
      pem = readFileSync(settings.sealingKey, 'utf8');
    } catch (err) {
      throw new AuthProxyError(
        'config_io',
        `${settings.sealingKey}: cannot read key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    return CacheSealer.fromSealingKey(parsePrivateKey(pem, settings.sealingKey));
  }
  throw new AuthProxyError(
    'usage',
    '--redis: needs --cache-key or --sealing-key (the key that encrypts cached credentials in Redis)',
  );
}
