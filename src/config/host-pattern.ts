import { getPublicSuffix } from 'tldts';
import { isIP } from 'node:net';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** True when `name` is a syntactically valid DNS hostname (lower-case, no trailing dot). */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/**
 * Checks one host pattern of the contract (an exact hostname, or `*.` and a registrable domain of at
 * least two labels that is not a public suffix). Returns an error message, or undefined when valid.
 * Exists so that schema validation and the admin API share one definition.
 */
export function hostPatternProblem(pattern: string, allowIp: boolean): string | undefined {
  if (pattern !== pattern.trim() || pattern.length === 0) return 'must be a non-empty hostname without spaces';
  if (/[/:@?#]/.test(pattern) && !(allowIp && isIP(stripBrackets(pattern)) !== 0)) {
    return `${q(pattern)} must be a bare hostname (no scheme, port or path)`;
  }
  if (isIP(stripBrackets(pattern)) !== 0)
    return allowIp ? undefined : `${q(pattern)} is an IP address: only no_proxy takes IP literals`;
  const lower = pattern.toLowerCase();
  if (lower.endsWith('.')) return `${q(pattern)} must not end with a dot`;
  if (lower.startsWith('*.')) {
    const domain = lower.slice(2);
    if (domain.includes('*')) return `${q(pattern)} may contain "*" only as its first label`;
    if (!isHostname(domain)) return `${q(pattern)} is not a valid wildcard pattern`;
    if (domain.split('.').length < 2)
      return `${q(pattern)} is too broad: a wildcard needs a domain of at least two labels`;
    if (/^\d+$/.test(domain.slice(domain.lastIndexOf('.') + 1)))
      return `${q(pattern)} looks like part of an IP address, not a domain`;
    const suffix = getPublicSuffix(domain, { allowPrivateDomains: true });
    if (suffix === domain) return `${q(pattern)} is too broad: ${domain} is a public suffix`;
    return undefined;
  }
  if (lower.includes('*')) return `${q(pattern)} may contain "*" only as "*.domain"`;
  if (!isHostname(lower)) return `${q(pattern)} is not a valid hostname`;
  return undefined;
}

/** A pattern quoted for a problem line: control characters escaped, cut to about 80 characters. */
export function q(pattern: string): string {
  const cut = pattern.length > 80 ? `${pattern.slice(0, 77)}...` : pattern;
  return `"${cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

function stripBrackets(s: string): string {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
}

/** The canonical form a valid pattern is stored in (lower-case, IPv6 without brackets). */
export function canonicalPattern(pattern: string): string {
  return stripBrackets(pattern.toLowerCase());
}
