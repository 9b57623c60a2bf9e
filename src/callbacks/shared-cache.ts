import { randomBytes } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics, RefreshResult } from '../metrics/metrics.js';
import {
  cacheEntry,
  MemoryCredentialCache,
  type CachedCredential,
  type CredentialCache,
  type Loaded,
} from './cache.js';
import type { CacheSealer } from './cache-crypto.js';
import { CallbackFailure, type CallbackFailureReason } from './client.js';
import { CALLBACK_FAILURE_REASONS } from '../contracts/reasons.js';
import { FleetNotices } from './fleet-notices.js';
import { RedisLink, type LinkState } from './redis-link.js';
import { FleetStore } from './redis-store.js';
import { createRedisClient, DEFAULT_REDIS_TUNING, type RedisClientTuning } from './redis-url.js';

/** Settings of the shared cache; only `url`, `sealer` and `log` are required. */
export interface SharedCacheOptions {
  readonly url: string;
  readonly sealer: CacheSealer;
  readonly log: Logger;
  /** Namespace of every Redis key and of the notice channel; default `authproxy:`. */
  readonly prefix?: string;
  readonly metrics?: Metrics;
  /** Epoch ms; injectable so tests can move time. Values expire by this clock and by Redis' PEXPIREAT. */
  readonly clock?: () => number;
  /** Lock deadline: must exceed the callback timeout, or a slow but live call is taken over. */
  readonly lockMs?: number;
  readonly maxEntries?: number;
  /** Part of the TTL, at its end, in which a hit triggers a background refresh; default 0.2. */
  readonly refreshFraction?: number;
  /** Pause (by `clock`) before a key whose refresh failed or ran elsewhere is tried again; default 2 s. */
  readonly refreshRetryMs?: number;
  readonly tuning?: RedisClientTuning;
}

const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 1000;
const REASONS: ReadonlySet<string> = new Set<CallbackFailureReason>(CALLBACK_FAILURE_REASONS);

/** Redis could not be used for this lookup (or waiting took too long); it goes on with a direct call. */
class FleetUnavailable extends Error {
  constructor(readonly gaveUp = false) {
    super('redis unavailable');
  }
}

/**
 * The shared-service cache: L1 in process (bounded, entries die at their absolute expiry), L2 in Redis
 * (sealed values, same expiry on every replica), with fleet-wide single flight: of all concurrent misses
 * for one key on any replica, one takes a Redis lock and calls the endpoint; the others wait for its
 * notice (or poll) and read its value, or share its failure. A holder that dies loses its lock at the
 * deadline and a waiter takes over. A hit in the last `refreshFraction` of the TTL returns at once and
 * starts one background refresh for the fleet. While Redis is unusable, lookups use L1 and call
 * endpoints directly (single flight per process), and nothing is served past its expiry.
 */
export class SharedCredentialCache implements CredentialCache {
  private readonly l1: MemoryCredentialCache;
  private readonly inflight = new Map<string, Promise<CachedCredential>>();
  /** Per L1 entry: when (by `clock`) its next refresh may start; Infinity while one runs. */
  private readonly refreshAfter = new WeakMap<CachedCredential, number>();
  /** Per L1 entry: from when (by `clock`) a hit refreshes it ahead (the last `refreshFraction` of its own life). */
  private readonly refreshFrom = new WeakMap<CachedCredential, number>();
  private readonly clock: () => number;
  private readonly lockMs: number;
  private readonly windowMsPerTtlSecond: number;
  private readonly refreshRetryMs: number;

  private constructor(
    private readonly link: RedisLink,
    private readonly store: FleetStore,
    private readonly notices: FleetNotices,
    private readonly options: SharedCacheOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.l1 = new MemoryCredentialCache(options.maxEntries ?? 10_000, this.clock);
    this.lockMs = options.lockMs ?? 6000;
    this.windowMsPerTtlSecond = (options.refreshFraction ?? 0.2) * 1000;
    this.refreshRetryMs = options.refreshRetryMs ?? 2000;
  }

  /** Connects to Redis (in the background: the cache works degraded until the connection is ready). */
  static connect(options: SharedCacheOptions): SharedCredentialCache {
    const prefix = options.prefix ?? 'authproxy:';
    if (/[{}\s]/.test(prefix) || prefix.length > 64)
      throw new AuthProxyError('usage', '--redis-prefix: at most 64 characters, no braces or spaces');
    const client = createRedisClient(options.url, options.tuning ?? DEFAULT_REDIS_TUNING);
    const store = new FleetStore(client, prefix);
    const notices = new FleetNotices();
    const link = new RedisLink(client, store.channel, (name) => notices.deliver(name), options.log, options.metrics);
    return new SharedCredentialCache(link, store, notices, options);
  }

