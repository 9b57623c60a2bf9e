import type { CachedCredential, CredentialCache } from '../../callbacks/cache.js';

/** One temporary credential as name -> value (e.g. access key id, secret, session token; or a bearer token). */
export type CredentialValues = Readonly<Record<string, string>>;

/** What minting returns: the values and the moment (epoch ms) their issuer says they stop working. */
export interface MintedCredential {
  readonly values: CredentialValues;
  readonly expiresAt: number;
}

/** Temporary credentials are used until this long before they expire, then minted again. */
export const RENEW_BEFORE_EXPIRY_MS = 5 * 60_000;

/**
 * Temporary cloud credentials (STS role sessions, OAuth2 access tokens) through authproxy's callback cache:
 * in memory in sidecar mode; with `--redis`, sealed in Redis with the fleet-wide single flight, so one
 * replica mints per key and the others read its answer. Each entry is dropped `RENEW_BEFORE_EXPIRY_MS`
 * before its issuer's expiry (or after `maxTtlSeconds`, whichever is first) and minted again on the next
 * request; failures are never cached. A warm key answers synchronously, with no promise.
 * Shared by the AWS and Google Cloud handlers; `key` must name the provider (e.g. `aws-role\n...`).
 */
export class TemporaryCredentials {
  /** The record form of each cache entry, built once per entry so warm lookups allocate nothing. */
  private readonly records = new WeakMap<CachedCredential, CredentialValues>();

  constructor(
    private readonly cache: CredentialCache,
    private readonly maxTtlSeconds = 3600,
  ) {}

  get(key: string, mint: () => Promise<MintedCredential>): CredentialValues | Promise<CredentialValues> {
    const found = this.cache.get(key, this.maxTtlSeconds, async () => {
      const minted = await mint();
      return { headers: Object.entries(minted.values), expiresAt: minted.expiresAt - RENEW_BEFORE_EXPIRY_MS };
    });
    return found instanceof Promise ? found.then((entry) => this.record(entry)) : this.record(found);
  }

  private record(entry: CachedCredential): CredentialValues {
    let values = this.records.get(entry);
    if (!values) {
      values = Object.fromEntries(entry.headers) as CredentialValues;
      this.records.set(entry, values);
    }
    return values;
  }
}
