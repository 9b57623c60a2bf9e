import type { CredentialCache } from '../../callbacks/cache.js';
import type { EgressGuard } from '../../egress/guard.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { IdentitySource } from '../../contracts/identity.js';
import { TemporaryCredentials } from '../shared/temporary-credentials.js';
import { AwsSigner } from './handler.js';
import { AwsRoleCredentials, type RoleAssumer } from './role-credentials.js';
import type { StsSettings } from './sts.js';

/** What `serve` hands the AWS provider. */
export interface AwsSetup {
  /** The callback cache (memory, or shared through Redis): role sessions are kept there, sealed. */
  readonly cache: CredentialCache;
  /** Where a sandbox's tenant id (the AssumeRole ExternalId) is looked up at call time. */
  readonly identities: IdentitySource;
  readonly egress?: EgressGuard;
  /** `--aws-sts-endpoint` and `--aws-region`. */
  readonly stsEndpoint?: string;
  readonly region?: string;
  /** STS call timeout; at most the callback timeout, so a shared-cache lock holder always finishes in time. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * The `type: aws` handler `serve` wires into the Engine: static keys, and role sessions through STS when
 * `stsRoleAssumer` (from sts.ts, which the caller imports only for `aws: {role_arn}` rules) is given.
 * Without it a role decision fails closed (502), which `serve` never lets happen: it loads STS first.
 */
export function createAwsHandler(setup: AwsSetup, stsRoleAssumer?: (settings: StsSettings) => RoleAssumer): AwsSigner {
  if (!stsRoleAssumer) return new AwsSigner({ log: setup.log, metrics: setup.metrics });
  const sts = stsRoleAssumer({
    endpoint: setup.stsEndpoint,
    region: setup.region,
    egress: setup.egress,
    timeoutMs: setup.timeoutMs,
  });
  const roles = new AwsRoleCredentials(new TemporaryCredentials(setup.cache), sts, setup.identities);
  return new AwsSigner({ log: setup.log, metrics: setup.metrics, roles });
}
