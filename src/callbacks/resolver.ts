import type { CompiledCallback } from '../policy/compiled.js';
import type { Target } from '../policy/host.js';
import type { CachedCredential, CredentialCache } from './cache.js';
import {
  callCallback,
  CallbackFailure,
  DEFAULT_CALLBACK_LIMITS,
  type CallbackIdentity,
  type CallbackLimits,
  type CallbackRequestSnapshot,
  type ResolvedHeaders,
} from './client.js';
import type { CallbackSigner } from './signer.js';
import type { Metrics } from '../metrics/metrics.js';
import { DEFAULT_IDENTITY, type IdentitySource } from '../contracts/identity.js';

/**
 * The cache key of the contract: one entry per (sandbox, callback, host, port). Joined with newlines,
 * which no sandbox id or callback id contains (and the port is last and numeric), so it is unambiguous;
 * a plain concatenation, because this runs on every warm request and JSON.stringify costs ~30x more.
 */
export function callbackCacheKey(sandboxId: string, callback: CompiledCallback, target: Target): string {
  return `${sandboxId}\n${callback.id}\n${target.host}\n${target.port}`;
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
    private readonly makeLoad: (
      callback: CompiledCallback,
      target: Target,
      sandboxId: string,
    ) => () => Promise<ResolvedHeaders>,
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
      slot = {
        key: callbackCacheKey(sandboxId, callback, target),
        load: this.makeLoad(callback, { host: target.host, port: target.port }, sandboxId),
      };
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
 * The sandbox's identity (tenant, organization) is looked up in `identities` when the endpoint is called,
 * so a tenant changed through the admin API is sent from the next call on; without a source, every
 * sandbox is in tenant `default`.
 */
export class CallbackResolver {
  constructor(
    private readonly cache: CredentialCache,
    private readonly signer: CallbackSigner,
    private readonly limits: CallbackLimits = DEFAULT_CALLBACK_LIMITS,
    private readonly metrics?: Metrics,
    private readonly identities?: IdentitySource,
  ) {}

  private readonly keys = new KeyMemo((callback, target, sandboxId) => () => this.call(callback, target, sandboxId));

  lookup(callback: CompiledCallback, target: Target, sandboxId: string): CachedCredential | Promise<CachedCredential> {
    const slot = this.keys.slot(sandboxId, callback, target);
    return this.cache.get(slot.key, callback.ttlSeconds, slot.load);
  }

  /** One uncached call with a request snapshot in the body (a `full_request` callback), counted and timed. */
  callFull(
    callback: CompiledCallback,
    target: Target,
    sandboxId: string,
    request: CallbackRequestSnapshot,
  ): Promise<ResolvedHeaders> {
    return this.call(callback, target, sandboxId, request);
  }

  /** The `identity` of a callback body for this sandbox, as it is now. */
  identityOf(sandboxId: string): CallbackIdentity {
    const { tenantId, organizationId } = this.identities?.identityFor(sandboxId) ?? DEFAULT_IDENTITY;
    return organizationId === undefined
      ? { tenant_id: tenantId, sandbox_id: sandboxId }
      : { tenant_id: tenantId, sandbox_id: sandboxId, organization_id: organizationId };
  }

  /** One call to the endpoint, counted and timed (the cache decides when this happens). */
  private async call(callback: CompiledCallback, target: Target, sandboxId: string, request?: CallbackRequestSnapshot) {
    const started = performance.now();
    try {
      const headers = await callCallback(
        callback,
        target,
        this.identityOf(sandboxId),
        this.signer,
        this.limits,
        request,
      );
      this.metrics?.callbackCall((performance.now() - started) / 1000);
      return headers;
    } catch (err) {
      this.metrics?.callbackCall(
        (performance.now() - started) / 1000,
        err instanceof CallbackFailure ? err.reason : 'transport',
      );
      throw err;
    }
  }
}
