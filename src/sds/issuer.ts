import { errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { Any } from '../gen/google/protobuf/any.js';
import type { Leaf } from './ca.js';
import { canonicalHostname, loggableName } from './hostname.js';
import type { LeafCache } from './leaf-cache.js';
import { leafVersion, secretAny } from './secret-resource.js';

/**
 * Whether a sandbox may have a certificate for a hostname (canonical: lower-case, no trailing dot).
 * authproxy must only mint for hosts it intercepts for that sandbox, never for whatever SNI arrives:
 * every answered name stays cached in Envoy, and a leaf for an arbitrary name would let the sandbox's
 * TLS trust be used for hosts no rule covers.
 */
export type MintPolicy = (sandboxId: string, hostname: string) => boolean;

/** Why a requested name got no certificate (a closed set, usable as a metrics label). */
export type RefusalReason = 'invalid_name' | 'unknown_sandbox' | 'not_allowed' | 'mint_failed';

/** The answer for one requested secret name. */
export type Issued =
  | {
      readonly kind: 'secret';
      readonly name: string;
      readonly resource: Any;
      readonly version: string;
      readonly leaf: Leaf;
    }
  | { readonly kind: 'refused'; readonly name: string; readonly reason: RefusalReason };

/**
 * The transport-free SDS decision: requested name + sandbox -> a packed Secret, or a refusal. The delta
 * and state-of-the-world streams are thin shells around it. Fails closed: an invalid name, an unknown
 * sandbox, a policy that says no or throws, and a failed mint are all refusals. Logs hostnames, serials
 * and expiry only; a private key never reaches a log line.
 */
export class SecretIssuer {
  constructor(
    private readonly cache: LeafCache,
    private readonly mayMint: MintPolicy,
    private readonly log: Logger,
    /** Leaves per (sandbox, host) instead of per host: `--bind-sandbox-to-cert`, where sandbox ids are proven. */
    private readonly perSandbox = false,
  ) {}

  /** `fresh` waits for a due renewal (renewal pushes); otherwise a still-valid leaf is served at once. */
  async issue(name: string, sandboxId: string | undefined, fresh = false): Promise<Issued> {
    const sandbox = sandboxId ?? '(ambiguous)';
    const host = canonicalHostname(name);
    const reason =
      host === undefined
        ? 'invalid_name'
        : sandboxId === undefined
          ? 'unknown_sandbox'
          : this.allowed(sandboxId, host)
            ? undefined
            : 'not_allowed';
    if (reason !== undefined || host === undefined) {
      this.log.info(
        { sandbox, name: loggableName(name), outcome: 'refused', reason },
        'sds: no certificate for this name',
      );
      return { kind: 'refused', name, reason: reason ?? 'invalid_name' };
    }
    try {
      const scope = this.perSandbox ? sandboxId : undefined;
      const leaf = fresh ? await this.cache.refresh(host, scope) : await this.cache.get(host, scope);
      this.log.debug(
        {
          sandbox,
          hostname: host,
          outcome: 'issued',
          serial: leaf.serial,
          notAfter: new Date(leaf.notAfter).toISOString(),
        },
        'sds: certificate served',
      );
      return { kind: 'secret', name, resource: secretAny(name, leaf), version: leafVersion(leaf), leaf };
    } catch (err) {
      this.log.error(
        { sandbox, hostname: host, outcome: 'refused', reason: 'mint_failed', err: errorLine(err) },
        'sds: cannot mint a certificate',
      );
      return { kind: 'refused', name, reason: 'mint_failed' };
    }
  }

  private allowed(sandboxId: string, host: string): boolean {
    try {
      return this.mayMint(sandboxId, host) === true;
    } catch (err) {
      this.log.error({ sandbox: sandboxId, hostname: host, err: errorLine(err) }, 'sds: mint policy failed; refusing');
      return false;
    }
  }
}
