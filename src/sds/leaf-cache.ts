import { performance } from 'node:perf_hooks';
import { AuthProxyError, errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { Leaf, LeafMinter } from './ca.js';
import { systemClock, type Clock } from './clock.js';
import { canonicalHostname, loggableName } from './hostname.js';

/** Settings of the leaf cache. */
export interface LeafCacheOptions {
  /** Injectable for tests; the SDS streams plan their renewal pushes on the same clock. */
  readonly clock?: Clock;
  /** Most hostnames kept; the least recently used leaf goes first. Default 10,000. */
  readonly maxEntries?: number;
  readonly log?: Logger;
  /** After a failed background renewal, wait this long before the next one. Default 30 s. */
  readonly retryAfterMs?: number;
}

/** Default bound on cached leaves (each is a few hundred bytes of PEM plus a key). */
export const DEFAULT_MAX_LEAVES = 10_000;
/** A leaf this close to its notAfter is not handed out any more; a new one is minted instead. */
export const EXPIRY_MARGIN_MS = 60_000;
const DEFAULT_RETRY_AFTER_MS = 30_000;

/**
 * When a leaf should be replaced: once less than a third of its lifetime remains. That leaves hours of
 * slack (8 h for a 24 h leaf) for a renewal to reach Envoy before the old leaf expires.
 */
export function renewalTime(leaf: Leaf): number {
  return leaf.issuedAt + Math.floor(((leaf.notAfter - leaf.issuedAt) * 2) / 3);
}

/**
 * Leaf certificates per hostname, or per (sandbox, hostname) when the caller names a sandbox (SDS with
 * `--bind-sandbox-to-cert`: then no sidecar is ever handed, or reuses, another sandbox's leaf and key).
 * Envoy asks for a certificate during a TLS handshake, often for the
 * same host on many connections at once, and minting costs milliseconds of CPU: so each hostname is
 * minted once (concurrent askers share one mint, and share its failure), kept until a third of its
 * lifetime is left, then renewed in the background while the current leaf is still served. The cache
 * is bounded (LRU) so that many distinct hosts can't grow memory without limit.
 */
export class LeafCache {
  readonly clock: Clock;
  private readonly entries = new Map<string, Leaf>();
  private readonly pending = new Map<string, Promise<Leaf>>();
  private readonly failedAt = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly retryAfterMs: number;
  private minted = 0;

  constructor(
    private readonly minter: LeafMinter,
    private readonly options: LeafCacheOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_LEAVES;
    this.retryAfterMs = options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new AuthProxyError('usage', 'leaf cache size: must be a whole number >= 1');
  }

  /** Number of cached leaves. */
  get size(): number {
    return this.entries.size;
  }

  /** Number of successful mints since start (a metric, and what tests count). */
  get mintCount(): number {
    return this.minted;
  }

  /** The cached leaf for a hostname (of `sandbox`, when leaves are kept per sandbox), without minting or touching the LRU order. */
  peek(hostname: string, sandbox?: string): Leaf | undefined {
    const host = canonicalHostname(hostname);
    return host === undefined ? undefined : this.entries.get(cacheKey(host, sandbox));
  }

  /**
   * A leaf that is valid now: the cached one (renewed in the background if it is due), else a new one.
   * Rejects when the name is not a hostname or the mint fails; nothing is cached then. With `sandbox`,
   * the leaf is that sandbox's own: minted for it, and never handed to another sandbox.
   */
  async get(hostname: string, sandbox?: string): Promise<Leaf> {
    const host = this.canonical(hostname);
    const key = cacheKey(host, sandbox);
    const now = this.clock.now();
    const leaf = this.lookup(key);
    if (leaf && now < leaf.notAfter - EXPIRY_MARGIN_MS) {
      if (now >= renewalTime(leaf)) this.renewInBackground(key, host, now);
      return leaf;
    }
    return this.mint(key, host);
  }

  /**
   * A leaf that is not due for renewal: waits for the renewal if the cached leaf is due. The SDS streams
   * call this when their renewal timer fires, so that what they push is the new leaf.
   */
  async refresh(hostname: string, sandbox?: string): Promise<Leaf> {
    const host = this.canonical(hostname);
    const key = cacheKey(host, sandbox);
    const leaf = this.lookup(key);
    if (leaf && this.clock.now() < renewalTime(leaf)) return leaf;
    return this.mint(key, host);
  }

  private canonical(hostname: string): string {
    const host = canonicalHostname(hostname);
    if (host === undefined)
      throw new AuthProxyError(
        'usage',
        `hostname: ${JSON.stringify(loggableName(hostname))} is not a DNS name or IP literal`,
      );
    return host;
  }

  private lookup(key: string): Leaf | undefined {
    const leaf = this.entries.get(key);
    if (leaf) {
      this.entries.delete(key);
      this.entries.set(key, leaf);
    }
    return leaf;
  }

  private renewInBackground(key: string, host: string, now: number): void {
    if (this.pending.has(key)) return;
    const failed = this.failedAt.get(key);
    if (failed !== undefined && now - failed < this.retryAfterMs) return;
    this.mint(key, host).catch((err: unknown) => {
      this.options.log?.warn(
        { hostname: host, err: errorLine(err) },
        'sds: leaf renewal failed, still serving the current leaf',
      );
    });
  }

  /** Single flight: one mint per cache key at a time, whose result (or failure) every caller shares. */
  private mint(key: string, host: string): Promise<Leaf> {
    const inflight = this.pending.get(key);
    if (inflight) return inflight;
    const started = performance.now();
    const promise = Promise.resolve()
      .then(() => this.minter.mintLeaf(host, { now: this.clock.now() }))
      .then(
        (leaf) => {
          this.store(key, leaf);
          this.failedAt.delete(key);
          this.minted += 1;
          this.options.log?.info(
            {
              hostname: host,
              serial: leaf.serial,
              notAfter: new Date(leaf.notAfter).toISOString(),
              ms: Math.round(performance.now() - started),
            },
            'sds: minted leaf certificate',
          );
          return leaf;
        },
        (err: unknown) => {
          // Only a cached host is renewed in the background, so only it needs a back-off (keeps this map bounded).
          if (this.entries.has(key)) this.failedAt.set(key, this.clock.now());
          throw err;
        },
      )
      .finally(() => this.pending.delete(key));
    this.pending.set(key, promise);
    return promise;
  }

  private store(key: string, leaf: Leaf): void {
    this.entries.delete(key);
    this.entries.set(key, leaf);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
      this.failedAt.delete(oldest);
    }
  }
}

/** The cache key of a leaf: the hostname, prefixed by the sandbox when leaves are kept per sandbox (ids hold no space). */
function cacheKey(host: string, sandbox: string | undefined): string {
  return sandbox === undefined ? host : `${sandbox} ${host}`;
}
