import { AuthProxyError, errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyConfig } from '../config/schema.js';
import type { SandboxLinks } from '../config/compile-rewrite.js';
import { classifyAddress } from '../egress/address-class.js';
import { isNewer } from './record.js';
import { linkPorts, type RedisLinkStore, type StoredNet } from './link-store.js';

/** Address classes a sandbox address may never be: nothing of a sandbox's listens there, and they reach the node or the cloud. */
const NEVER = new Set(['unspecified', 'link_local', 'metadata', 'multicast', 'reserved']);

/**
 * Why `address` can't be where a sandbox's services listen (one line), or undefined. Private and CGNAT
 * addresses are what pods have; loopback would be the calling sidecar's own host (its Envoy admin port,
 * authproxy), so it is refused unless `--egress-allow-cidrs` names it (`allowLoopback`, tests).
 */
export function sandboxAddressProblem(
  address: string,
  allowLoopback: (address: string) => boolean,
): string | undefined {
  const cls = classifyAddress(address);
  if (cls === undefined) return 'must be an IP address (no hostname: nothing to resolve, nothing to rebind)';
  if (NEVER.has(cls)) return `is a ${cls.replace('_', '-')} address, which no sandbox can be reached at`;
  if (cls === 'loopback' && !allowLoopback(address))
    return 'is a loopback address: that is the calling sidecar itself (allowed only when --egress-allow-cidrs names it)';
  return undefined;
}

/** What the network table needs around it. */
export interface SandboxNetworkOptions {
  /** A sandbox's tenant now (its stored record's, else the serve default): a link never crosses tenants. */
  readonly tenantOf: (id: string) => string;
  /** Whether a loopback address may be dialled (`--egress-allow-cidrs` names it). */
  readonly allowLoopback: (address: string) => boolean;
}

/**
 * A replica's live copy of every sandbox's network record, read per request by `rewrite: {sandbox}` rules.
 * Exists so that a link or address change applies to the very next request on every replica: a compiled
 * rule keeps only the target's id and port and asks `dial` each time, so nothing compiled can point at a
 * removed link or an old address (a recompile that kept the last good config could). Follows the store
 * like the registry does: an announcement (`net/<id>`) refreshes one record, a resync all of them.
 */
export class SandboxNetwork implements SandboxLinks {
  private readonly nets = new Map<string, StoredNet>();
  /** Stamps refused as older than what was applied: not fetched (and logged) again at every resync. */
  private readonly refused = new Map<string, string>();

  constructor(
    readonly store: RedisLinkStore,
    private readonly log: Logger,
    private readonly options: SandboxNetworkOptions,
  ) {}

  /**
   * The address to dial for `from` -> `to`:`port` over plain http, or undefined: no link from `from` to
   * `to` names the port, `to` has no address (or one no longer allowed), or the two are in different tenants.
   */
  dial(from: string, to: string, port: number): string | undefined {
    if (!linkPorts(this.nets.get(from), to)?.includes(port)) return undefined;
    const address = this.nets.get(to)?.address;
    if (address === undefined || sandboxAddressProblem(address, this.options.allowLoopback) !== undefined)
      return undefined;
    return this.options.tenantOf(from) === this.options.tenantOf(to) ? address : undefined;
  }

  /** Why `from` can't reach `to`:`port` now (for the admin API's 422 and the log), or undefined when it can. */
  whyNot(from: string, to: string, port: number): string | undefined {
    if (!linkPorts(this.nets.get(from), to)?.includes(port))
      return `no link lets sandbox "${from}" reach sandbox "${to}" on port ${port}`;
    if (this.nets.get(to)?.address === undefined)
      return `sandbox "${to}" has no address (PUT /v1/sandboxes/${to}/address)`;
    if (this.dial(from, to, port) === undefined)
      return `sandbox "${to}" can't be reached from sandbox "${from}" (its address is refused, or they are in different tenants)`;
    return undefined;
  }

  /** Why `address` can't be a sandbox's address on this deployment (the admin API's 422), or undefined. */
  addressProblem(address: string): string | undefined {
    return sandboxAddressProblem(address, this.options.allowLoopback);
  }

  /**
   * Re-reads the records a config write depends on (its own links, each target's address) before the admin
   * API checks it, so a link written a moment ago through another replica counts.
   */
  async refreshFor(from: string, config: ProxyConfig): Promise<void> {
    const targets = config.rules.flatMap((r) =>
      r.type === 'rewrite' && r.rewrite.sandbox !== undefined ? [r.rewrite.sandbox] : [],
    );
    if (targets.length > 0) await Promise.all([from, ...new Set(targets)].map((id) => this.refresh(id)));
  }

  /** Reads one sandbox's record from the store (after its announcement, a resync, or the admin API's own write). */
  async refresh(id: string): Promise<void> {
    let stored: StoredNet | undefined;
    try {
      stored = await this.store.get(id);
    } catch (err) {
      if (err instanceof AuthProxyError) {
        // A record that doesn't authenticate is no evidence of any link: fail closed, drop what was held.
        this.nets.delete(id);
        this.log.error(
          { sandbox: id, err: errorLine(err) },
          'stored sandbox links refused; this sandbox has no links or address on this replica',
        );
      } else
        this.log.warn(
          { sandbox: id, err: errorLine(err) },
          'cannot read stored sandbox links; keeping the ones loaded',
        );
      return;
    }
    const held = this.nets.get(id);
    if (!stored) {
      this.nets.delete(id);
      return;
    }
    if (held && held.stamp !== stored.stamp && !isNewer(stored.order, held.order)) {
      this.refused.set(id, stored.stamp);
      this.log.error(
        { sandbox: id },
        'stored sandbox links are older than the ones this replica applied (replayed into Redis?); refused',
      );
      return;
    }
    this.nets.set(id, stored);
    this.refused.delete(id);
  }

  /** Brings every record up to the store's stamps. */
  async resync(): Promise<void> {
    let versions: Map<string, string>;
    try {
      versions = await this.store.versions();
    } catch (err) {
      this.log.warn({ err: errorLine(err) }, 'sandbox links resync failed; serving the links already loaded');
      return;
    }
    for (const id of [...this.nets.keys()]) if (!versions.has(id)) this.nets.delete(id);
    const stale = [...versions]
      .filter(([id, stamp]) => this.nets.get(id)?.stamp !== stamp && this.refused.get(id) !== stamp)
      .map(([id]) => id);
    for (let i = 0; i < stale.length; i += 100)
      await Promise.all(stale.slice(i, i + 100).map((id) => this.refresh(id)));
  }
}
