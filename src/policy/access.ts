import { BlockList, isIP } from 'node:net';
import type { RE2JS } from 're2js';
import type { AccessEntry } from '../config/access-pattern.js';

/** Which ports an entry covers: every port (`true`), or a set of them. */
type Ports = true | Set<number>;

function addPort(current: Ports | undefined, port: number | undefined): Ports {
  if (port === undefined || current === true) return true;
  const set = current ?? new Set<number>();
  set.add(port);
  return set;
}

/** A port query meaning "on at least one port" (any entry for the host counts, whatever its port). */
const SOME_PORT = -1;
/** A port query meaning "on every port" (only port-less entries count). */
const EVERY_PORT = -2;

const covers = (ports: Ports | undefined, port: number): boolean =>
  ports === true || (ports !== undefined && (port === SOME_PORT || ports.has(port)));

/** One node of the reversed-character trie for `*.domain` entries. */
interface SuffixNode {
  readonly next: Map<number, SuffixNode>;
  /** Set when a `*.domain` entry ends here: the ports of names strictly below that domain. */
  ports: Ports | undefined;
}

const DOT = 46;

/**
 * The compiled form of one access_control list: answers "does this list name (host, port)?" for every
 * request, so it is built once per config compile and a lookup is cheap. Hostname entries (exact, `*.domain`,
 * `*`, `~regex`) match only hostnames; IP and CIDR entries match only IP-literal targets (no DNS lookup:
 * matching is on what the sandbox addressed). A lookup of a plain hostname allocates nothing unless the list
 * has regexes: exact names are one map probe, `*.domain` entries a walk of a reversed-character trie,
 * regexes (linear-time RE2) come last.
 */
export class AccessList {
  private readonly exact = new Map<string, Ports>();
  /** Exact hostnames by the ports that entries name explicitly (`host:PORT`): what raw TCP may be attributed to. */
  private readonly explicitPorts = new Map<number, string[]>();
  private readonly suffixes: SuffixNode = { next: new Map(), ports: undefined };
  private hasSuffixes = false;
  private anyHost: Ports | undefined;
  private readonly regexes: RE2JS[] = [];
  /** IP and CIDR entries without a port. */
  private readonly anyPortIps = new BlockList();
  /** IP entries with a port, by port. */
  private readonly portIps = new Map<number, BlockList>();
  private hasIps = false;

  /** Builds the matcher from parsed entries (see `parseAccessEntry`). */
  constructor(entries: Iterable<AccessEntry>) {
    for (const entry of entries) this.add(entry);
  }

  private add(entry: AccessEntry): void {
    switch (entry.kind) {
      case 'host':
        this.exact.set(entry.host, addPort(this.exact.get(entry.host), entry.port));
        if (entry.port !== undefined)
          this.explicitPorts.set(entry.port, [...(this.explicitPorts.get(entry.port) ?? []), entry.host]);
        return;
      case 'suffix': {
        let node = this.suffixes;
        for (let i = entry.domain.length - 1; i >= 0; i--) {
          const code = entry.domain.charCodeAt(i);
          let child = node.next.get(code);
          if (!child) node.next.set(code, (child = { next: new Map(), ports: undefined }));
          node = child;
        }
        node.ports = addPort(node.ports, entry.port);
        this.hasSuffixes = true;
        return;
      }
      case 'any':
        this.anyHost = addPort(this.anyHost, entry.port);
        return;
      case 'regex':
        this.regexes.push(entry.regex);
        return;
      case 'ip': {
        const family = entry.family === 4 ? 'ipv4' : 'ipv6';
        if (entry.port === undefined) this.anyPortIps.addAddress(entry.address, family);
        else {
          let list = this.portIps.get(entry.port);
          if (!list) this.portIps.set(entry.port, (list = new BlockList()));
          list.addAddress(entry.address, family);
        }
        this.hasIps = true;
        return;
      }
      case 'cidr':
        this.anyPortIps.addSubnet(entry.address, entry.prefix, entry.family === 4 ? 'ipv4' : 'ipv6');
        this.hasIps = true;
        return;
    }
  }