  get(key: string, ttlSeconds: number, load: () => Promise<Loaded>): CachedCredential | Promise<CachedCredential> {
    const now = this.clock();
    const hit = this.l1.peek(key, now);
    if (hit) {
      this.options.metrics?.cacheLookup('l1');
      if (now >= (this.refreshFrom.get(hit) ?? hit.expiresAt - ttlSeconds * this.windowMsPerTtlSecond))
        this.refreshAhead(key, ttlSeconds, load, hit, now);
      return hit;
    }
    const running = this.inflight.get(key);
    if (running) {
      this.options.metrics?.singleFlightWait('local');
      return running;
    }
    const attempt = this.resolve(key, ttlSeconds, load).finally(() => this.inflight.delete(key));
    this.inflight.set(key, attempt);
    return attempt;
  }

  /** Redis as this replica sees it: `up`, `down` (degraded) or `starting`. */
  get redisState(): LinkState {
    return this.link.status;
  }

  /** Waits (at most `ms`) for the first Redis connection; the cache works without it meanwhile. */
  ready(ms: number): Promise<boolean> {
    return this.link.ready(ms);
  }

  /** Drops the Redis connections without releasing anything, as a crash would, and empties L1. */
  async close(): Promise<void> {
    await this.link.close();
    await this.l1.close();
  }

  private async resolve(key: string, ttl: number, load: () => Promise<Loaded>): Promise<CachedCredential> {
    if (!this.link.up) return this.counted(this.direct(key, ttl, load));
    const name = this.options.sealer.keyName(key);
    const token = randomBytes(12).toString('base64url');
    // A command that timed out may only mean this event loop was busy: one more try before calling directly.
    for (let attempt = 0; attempt < 2 && this.link.up; attempt++) {
      try {
        return await this.viaFleet(key, name, token, ttl, load);
      } catch (err) {
        if (!(err instanceof FleetUnavailable)) throw err;
        if (err.gaveUp) break;
      }
    }
    // Direct call, still through Redis when it answers: a timed-out acquire may have taken the lock with
    // our token on the server, and releasing it (with the value) keeps other replicas from waiting it out.
    return this.counted(this.callAndShare(key, name, token, ttl, load));
  }

  /** A call without Redis: the value lives in L1 only. */
  private async direct(key: string, ttl: number, load: () => Promise<Loaded>): Promise<CachedCredential> {
    const entry = cacheEntry(await load(), this.clock(), ttl);
    this.keep(key, entry, ttl);
    return entry;
  }

  /** Counts a lookup that this replica answered by calling the endpoint. */
  private async counted(call: Promise<CachedCredential>): Promise<CachedCredential> {
    const entry = await call;
    this.options.metrics?.cacheLookup('miss');
    return entry;
  }

  private async viaFleet(
    key: string,
    name: string,
    token: string,
    ttl: number,
    load: () => Promise<Loaded>,
  ): Promise<CachedCredential> {
    const ticket = this.notices.open(name);
    // One lock deadline, plus a little: by then a dead holder's lock has expired and been taken over. Waiting
    // longer would push the answer past Envoy's message_timeout (a 504 instead of the contract's 502).
    const giveUpAt = Date.now() + this.lockMs + 500;
    let skipValue = false;
    let waitedFor = '';
    let pause = FIRST_PAUSE_MS;
    let unusable: string | undefined; // a stale or rejected value already looked at
    try {
      for (;;) {
        if (!this.link.up) throw new FleetUnavailable();
        ticket.arm();
        const r = await this.redis(() => this.store.acquire(name, token, this.lockMs, skipValue, waitedFor));
        if (r.kind === 'failed') {
          this.options.metrics?.sharedFailure();
          throw new CallbackFailure(
            REASONS.has(r.reason) ? (r.reason as CallbackFailureReason) : 'transport',
            'the concurrent call for this key failed',
          );
        }
        if (r.kind === 'value' || r.kind === 'acquired') {
          const found = r.value === undefined || r.value === unusable ? undefined : this.openValue(name, r.value, 0);
          unusable = r.value;
          if (found) {
            if (r.kind === 'acquired') await this.quietly(() => this.store.abort(name, token, ''));
            this.keep(key, found, ttl);
            this.options.metrics?.cacheLookup('l2');
            return found;
          }
          if (r.kind === 'acquired') return await this.counted(this.callAndShare(key, name, token, ttl, load));
          skipValue = true;
          continue;
        }
        if (waitedFor === '') this.options.metrics?.singleFlightWait('fleet');
        if (r.token !== waitedFor) [waitedFor, pause] = [r.token, FIRST_PAUSE_MS];
        if (Date.now() >= giveUpAt) throw new FleetUnavailable(true);
        await ticket.wait(Math.min(pause, r.pttl + 5));
        pause = Math.min(pause * 2, MAX_PAUSE_MS);
        skipValue = false;
      }
    } finally {
      ticket.close();
    }
  }

