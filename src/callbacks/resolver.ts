import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import type { CachedCredential, CredentialCache } from './cache.js';
import { callCallback, CallbackFailure, DEFAULT_CALLBACK_LIMITS, type CallbackLimits } from './client.js';
import type { CallbackSigner } from './signer.js';
import type { Metrics } from '../metrics/metrics.js';

/**
 * The cache key of the contract: one entry per (sandbox, callback, host, port). Joined with newlines,
 * which no sandbox id or callback id contains (and the port is last and numeric), so it is unambiguous;
 * a plain concatenation, because this runs on every warm request and JSON.stringify costs ~30x more.
 */
export function callbackCacheKey(sandboxId: string, callback: CompiledCallback, target: Target): string {
  return sandboxId + '\n' + callback.id + '\n' + target.host + '\n' + target.port;
}

type Level<T> = Map<string, T>;

/**
 * Interns cache keys: a warm lookup then hashes the short strings it has (sandbox id, callback id,
 * host) instead of building and hashing a new 40-odd-character key, which costs more than the rest of
 * the lookup. Bounded: cleared whole when it holds `max` keys (they are rebuilt on demand).
 */
class KeyMemo {
  private readonly root: Level<Level<Level<Map<number, string>>>> = new Map();
  private size = 0;

  constructor(private readonly max = 50_000) {}

  key(sandboxId: string, callback: CompiledCallback, target: Target): string {
    let byCallback = this.root.get(sandboxId);
    if (!byCallback) this.root.set(sandboxId, (byCallback = new Map()));
    let byHost = byCallback.get(callback.id);
    if (!byHost) byCallback.set(callback.id, (byHost = new Map()));
    let byPort = byHost.get(target.host);
    if (!byPort) byHost.set(target.host, (byPort = new Map()));
    let key = byPort.get(target.port);
    if (key === undefined) {
      if (++this.size > this.max) {
        this.root.clear();
        this.size = 0;
        return callbackCacheKey(sandboxId, callback, target);
      }
      byPort.set(target.port, (key = callbackCacheKey(sandboxId, callback, target)));
    }
    return key;
  }
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
    private readonly metrics?: Metrics,
  ) {}

  private readonly keys = new KeyMemo();

  lookup(callback: CompiledCallback, target: Target, sandboxId: string): CachedCredential | Promise<CachedCredential> {
    const key = this.keys.key(sandboxId, callback, target);
    return this.cache.get(key, callback.ttlSeconds, () => this.call(callback, target, sandboxId));
  }

  /** One call to the endpoint, counted and timed (the cache decides when this happens). */
  private async call(callback: CompiledCallback, target: Target, sandboxId: string) {
    const started = performance.now();
    try {
      const headers = await callCallback(callback, target, sandboxId, this.signer, this.limits);
      this.metrics?.callbackCall((performance.now() - started) / 1000);
      return headers;
    } catch (err) {
      this.metrics?.callbackCall((performance.now() - started) / 1000, err instanceof CallbackFailure ? err.reason : 'transport');
      throw err;
    }
  }
}
