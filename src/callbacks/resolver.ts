import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import type { CachedCredential, CredentialCache } from './cache.js';
import { callCallback, CallbackFailure, DEFAULT_CALLBACK_LIMITS, type CallbackLimits, type ResolvedHeaders } from './client.js';
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
/** A cache key with the loader that fills it, built once per key so a warm lookup allocates nothing. */
interface Slot {
  readonly key: string;
  readonly load: () => Promise<ResolvedHeaders>;
}

class KeyMemo {
  private readonly root: Level<Level<Level<Map<number, Slot>>>> = new Map();
  private size = 0;

  constructor(
    private readonly makeLoad: (callback: CompiledCallback, target: Target, sandboxId: string) => () => Promise<ResolvedHeaders>,
    private readonly max = 50_000,
  ) {}

  slot(sandboxId: string, callback: CompiledCallback, target: Target): Slot {
    let byCallback = this.root.get(sandboxId);
    if (!byCallback) this.root.set(sandboxId, (byCallback = new Map()));
    let byHost = byCallback.get(callback.id);
    if (!byHost) byCallback.set(callback.id, (byHost = new Map()));
    let byPort = byHost.get(target.host);
    if (!byPort) byHost.set(target.host, (byPort = new Map()));
    let slot = byPort.get(target.port);
    if (slot === undefined) {
      // The loader keeps this callback and target: one with the same id has the same URL and headers.
      slot = { key: callbackCacheKey(sandboxId, callback, target), load: this.makeLoad(callback, { host: target.host, port: target.port }, sandboxId) };
      if (++this.size > this.max) {
        this.root.clear();
        this.size = 0;
        return slot;
      }
      byPort.set(target.port, slot);
    }
    return slot;
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

  private readonly keys = new KeyMemo((callback, target, sandboxId) => () => this.call(callback, target, sandboxId));

  lookup(callback: CompiledCallback, target: Target, sandboxId: string): CachedCredential | Promise<CachedCredential> {
    const slot = this.keys.slot(sandboxId, callback, target);
    return this.cache.get(slot.key, callback.ttlSeconds, slot.load);
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