  /**
   * Whether the list names `host` (normalised: lower-case, no trailing dot, IPv6 without brackets) on `port`.
   * A host that a resolver would read as an IPv4 address in another notation (`2130706433`, `0x7f.1`,
   * `0177.0.0.1`) is treated as that address, so it can't slip past IP entries or be taken for a hostname.
   */
  matches(host: string, port: number): boolean {
    return this.lookup(host, port);
  }

  /** Whether the list names `host` on at least one port (for callers that don't know the port, such as SDS). */
  matchesOnSomePort(host: string): boolean {
    return this.lookup(host, SOME_PORT);
  }

  /** Whether the list names `host` on every port (an entry without a port covers it). */
  matchesOnEveryPort(host: string): boolean {
    return this.lookup(host, EVERY_PORT);
  }

  /**
   * The exact hostnames listed with exactly this port (`db.example.com:5432`), in list order. Transparent
   * mode attributes a raw TCP connection (which names no host) to one of them, and only to them.
   */
  hostsListedOnPort(port: number): readonly string[] {
    return this.explicitPorts.get(port) ?? [];
  }

  private lookup(host: string, port: number): boolean {
    const family = mayBeIp(host) ? isIP(host) : 0;
    if (family !== 0) return this.matchesIp(host, family === 4 ? 'ipv4' : 'ipv6', port);
    if (endsInNumber(host)) {
      const address = numericIPv4(host);
      return address !== undefined && this.matchesIp(address, 'ipv4', port);
    }
    if (covers(this.anyHost, port) || covers(this.exact.get(host), port)) return true;
    if (this.hasSuffixes && this.matchesSuffix(host, port)) return true;
    for (const regex of this.regexes) if (regex.test(host)) return true;
    return false;
  }

  private matchesSuffix(host: string, port: number): boolean {
    let node: SuffixNode | undefined = this.suffixes;
    for (let i = host.length - 1; i > 0; i--) {
      node = node.next.get(host.charCodeAt(i));
      if (!node) return false;
      // A `*.domain` entry covers names strictly below the domain: a label boundary must precede it.
      if (node.ports !== undefined && host.charCodeAt(i - 1) === DOT && covers(node.ports, port)) return true;
    }
    return false;
  }

  private matchesIp(address: string, family: 'ipv4' | 'ipv6', port: number): boolean {
    if (!this.hasIps) return false;
    try {
      if (this.anyPortIps.check(address, family)) return true;
      if (port !== SOME_PORT) return this.portIps.get(port)?.check(address, family) ?? false;
      for (const list of this.portIps.values()) if (list.check(address, family)) return true;
      return false;
    } catch {
      return false; // e.g. an IPv6 zone id, which no entry can name
    }
  }
}

/** A cheap pre-check: an IP literal contains ':' (IPv6) or ends in a digit (IPv4). */
function mayBeIp(host: string): boolean {
  const last = host.charCodeAt(host.length - 1);
  return (last >= 48 && last <= 57) || host.includes(':');
}

/** The WHATWG URL "ends in a number" test: the last label is all digits, or `0x` and hex digits. */
function endsInNumber(host: string): boolean {
  const start = host.lastIndexOf('.') + 1;
  if (start >= host.length) return false;
  let i = start;
  let hex = false;
  if (host.length - start >= 2 && host.charCodeAt(start) === 48 && host.charCodeAt(start + 1) === 120) {
    hex = true;
    i += 2;
  }
  for (; i < host.length; i++) {
    const c = host.charCodeAt(i);
    const digit = c >= 48 && c <= 57;
    if (!digit && !(hex && c >= 97 && c <= 102)) return false;
  }
  return true;
}

/** The dotted-quad form of a numeric host (`127.1` -> `127.0.0.1`), or undefined when it is no IPv4 address. */
function numericIPv4(host: string): string | undefined {
  try {
    const parsed = new URL(`http://${host}/`).hostname;
    return isIP(parsed) === 4 ? parsed : undefined;
  } catch {
    return undefined;
  }
}
