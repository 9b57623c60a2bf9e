import { BlockList, isIP } from 'node:net';
import { AuthProxyError } from '../errors.js';
import { isHostname } from './host-pattern.js';
import type { ProxyConfig } from './schema.js';

/**
 * Where callback URLs stored through the admin API may point. Exists because a callback makes authproxy
 * POST (with the callback's request headers) to a URL an API caller chose: without a check, that caller
 * could aim it at the cloud metadata service or at internal hosts. Checked on the URL's literal host only:
 * a hostname that later resolves to a forbidden address (DNS rebinding) is out of reach of this check and
 * must be stopped at the network layer (egress policy of the authproxy pods).
 */
export interface CallbackPolicy {
  /** Why `url`'s host is refused, or undefined when it is allowed. Never echoes more than the host. */
  problem(url: string): string | undefined;
}

/** Cloud metadata endpoints by name (GCP, AWS, Azure/OpenStack aliases); refused whatever the allow-list says. */
const METADATA_NAMES = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
]);

/** Cloud metadata addresses and the link-local ranges they live in; refused whatever the allow-list says. */
function metadataAddresses(): BlockList {
  const list = new BlockList();
  list.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local: AWS/GCP/Azure 169.254.169.254, ECS 169.254.170.2
  list.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud
  list.addSubnet('fe80::', 10, 'ipv6'); // link-local
  list.addAddress('fd00:ec2::254', 'ipv6'); // AWS IMDS over IPv6
  list.addAddress('fd00:ec2::23', 'ipv6'); // AWS time sync / DNS over IPv6
  return list;
}

const ALWAYS_REFUSED = metadataAddresses();

/** An operator's allow-list entry: a hostname, `*.domain` (any depth, never the domain itself), or an IP/CIDR. */
type AllowEntry =
  | { kind: 'name'; name: string }
  | { kind: 'wildcard'; suffix: string }
  | { kind: 'ip'; list: BlockList };

function ipFamily(ip: string): 'ipv4' | 'ipv6' {
  return isIP(ip) === 6 ? 'ipv6' : 'ipv4';
}

function parseEntry(raw: string): AllowEntry | undefined {
  const entry = raw.toLowerCase();
  const cidr = /^\[?([0-9a-f:.]+)\]?(?:\/(\d{1,3}))?$/.exec(entry);
  if (cidr && isIP(cidr[1]!)) {
    const ip = cidr[1]!;
    const family = ipFamily(ip);
    const bits = cidr[2] === undefined ? (family === 'ipv4' ? 32 : 128) : Number(cidr[2]);
    if (bits > (family === 'ipv4' ? 32 : 128)) return undefined;
    const list = new BlockList();
    list.addSubnet(ip, bits, family);
    return { kind: 'ip', list };
  }
  if (entry.startsWith('*.'))
    return isHostname(entry.slice(2)) ? { kind: 'wildcard', suffix: entry.slice(1) } : undefined;
  return isHostname(entry) ? { kind: 'name', name: entry } : undefined;
}

/**
 * Parses `--callback-allow`: entries separated by commas or whitespace, each a hostname, `*.domain`, an
 * IP literal or a CIDR. An empty list means "no allow-list" (only metadata addresses are refused).
 */
export function parseCallbackAllowList(list: string, flag = '--callback-allow'): string[] {
  const entries = list.split(/[\s,]+/).filter(Boolean);
  const bad = entries.filter((e) => parseEntry(e) === undefined);
  if (bad.length > 0) {
    const problems = bad.map((b) => `${flag}: "${b}" is not a hostname, *.domain pattern, IP address or CIDR`);
    throw new AuthProxyError('usage', problems.join('; '), problems);
  }
  return entries;
}

/** Strips IPv6 brackets and one trailing dot, lower-cases. */
function bareHost(hostname: string): string {
  return hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
}

/** The address a literal stands for, unwrapping IPv4-mapped IPv6 (`::ffff:a9fe:a9fe` is 169.254.169.254). */
function unmapped(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (m) {
    const hi = parseInt(m[1]!, 16);
    const lo = parseInt(m[2]!, 16);
    return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted) return { ip: dotted[1]!, family: 'ipv4' };
  return { ip, family: ipFamily(ip) };
}

/**
 * Builds the policy: cloud metadata names and addresses (and any link-local literal) are always refused;
 * with a non-empty `allow` list, the URL's host must also match one of its entries (hostname patterns for
 * names, IPs/CIDRs for literals). The WHATWG URL parser has already turned `http://2852039166/` and other
 * IPv4 spellings into dotted form, so they are caught too.
 */
export function createCallbackPolicy(allow: readonly string[] = []): CallbackPolicy {
  const entries = allow.map((raw) => {
    const entry = parseEntry(raw);
    if (!entry)
      throw new AuthProxyError(
        'usage',
        `callback allow-list: "${raw}" is not a hostname, *.domain pattern, IP address or CIDR`,
      );
    return entry;
  });
  return {
    problem(url: string): string | undefined {
      let host: string;
      try {
        host = bareHost(new URL(url).hostname);
      } catch {
        return undefined; // the schema already reports URLs that do not parse
      }
      const literal = isIP(host) !== 0 ? unmapped(host) : undefined;
      if (literal ? ALWAYS_REFUSED.check(literal.ip, literal.family) : METADATA_NAMES.has(host)) {
        return `host "${host}" is a cloud metadata or link-local address and is never allowed`;
      }
      if (entries.length === 0) return undefined;
      const allowed = entries.some((e) => {
        if (e.kind === 'ip') return literal !== undefined && e.list.check(literal.ip, literal.family);
        if (literal) return false;
        return e.kind === 'name' ? host === e.name : host.endsWith(e.suffix);
      });
      return allowed ? undefined : `host "${host}" is not in the operator's callback allow-list`;
    },
  };
}

/**
 * The callbacks of a config whose URL `policy` refuses, one line each naming the field (`callbacks[i].url`).
 * Shared by the admin API (before storing) and every replica's registry (when it loads a stored config),
 * so a config written to Redis by other means is held to the same `--callback-allow`.
 */
export function callbackUrlProblems(config: Pick<ProxyConfig, 'callbacks'>, policy: CallbackPolicy): string[] {
  const problems: string[] = [];
  config.callbacks.forEach((cb, i) => {
    const problem = policy.problem(cb.url);
    if (problem) problems.push(`callbacks[${i}].url: ${problem}`);
  });
  return problems;
}
