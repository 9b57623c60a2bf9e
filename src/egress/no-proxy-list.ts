import { BlockList, isIP } from 'node:net';
import { AuthProxyError } from '../errors.js';

/**
 * `--upstream-no-proxy`: destinations dialled directly instead of through `--upstream-proxy`, with the
 * NO_PROXY semantics curl and most HTTP clients share. Entries, comma-separated:
 *   `corp.internal`   that host and every subdomain        `.corp.internal`  subdomains only
 *   `*`               every destination                     `host:port`       only that port
 *   `10.1.2.3`, `::1` that address                          `10.0.0.0/8`      that range
 * An IP or CIDR entry matches a destination that is that address, and also a name whose checked address
 * (the one the egress guard resolved and pinned) is in it, so internal names that resolve into a private
 * range can be listed by range. Matching is case-insensitive and ignores one trailing dot.
 */

/** One parsed entry. */
type Entry =
  | { readonly kind: 'all' }
  | { readonly kind: 'domain'; readonly name: string; readonly self: boolean; readonly port?: number }
  | { readonly kind: 'ip'; readonly list: BlockList; readonly port?: number };

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

const bad = (entry: string, why: string) =>
  new AuthProxyError('usage', `--upstream-no-proxy: "${entry.slice(0, 80)}" ${why}`);

function parsePort(entry: string, text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw bad(entry, 'has a port that is not 1..65535');
  return n;
}

function ipEntry(entry: string, address: string, prefix: number | undefined, port: number | undefined): Entry {
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  if (prefix !== undefined && !(prefix >= 0 && prefix <= max))
    throw bad(entry, `has a prefix length that is not 0..${max}`);
  const list = new BlockList();
  list.addSubnet(address, prefix ?? max, family === 6 ? 'ipv6' : 'ipv4');
  return port === undefined ? { kind: 'ip', list } : { kind: 'ip', list, port };
}

/** Parses one entry; throws a one-line usage error naming it. */
function parseEntry(raw: string): Entry {
  const entry = raw.trim().toLowerCase();
  if (entry === '*') return { kind: 'all' };
  if (/[\s/]/.test(entry) && !/^[0-9a-f:.]+\/\d{1,3}$/.test(entry))
    throw bad(raw, 'is not a host, .domain, host:port, IP, CIDR or *');
  const cidr = /^([0-9a-f:.]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    if (isIP(cidr[1]!) === 0) throw bad(raw, 'is not a CIDR (like 10.0.0.0/8)');
    return ipEntry(raw, cidr[1]!, Number(cidr[2]), undefined);
  }
  if (isIP(entry) !== 0) return ipEntry(raw, entry, undefined, undefined);
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    if (isIP(bracketed[1]!) !== 6) throw bad(raw, 'is not an IPv6 address in brackets');
    return ipEntry(
      raw,
      bracketed[1]!,
      undefined,
      bracketed[2] === undefined ? undefined : parsePort(raw, bracketed[2]),
    );
  }
  const colon = entry.lastIndexOf(':');
  const host = colon === -1 ? entry : entry.slice(0, colon);
  const port = colon === -1 ? undefined : parsePort(raw, entry.slice(colon + 1));
  if (isIP(host) === 4) return ipEntry(raw, host, undefined, port);
  const self = !host.startsWith('.') && !host.startsWith('*.');
  const name = host.replace(/^\*?\./, '').replace(/\.$/, '');
  if (name === '' || !name.split('.').every((l) => LABEL.test(l)))
    throw bad(raw, 'is not a host, .domain, host:port, IP, CIDR or *');
  return port === undefined ? { kind: 'domain', name, self } : { kind: 'domain', name, self, port };
}

/** A parsed `--upstream-no-proxy` list. */
export class NoProxyList {
  private constructor(private readonly entries: readonly Entry[]) {}

  /** Parses the comma-separated list; an empty text is an empty list (everything goes through the proxy). */
  static parse(text: string): NoProxyList {
    return new NoProxyList(
      text
        .split(',')
        .filter((s) => s.trim() !== '')
        .map(parseEntry),
    );
  }

  /** Whether the list names nothing. */
  get empty(): boolean {
    return this.entries.length === 0;
  }

  /**
   * Whether a destination is dialled directly: `host` as the client addressed it (a name or an IP literal,
   * IPv6 with or without brackets), its port, and the address the guard checked for it when known.
   */
  matches(host: string, port: number, address?: string): boolean {
    const bare = host
      .toLowerCase()
      .replace(/^\[(.*)\]$/, '$1')
      .replace(/\.$/, '');
    const addresses = [bare, address].filter((a): a is string => a !== undefined && isIP(a) !== 0);
    return this.entries.some((e) => {
      if (e.kind === 'all') return true;
      if (e.port !== undefined && e.port !== port) return false;
      if (e.kind === 'ip') return addresses.some((a) => e.list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4'));
      return (e.self && bare === e.name) || bare.endsWith(`.${e.name}`);
    });
  }
}
