import { isIP } from 'node:net';
import type { CompiledPolicy } from './compiled.js';
import { decideRoute, type RouteDecision } from './connect.js';
import { normaliseAuthority, type Target } from './host.js';

/** How Envoy's transparent listener classified a redirected connection. */
export type CaptureKind = 'tls' | 'http' | 'tcp';

/**
 * Where a redirected connection was going (the socket's original destination, as Envoy's `original_dst`
 * listener filter restored it) and what it carried. In transparent mode this, not a name, is what the
 * private-destination guard checks and what Envoy dials: the client already resolved the name.
 */
export interface OriginalDestination {
  /** IPv4 or IPv6 address, without brackets. */
  readonly address: string;
  readonly port: number;
  readonly kind: CaptureKind;
}

/** Why a captured connection is refused before (or instead of) the forward proxy's decision. */
export type CaptureRefusal = 'no_sni' | 'ip_literal' | 'protocol_mismatch' | 'raw_tcp_denied' | 'invalid_authority';

/** The transparent-mode outcome: the forward proxy's decision, or a raw TCP connection still to attribute. */
export type CapturedDecision =
  | RouteDecision
  | {
      readonly outcome: 'refuse';
      readonly status: 403;
      readonly reason: CaptureRefusal;
      readonly target: Target | undefined;
    }
  /** Raw TCP: allowed only if `address` is what one of `hosts` resolves to (see `attributeRawTcp`). */
  | { readonly outcome: 'attribute'; readonly hosts: readonly string[]; readonly target: Target };

/** Ports that carry only HTTP and TLS in transparent mode (LangChain's rule): raw TCP there is dropped. */
const WEB_PORTS: ReadonlySet<number> = new Set([80, 443]);

const refuse = (reason: CaptureRefusal, target?: Target): CapturedDecision => ({
  outcome: 'refuse',
  status: 403,
  reason,
  target,
});
const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/**
 * The transparent-mode rules in front of the one forward-proxy decision (`decideRoute`), as a pure
 * function: TLS is decided as a CONNECT to SNI:port (no SNI, or an IP as SNI, is dropped); plain HTTP is
 * decided on its Host with the original port (a Host that is an IP literal is judged as the address
 * connected to, and only on port 80); raw TCP never reaches 80 or 443, needs an allow_list, and must be
 * attributable to an exact `host:PORT` entry, which the caller checks by resolving those names.
 */
export function decideCaptured(
  policy: CompiledPolicy | undefined,
  method: string,
  authority: string,
  original: OriginalDestination,
): CapturedDecision {
  switch (original.kind) {
    case 'tls': {
      const target = normaliseAuthority(authority, 'https');
      if (method !== 'CONNECT' || !target || isIP(target.host) !== 0) return refuse('no_sni', target);
      if (target.port !== original.port) return refuse('invalid_authority', target);
      return decideRoute(policy, 'CONNECT', authority);
    }
    case 'http': {
      const target = normaliseAuthority(authority, 'http');
      if (method === 'CONNECT' || !target) return refuse('invalid_authority', target);
      if (isIP(target.host) !== 0 && original.port !== 80) return refuse('ip_literal', target);
      const host = isIP(target.host) !== 0 ? original.address : target.host;
      return decideRoute(policy, method, hostPort(host, original.port));
    }
    case 'tcp': {
      const target = { host: original.address, port: original.port };
      if (WEB_PORTS.has(original.port)) return refuse('protocol_mismatch', target);
      if (policy?.access?.mode !== 'allow') return refuse('raw_tcp_denied', target);
      const hosts = policy.access.list.hostsListedOnPort(original.port);
      return hosts.length === 0 ? refuse('raw_tcp_denied', target) : { outcome: 'attribute', hosts, target };
    }
  }
}

/**
 * Finishes a raw TCP decision once the name it is attributed to is known: the forward proxy's decision
 * for `host:port` (access_control, no_proxy), except that raw bytes are never intercepted, only tunnelled.
 * `host` undefined (no listed name resolves to the address) refuses: an IP literal opens no raw TCP.
 */
export function decideAttributed(
  policy: CompiledPolicy | undefined,
  host: string | undefined,
  target: Target,
): CapturedDecision {
  if (host === undefined) return refuse('raw_tcp_denied', target);
  const decision = decideRoute(policy, 'CONNECT', hostPort(host, target.port));
  return decision.outcome === 'intercept'
    ? { outcome: 'tunnel', target: decision.target, reason: 'no_match' }
    : decision;
}
