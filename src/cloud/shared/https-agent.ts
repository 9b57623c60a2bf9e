import { Agent } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { EgressGuard } from '../../egress/guard.js';
import { guardedLookup } from '../../egress/lookup.js';

/** Why an outbound call of authproxy's own (a token or STS endpoint) was not made: the guard refused its host. */
export class EgressRefusedError extends Error {
  readonly code = 'EAUTHPROXY_EGRESS';
}

/**
 * A keep-alive `node:https` Agent whose connections resolve through the egress guard and dial exactly the
 * address it checked (certificates are still verified against the hostname). Exists for the cloud SDK
 * clients authproxy runs itself (the AWS SDK's NodeHttpHandler takes an `httpsAgent`; gaxios takes an
 * `agent`), so they are pinned like callbacks. Without a guard: a plain keep-alive agent.
 */
export function guardedHttpsAgent(guard: EgressGuard | undefined): Agent {
  if (!guard) return new Agent({ keepAlive: true });
  return new Agent({ keepAlive: true, lookup: guardedLookup(guard, (reason) => new EgressRefusedError(`host ${reason}`)) as unknown as LookupFunction });
}
