import { BlockList, isIP } from 'node:net';
import { AuthProxyError } from '../errors.js';
import { classifyAddress, METADATA_ADDRESSES, type AddressClass } from './address-class.js';
import type { HostResolver } from './resolver.js';
import type { UpstreamRoute } from './upstream-proxy.js';

/** The answer of the guard for one destination. */
export type GuardResult =
  | { readonly ok: true /** The checked address: the one to dial. */; readonly address: string }
  | { readonly ok: false; readonly reason: 'private_destination' | 'unresolvable'; readonly detail: string };

interface Cidr {
  readonly network: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** Classes that a broad CIDR never opens: they open only when a CIDR inside them is named explicitly. */
const EXPLICIT_ONLY: ReadonlySet<AddressClass> = new Set(['loopback', 'metadata', 'unspecified']);

/** Parses `--egress-allow-cidrs`: comma-separated CIDRs or single addresses; errors name the entry. */
export function parseEgressAllowList(text: string): Cidr[] {
  const out: Cidr[] = [];
  for (const raw of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [address, bits, extra] = raw.split('/') as [string, string | undefined, ...string[]];
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
      throw new AuthProxyError(
        'usage',
        `--egress-allow-cidrs: "${raw.slice(0, 64)}" is not a CIDR (like 10.0.0.0/8 or fd00::/8) or an IP address`,
      );
    }
    out.push({ network: address, prefix, family: family === 6 ? 'ipv6' : 'ipv4' });
  }
  return out;
}

/**
 * Whether a named CIDR lies wholly inside a range that only explicit naming opens: 127.0.0.0/8 or
 * 0.0.0.0/8 (any prefix of at least 8), ::1 or ::, or one metadata address.
 */
function namesExplicitRange(cidr: Cidr): boolean {
  const cls = classifyAddress(cidr.network);
  if (cls === undefined || !EXPLICIT_ONLY.has(cls)) return false;
  const full = cidr.family === 'ipv4' ? 32 : 128;
  const widest = cls === 'metadata' || cidr.family === 'ipv6' ? full : 8;
  return cidr.prefix >= widest;
}

/**
 * Refuses destinations that resolve to loopback, private, link-local, CGNAT or cloud-metadata addresses,
 * whatever the access lists say, and tells the caller which address it checked so that exactly that one
 * is dialled (a DNS answer that changes between check and connect can't reach a private address).
 * `--egress-allow-cidrs` opens named ranges for self-hosted setups; loopback, unspecified and metadata
 * addresses open only when a CIDR inside them is named explicitly (0.0.0.0/0 opens neither).
 */
export class EgressGuard {
  private readonly opened = new BlockList();
  private readonly explicit = new BlockList();

  constructor(
    private readonly resolver: HostResolver,
    allow: readonly Cidr[] = [],
    /**
     * `--upstream-proxy` / `--upstream-no-proxy`: how checked destinations leave (Envoy's, through the
     * engine's route answer, and authproxy's own clients'); undefined = directly, at the checked address.
     */
    readonly upstream?: UpstreamRoute,
  ) {
    for (const cidr of allow) {
      this.opened.addSubnet(cidr.network, cidr.prefix, cidr.family);
      if (namesExplicitRange(cidr)) this.explicit.addSubnet(cidr.network, cidr.prefix, cidr.family);
    }
  }

  /** Resolves `host` with the guard's own resolver: transparent mode attributes raw TCP to a listed name with it. */
  resolve(host: string): Promise<readonly string[]> {
    return this.resolver.resolve(host);
  }

  /** Whether one address may be dialled. */
  allows(address: string): boolean {
    const cls = classifyAddress(address);
    if (cls === undefined) return false;
    if (cls === 'public') return true;
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return EXPLICIT_ONLY.has(cls) ? this.explicit.check(address, type) : this.opened.check(address, type);
  }

  /**
   * Checks a destination: an IP literal as it is (no DNS), a hostname by resolving it and checking every
   * address (one private answer refuses the host: the next lookup could return it). Prefers IPv4.
   */
  async check(host: string): Promise<GuardResult> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    if (isIP(bare) !== 0) {
      return this.allows(bare)
        ? { ok: true, address: bare }
        : { ok: false, reason: 'private_destination', detail: `${classifyAddress(bare)} address` };
    }
    let addresses: readonly string[];
    try {
      addresses = await this.resolver.resolve(bare);
    } catch (err) {
      return { ok: false, reason: 'unresolvable', detail: (err as NodeJS.ErrnoException).code ?? 'lookup failed' };
    }
    if (addresses.length === 0) return { ok: false, reason: 'unresolvable', detail: 'no address' };
    const refused = addresses.find((a) => !this.allows(a));
    if (refused !== undefined)
      return {
        ok: false,
        reason: 'private_destination',
        detail: `resolves to a ${classifyAddress(refused) ?? 'invalid'} address`,
      };
    return { ok: true, address: addresses.find((a) => isIP(a) === 4) ?? addresses[0]! };
  }
}

/** The addresses that `--egress-allow-cidrs` must name to reach cloud metadata (for docs and errors). */
export const METADATA_CIDRS = METADATA_ADDRESSES.map((a) => `${a}/${isIP(a) === 6 ? 128 : 32}`);
