import type { CompiledPolicy } from './compiled.js';
import { hostStanding } from './decide.js';
import { normaliseAuthority, type Target } from './host.js';

/** What the forward proxy does with a CONNECT (or an absolute-form plain-http request). */
export type RouteDecision =
  | { readonly outcome: 'intercept'; readonly target: Target }
  | { readonly outcome: 'tunnel'; readonly target: Target; readonly reason: 'no_proxy' | 'no_match' }
  | {
      readonly outcome: 'refuse';
      readonly status: 403;
      readonly reason: 'access_denied' | 'invalid_authority' | 'cleartext';
      readonly target: Target | undefined;
    };

/**
 * The intercept-or-tunnel choice made on Envoy's outer listener, so that a config change never needs an
 * Envoy restart. A CONNECT to a host that an enabled rule or callback names (and that no_proxy does not
 * list) is intercepted: its TLS is terminated and inner requests get credentials. Any other allowed host
 * is tunnelled untouched. A plain-http request through the proxy can never carry a credential, so one to
 * a credentialed host is refused (contract, Matching step 10).
 */
export function decideRoute(policy: CompiledPolicy | undefined, method: string, authority: string): RouteDecision {
  const connect = method === 'CONNECT';
  const target = normaliseAuthority(authority, connect ? 'https' : 'http');
  if (!target || (connect && !/:\d+$/.test(authority)))
    return { outcome: 'refuse', status: 403, reason: 'invalid_authority', target };
  if (!policy) return { outcome: 'tunnel', target, reason: 'no_match' };
  const standing = hostStanding(policy, target.host, target.port);
  if (standing === 'no_proxy') return { outcome: 'tunnel', target, reason: 'no_proxy' };
  if (standing === 'denied') return { outcome: 'refuse', status: 403, reason: 'access_denied', target };
  if (standing === 'plain') return { outcome: 'tunnel', target, reason: 'no_match' };
  return connect ? { outcome: 'intercept', target } : { outcome: 'refuse', status: 403, reason: 'cleartext', target };
}

/**
 * Whether authproxy may mint a leaf certificate for `hostname`: only for hosts it would intercept, so a
 * sandbox can't make it sign arbitrary names (and Envoy caches no certificate it will never use). SDS
 * knows no port, so a host counts when access_control lets it through on at least one port (an allow entry
 * `host:8443` must still get its certificate); CONNECT then checks the real port.
 */
export function mayIntercept(policy: CompiledPolicy | undefined, hostname: string): boolean {
  const target = normaliseAuthority(`${hostname}:443`, 'https');
  return (
    policy !== undefined && target !== undefined && hostStanding(policy, target.host, undefined) === 'credentialed'
  );
}
