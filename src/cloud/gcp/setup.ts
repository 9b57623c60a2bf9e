import type { CredentialCache } from '../../callbacks/cache.js';
import type { EgressGuard } from '../../egress/guard.js';
import { AuthProxyError } from '../../errors.js';
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

/**
 * Parses `--gcp-token-uri-allow` (comma-separated): token endpoints besides Google's that a service-account
 * key's `token_uri` may name, each an exact https URL or an `https://host[:port]` prefix (which allows
 * every path on that origin, and no other host). Exists for tests and private endpoints; the compile step
 * (compile-providers.ts) applies it. Throws a usage error naming the entry.
 */
export function parseGcpTokenUriAllow(list: string, flag = '--gcp-token-uri-allow'): string[] {
  const entries = list.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const entry of entries) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const shown = entry.slice(0, 80);
    if (url?.protocol !== 'https:' || !entry.toLowerCase().startsWith('https://')) throw new AuthProxyError('usage', `${flag}: "${shown}" is not an https:// URL (token endpoints are only called over https)`);
    if (url.username || url.password || url.search || url.hash || entry.includes('?') || entry.includes('#')) throw new AuthProxyError('usage', `${flag}: "${shown}" must not have credentials, a query or a fragment`);
  }
  return entries;
}
