import { isIP } from 'node:net';
import { isHostname } from '../config/host-pattern.js';
import type { Target } from '../contracts/engine.js';

/** A request's target after normalisation (contract, Matching step 1). */
export type { Target } from '../contracts/engine.js';

/**
 * Normalises `:authority` as the contract says: lower-cased, one trailing dot and the port removed; the
 * port is the explicit one, else 443 for https and 80 for http. Returns undefined for an authority that
 * is not a plain host[:port] (userinfo, junk, bad port), which then matches nothing.
 */
export function normaliseAuthority(authority: string, scheme: string): Target | undefined {
  // Printable ASCII only, checked before lower-casing: toLowerCase folds the Kelvin sign (U+212A) into "k".
  if (!/^[\x21-\x7e]*$/.test(authority)) return undefined;
  let host = authority.toLowerCase();
  let portText: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    host = host.slice(1, end);
    if (isIP(host) !== 6) return undefined;
    if (rest) {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      portText = host.slice(colon + 1);
      host = host.slice(0, colon);
    }
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!isHostname(host) && isIP(host) !== 4) return undefined;
  }
  let port = scheme === 'http' ? 80 : 443;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  return { host, port };
}
