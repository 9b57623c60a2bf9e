import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { CallbackFailure, type CallbackFailureReason } from '../../callbacks/client.js';
import type { EgressGuard } from '../../egress/guard.js';
import type { IdentitySource } from '../../sandboxes/identity.js';
import { guardedHttpsAgent } from '../shared/https-agent.js';
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

/** Calls STS AssumeRole with authproxy's own credentials (an interface so tests and benchmarks can stand in). */
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

/** Settings of authproxy's own STS client (`--aws-sts-endpoint`, `--aws-region`). */
export interface StsSettings {
  /** e.g. `https://sts.eu-west-1.amazonaws.com` or a VPC endpoint; default: the region's STS endpoint. */
  readonly endpoint?: string;
  /** Region of the STS client; default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  readonly region?: string;
  /** Pins STS connections to the address the guard checked, like callback calls. */
  readonly egress?: EgressGuard;
  readonly timeoutMs: number;
  /** Requested session length; the role's maximum session duration must allow it. Default 3600. */
  readonly durationSeconds?: number;
}

/** The AWS SDK's STS client with authproxy's own credentials from the standard Node provider chain. */
export function stsRoleAssumer(settings: StsSettings): RoleAssumer {
  const client = new STSClient({
    region: settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    credentials: fromNodeProviderChain(),
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({ httpsAgent: guardedHttpsAgent(settings.egress), connectionTimeout: settings.timeoutMs, requestTimeout: settings.timeoutMs }),
  });
  return {
    async assume(p) {
      let out;
      try {
        out = await client.send(
          new AssumeRoleCommand({
            RoleArn: p.roleArn,
            RoleSessionName: p.sessionName,
            ExternalId: p.externalId,
            DurationSeconds: settings.durationSeconds ?? 3600,
            ...(Object.keys(p.sessionTags).length > 0 ? { Tags: Object.entries(p.sessionTags).map(([Key, Value]) => ({ Key, Value })) } : {}),
          }),
          { abortSignal: AbortSignal.timeout(settings.timeoutMs) },
        );
      } catch (err) {
        throw classify(err);
      }
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) throw new AwsRoleFailure('malformed', 'STS AssumeRole answered without credentials');
      return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiresAt: c.Expiration.getTime() };
    },
  };
}

/** An SDK error as an AwsRoleFailure: the STS error code, or what kept authproxy from asking. */
function classify(err: unknown): AwsRoleFailure {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  if (e?.name === 'CredentialsProviderError') return new AwsRoleFailure('transport', 'authproxy has no AWS credentials of its own (environment, profile, web identity, container or instance metadata)');
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return new AwsRoleFailure('timeout', 'STS did not answer AssumeRole in time');
  if (e?.$metadata?.httpStatusCode !== undefined) return new AwsRoleFailure('status', `STS refused AssumeRole (${e.name ?? 'error'}, HTTP ${e.$metadata.httpStatusCode})`);
  return new AwsRoleFailure('transport', `STS could not be reached (${e?.code ?? e?.name ?? 'error'})`);
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

  get(roleArn: string, sessionTags: Readonly<Record<string, string>>, sandboxId: string): AwsCredentials | Promise<AwsCredentials> {
    const externalId = this.identities?.identityFor(sandboxId).tenantId ?? 'default';
    const tags = Object.entries(sessionTags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = 'aws-role\n' + sandboxId + '\n' + roleArn + '\n' + externalId + '\n' + JSON.stringify(tags);
    const found = this.cache.get(key, async () => {
      const role = await this.sts.assume({ roleArn, sessionName: roleSessionName(sandboxId), externalId, sessionTags });
      return { values: { accessKeyId: role.accessKeyId, secretAccessKey: role.secretAccessKey, sessionToken: role.sessionToken }, expiresAt: role.expiresAt };
    });
    return found instanceof Promise ? found.then(toCredentials) : toCredentials(found);
  }
}

function toCredentials(values: Readonly<Record<string, string>>): AwsCredentials {
  const { accessKeyId, secretAccessKey, sessionToken } = values;
  if (!accessKeyId || !secretAccessKey || !sessionToken) throw new AwsRoleFailure('malformed', 'a cached role session is incomplete');
  return { accessKeyId, secretAccessKey, sessionToken };
}
