import { isIPv4, isIPv6 } from 'node:net';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const MAX_LOGGED = 256;

/**
 * The one form of a name that authproxy will certify: lower-case, without a trailing dot, either a DNS
 * hostname of LDH labels (what an SNI may carry, RFC 6066) or an IPv4/IPv6 literal. Returns undefined
 * for anything else, so that a wildcard, an empty name, a name with a port or a Unicode look-alike is
 * refused before the mint policy is even asked. Non-ASCII input is rejected before lower-casing, because
 * `toLowerCase` folds some non-ASCII letters (the Kelvin sign) into ASCII ones.
 */
export function canonicalHostname(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > 254 || !PRINTABLE_ASCII.test(name))
    return undefined;
  let host = name.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (isIPv4(host) || isIPv6(host)) return host;
  if (host.length === 0 || host.length > 253) return undefined;
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // A numeric last label makes "127.1" or "1.2.3" look like an IP address to some resolvers.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return undefined;
  return host;
}

/** Whether a canonical hostname is an IP literal (it then gets an IP SAN instead of a DNS SAN). */
export function isIpLiteral(host: string): boolean {
  return isIPv4(host) || isIPv6(host);
}

/**
 * A requested name made safe to put in a log line or an error: names come from the network, so they
 * are cut to a bounded length (pino escapes the characters).
 */
export function loggableName(name: string): string {
  return name.length > MAX_LOGGED ? `${name.slice(0, MAX_LOGGED)}…` : name;
}