  /** Calls the endpoint while holding the lock; shares the value, or the failure with this attempt's waiters. */
  private async callAndShare(
    key: string,
    name: string,
    token: string,
    ttl: number,
    load: () => Promise<Loaded>,
  ): Promise<CachedCredential> {
    let loaded: Loaded;
    try {
      loaded = await load();
    } catch (err) {
      if (this.link.up)
        await this.quietly(() => this.store.abort(name, token, err instanceof CallbackFailure ? err.reason : ''));
      throw err;
    }
    const entry = cacheEntry(loaded, this.clock(), ttl);
    this.keep(key, entry, ttl);
    if (this.link.up) {
      const sealed = this.options.sealer.seal(this.store.valueKey(name), entry);
      await this.quietly(() => this.store.commit(name, sealed, entry.expiresAt, token));
    }
    return entry;
  }

  private refreshAhead(
    key: string,
    ttl: number,
    load: () => Promise<Loaded>,
    current: CachedCredential,
    now: number,
  ): void {
    if (now < (this.refreshAfter.get(current) ?? 0)) return;
    this.refreshAfter.set(current, Infinity);
    void this.refresh(key, ttl, load, current).then((result) => {
      this.options.metrics?.refresh(result);
      this.refreshAfter.set(current, this.clock() + this.refreshRetryMs);
    });
  }

  private async refresh(
    key: string,
    ttl: number,
    load: () => Promise<Loaded>,
    current: CachedCredential,
  ): Promise<RefreshResult> {
    try {
      if (!this.link.up) {
        await this.direct(key, ttl, load);
        return 'ok';
      }
      const name = this.options.sealer.keyName(key);
      const token = randomBytes(12).toString('base64url');
      let r = await this.redis(() => this.store.acquire(name, token, this.lockMs, false, ''));
      let seen: string | undefined;
      if (r.kind === 'value') {
        if (this.adopt(key, name, r.value, current, ttl)) return 'adopted';
        seen = r.value;
        r = await this.redis(() => this.store.acquire(name, token, this.lockMs, true, ''));
      }
      if (r.kind !== 'acquired') return 'skipped';
      if (r.value !== undefined && r.value !== seen && this.adopt(key, name, r.value, current, ttl)) {
        await this.quietly(() => this.store.abort(name, token, ''));
        return 'adopted';
      }
      await this.callAndShare(key, name, token, ttl, load);
      return 'ok';
    } catch (err) {
      if (!(err instanceof FleetUnavailable)) {
        const reason = err instanceof CallbackFailure ? err.reason : 'internal';
        this.options.log.warn({ reason }, 'callback refresh failed: the cached credential is served until it expires');
      }
      return 'failed';
    }
  }

  /**
   * Puts an entry into L1 and notes when its refresh-ahead window opens: the last `refreshFraction` of the
   * life it has from now (capped by the TTL), so a credential that lives shorter than the TTL (a 15-minute
   * cloud token under a 1-hour TTL) is refreshed near its own end, not on every hit.
   */
  private keep(key: string, entry: CachedCredential, ttl: number): void {
    const life = Math.min(ttl * 1000, entry.expiresAt - this.clock());
    this.refreshFrom.set(entry, entry.expiresAt - life * (this.windowMsPerTtlSecond / 1000));
    this.l1.store(key, entry);
  }

  /** Takes a Redis value into L1 if it is authentic and fresher than what this replica holds. */
  private adopt(key: string, name: string, sealed: string, current: CachedCredential, ttl: number): boolean {
    const found = this.openValue(name, sealed, current.expiresAt);
    if (found) this.keep(key, found, ttl);
    return found !== undefined;
  }

  /** Opens a Redis value; undefined when forged, moved, corrupt, or not expiring after `notBefore`/now. */
  private openValue(name: string, sealed: string, notBefore: number): CachedCredential | undefined {
    const entry = this.options.sealer.open(this.store.valueKey(name), sealed);
    if (!entry) {
      this.options.metrics?.rejectedValue();
      return undefined;
    }
    return entry.expiresAt > Math.max(notBefore, this.clock()) ? entry : undefined;
  }

  private async redis<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.link.failed(err);
      throw new FleetUnavailable();
    }
  }

  private async quietly(op: () => Promise<unknown>): Promise<void> {
    await op().catch((err: unknown) => this.link.failed(err));
  }
}
