import type { EgressGuard } from './guard.js';

type LookupCallback = (
  err: Error | null,
  address: string | Array<{ address: string; family: number }>,
  family?: number,
) => void;

/** A `lookup` for node:net / undici connect options (both call it with `all` set or not). */
export type GuardedLookup = (hostname: string, options: { all?: boolean }, cb: LookupCallback) => void;

/**
 * A DNS `lookup` that resolves through the egress guard and answers with exactly the address it checked,
 * so a client that connects with it can't be pointed at a private or metadata address by DNS (rebinding
 * included). Exists so every outbound client authproxy opens itself (callbacks, cloud token and STS
 * endpoints) pins the same way. `refuse` builds the error for a refused or unresolvable host from a
 * short reason ("does not resolve", or the guard's detail), never a secret.
 */
export function guardedLookup(guard: EgressGuard, refuse: (reason: string) => Error): GuardedLookup {
  return (hostname, options, cb) => {
    guard.check(hostname).then(
      (r) => {
        if (!r.ok) return cb(refuse(r.reason === 'unresolvable' ? 'does not resolve' : r.detail), '');
        const family = r.address.includes(':') ? 6 : 4;
        return options.all ? cb(null, [{ address: r.address, family }]) : cb(null, r.address, family);
      },
      (err: Error) => cb(err, ''),
    );
  };
}
