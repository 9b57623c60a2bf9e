import type { CredentialCache } from '../../callbacks/cache.js';
import type { EgressGuard } from '../../egress/guard.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import { TemporaryCredentials } from '../shared/temporary-credentials.js';
import { GcpTokenHandler } from './handler.js';
import { googleTokenMinter } from './token-minter.js';

/** What `serve` hands the Google Cloud provider. */
export interface GcpSetup {
  /** The callback cache (memory, or shared through Redis): access tokens are kept there, sealed. */
  readonly cache: CredentialCache;
  readonly egress?: EgressGuard;
  /** Token endpoint timeout; at most the callback timeout, so a shared-cache lock holder always finishes in time. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/** The `type: gcp` handler `serve` wires into the Engine: tokens minted with google-auth-library, cached. */
export function createGcpHandler(setup: GcpSetup): GcpTokenHandler {
  const minter = googleTokenMinter({ egress: setup.egress, timeoutMs: setup.timeoutMs });
  return new GcpTokenHandler(new TemporaryCredentials(setup.cache), minter, { log: setup.log, metrics: setup.metrics });
}

export { parseGcpTokenUriAllow } from './token-uri-allow.js';
