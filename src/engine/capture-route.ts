import { BlockList, isIP } from 'node:net';
import type { CompiledPolicy } from '../policy/compiled.js';
import {
  decideAttributed,
  decideCaptured,
  type CapturedDecision,
  type OriginalDestination,
} from '../policy/capture.js';
import type { HostResolver } from '../egress/resolver.js';

/** A transparent-mode decision with nothing left to look up. */
export type SettledCapture = Exclude<CapturedDecision, { readonly outcome: 'attribute' }>;

/**
 * The transparent-mode decision for one redirected connection: the pure rules of `decideCaptured`, then,
 * for raw TCP, the attribution: the exact `host:PORT` names of the allow_list are resolved (with the
 * guard's resolver, answers cached for seconds) and the connection counts as going to the first one whose
 * answer holds its original destination address. No resolver, no attribution: raw TCP is refused.
 * Synchronous unless names have to be resolved.
 */
export function captureDecision(
  policy: CompiledPolicy | undefined,
  method: string,
  authority: string,
  original: OriginalDestination,
  resolver: HostResolver | undefined,
): SettledCapture | Promise<SettledCapture> {
  const decision = decideCaptured(policy, method, authority, original);
  if (decision.outcome !== 'attribute') return decision;
  if (!resolver) return decideAttributed(policy, undefined, decision.target) as SettledCapture;
  return attribute(decision.hosts, original.address, resolver).then(
    (host) => decideAttributed(policy, host, decision.target) as SettledCapture,
  );
}

/** The first of `hosts` that resolves to `address` (any answer of it), or undefined. Lookup failures count as no. */
async function attribute(
  hosts: readonly string[],
  address: string,
  resolver: HostResolver,
): Promise<string | undefined> {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  const answers = await Promise.all(hosts.map((h) => resolver.resolve(h).catch((): readonly string[] => [])));
  const index = answers.findIndex((list) => {
    const set = new BlockList();
    for (const a of list) if (isIP(a) !== 0) set.addAddress(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
    return set.check(address, family);
  });
  return index < 0 ? undefined : hosts[index];
}
