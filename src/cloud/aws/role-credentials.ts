import { CallbackFailure, type CallbackFailureReason } from '../../callbacks/client.js';
import type { IdentitySource } from '../../contracts/identity.js';
import type { TemporaryCredentials } from '../shared/temporary-credentials.js';
import type { AwsCredentials } from './resign.js';

/** One AssumeRole call's parameters. */
export interface AssumeRoleParams {
  readonly roleArn: string;
  readonly sessionName: string;
  readonly externalId: string;
  readonly sessionTags: Readonly<Record<string, string>>;
}

/** A role session's credentials and the moment STS says they expire. */
export interface AssumedRole extends AwsCredentials {
  readonly sessionToken: string;
  readonly expiresAt: number;
}

/**
 * Calls STS AssumeRole with authproxy's own credentials (an interface so tests and benchmarks can stand in;
 * the AWS SDK's, `stsRoleAssumer`, is in sts.ts, loaded only for `aws: {role_arn}` rules).
 */
export interface RoleAssumer {
  assume(params: AssumeRoleParams): Promise<AssumedRole>;
}

/**
 * A role that could not be assumed: STS refused (reason `status`), could not be reached (`transport`,
 * `timeout`), or authproxy has no credentials of its own. A CallbackFailure so that the shared cache
 * hands one failure to every replica waiting on the same key; its message names AWS role auth and the
 * STS error code, never a credential.
 */
export class AwsRoleFailure extends CallbackFailure {
  constructor(reason: CallbackFailureReason, detail: string) {
    super(reason, detail);
    this.name = 'AwsRoleFailure';
    this.message = `AWS role auth failed: ${detail}`;
  }
}

/** RoleSessionName allows `[\w+=,.@-]{2,64}`: the sandbox id, with anything else replaced. */
export function roleSessionName(sandboxId: string): string {
  return `authproxy-${sandboxId.replace(/[^\w+=,.@-]/g, '_')}`.slice(0, 64);
}

/**
 * Role sessions for sandboxes: one AssumeRole per (sandbox, role, tenant, session tags), with `ExternalId`
 * = the sandbox's tenant id as it is now, session name `authproxy-<sandbox>` (CloudTrail shows which
 * sandbox acted), cached until 5 minutes before STS's expiry through TemporaryCredentials (shared and
 * encrypted in Redis in shared mode). A failure is never cached and never falls back to other keys.
 */
export class AwsRoleCredentials {
  constructor(
    private readonly cache: TemporaryCredentials,
    private readonly sts: RoleAssumer,
    private readonly identities?: IdentitySource,
  ) {}

  get(
    roleArn: string,
    sessionTags: Readonly<Record<string, string>>,
    sandboxId: string,
  ): AwsCredentials | Promise<AwsCredentials> {
    const externalId = this.identities?.identityFor(sandboxId).tenantId ?? 'default';
    const tags = Object.entries(sessionTags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = `aws-role\n${sandboxId}\n${roleArn}\n${externalId}\n${JSON.stringify(tags)}`;
    const found = this.cache.get(key, async () => {
      const role = await this.sts.assume({ roleArn, sessionName: roleSessionName(sandboxId), externalId, sessionTags });
      return {
        values: {
          accessKeyId: role.accessKeyId,
          secretAccessKey: role.secretAccessKey,
          sessionToken: role.sessionToken,
        },
        expiresAt: role.expiresAt,
      };
    });
    return found instanceof Promise ? found.then(toCredentials) : toCredentials(found);
  }
}

function toCredentials(values: Readonly<Record<string, string>>): AwsCredentials {
  const { accessKeyId, secretAccessKey, sessionToken } = values;
  if (!accessKeyId || !secretAccessKey || !sessionToken)
    throw new AwsRoleFailure('malformed', 'a cached role session is incomplete');
  return { accessKeyId, secretAccessKey, sessionToken };
}
