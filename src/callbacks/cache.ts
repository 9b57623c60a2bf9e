import type { ResolvedHeaders } from './client.js';
import type { Metrics } from '../metrics/metrics.js';

/** A callback answer with the absolute moment (epoch ms) it stops being valid. */
export interface CachedCredential {
  readonly headers: ResolvedHeaders;
  readonly expiresAt: number;
}

/**
 * What a loader returns: the headers (they live for the TTL), or the headers with their own absolute
 * expiry (epoch ms) when that comes sooner: temporary cloud credentials end when their issuer says.
 */
export type Loaded = ResolvedHeaders | { readonly headers: ResolvedHeaders; readonly expiresAt: number };

/** The cache entry for what a loader returned at `now`: expiring after `ttlSeconds`, or earlier if it says so. */
export function cacheEntry(loaded: Loaded, now: number, ttlSeconds: number): CachedCredential {
  const ttlEnd = now + ttlSeconds * 1000;
  return isTimed(loaded)
    ? { headers: loaded.headers, expiresAt: Math.min(ttlEnd, loaded.expiresAt) }
    : { headers: loaded, expiresAt: ttlEnd };
}

function isTimed(loaded: Loaded): loaded is Exclude<Loaded, ResolvedHeaders> {
  return !Array.isArray(loaded);
}

/**
 * Where callback answers are kept. `get` returns the value synchronously on an in-process hit (the hot
 * path: no I/O, no promise); otherwise a promise that goes through every level and guarantees that
 * concurrent misses for one key run `load` once. Failures are never cached: the waiters of one failed
 * attempt share its error, and the next request tries again.
 */
export interface CredentialCache {
  get(key: string, ttlSeconds: number, load: () => Promise<Loaded>): CachedCredential | Promise<CachedCredential>;
  close(): Promise<void>;
}

/**
 * The sidecar-mode cache, and L1 of the shared one: a bounded in-process map (oldest entries evicted
 * first) with per-key single flight. An entry is never served at or after its absolute expiry.
 */
export class MemoryCredentialCache implements CredentialCache {
  private readonly entries = new Map<string, CachedCredential>();
  private readonly inflight = new Map<string, Promise<CachedCredential>>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly clock: () => number = Date.now,
    private readonly metrics?: Metrics,
  ) {}

  peek(key: string, now: number): CachedCredential | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt > now) return hit;
    this.entries.delete(key);
    return undefined;
  }

  /** Stores an entry that some other level already holds (used by layered caches). */
  store(key: string, entry: CachedCredential): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get(key: string, ttlSeconds: number, load: () => Promise<Loaded>): CachedCredential | Promise<CachedCredential> {
    const hit = this.peek(key, this.clock());
    if (hit) {
      this.metrics?.cacheLookup('l1');
      return hit;
    }
    const running = this.inflight.get(key);
    if (running) {
      this.metrics?.singleFlightWait('local');
      return running;
    }
    const attempt = load()
      .then((loaded) => {
        const entry = cacheEntry(loaded, this.clock(), ttlSeconds);
        this.store(key, entry);
        this.metrics?.cacheLookup('miss');
        return entry;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, attempt);
    return attempt;
  }

  /** Number of live entries (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
