import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import type { CachedCredential, CredentialCache } from './cache.js';
import { callCallback, DEFAULT_CALLBACK_LIMITS, type CallbackLimits } from './client.js';
import type { CallbackSigner } from './signer.js';

/** The cache key of the contract: one entry per (sandbox, callback, host, port). */
export function callbackCacheKey(sandboxId: string, callback: CompiledCallback, target: Target): string {
  return JSON.stringify([sandboxId, callback.id, target.host, target.port]);
}

/**
 * Resolves callback credentials through the cache. Returns the cached value synchronously on a hit, so a
 * warm key costs no I/O and no promise; on a miss, a promise that shares one call among concurrent misses.
 */
export class CallbackResolver {
  constructor(
    private readonly cache: CredentialCache,
    private readonly signer: CallbackSigner,
    private readonly limits: CallbackLimits = DEFAULT_CALLBACK_LIMITS,
  ) {}

  lookup(callback: CompiledCallback, target: Target, sandboxId: string): CachedCredential | Promise<CachedCredential> {
    const key = callbackCacheKey(sandboxId, callback, target);
    return this.cache.get(key, callback.ttlSeconds, () => callCallback(callback, target, sandboxId, this.signer, this.limits));
  }
}
