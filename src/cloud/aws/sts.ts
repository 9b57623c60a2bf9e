import { AssumeRoleCommand, STSClient, type AssumeRoleCommandOutput } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { EgressGuard } from '../../egress/guard.js';
import { guardedHttpsAgent } from '../shared/https-agent.js';
import { AwsRoleFailure, type RoleAssumer } from './role-credentials.js';

// The AWS SDK's STS client and credential chain (several MB of heap) live here, apart from the signer,
// so `serve` imports them only when a config has an `aws: {role_arn}` rule (src/serve/cloud-loader.ts).

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
    requestHandler: new NodeHttpHandler({
      httpsAgent: guardedHttpsAgent(settings.egress),
      connectionTimeout: settings.timeoutMs,
      requestTimeout: settings.timeoutMs,
    }),
  });
  return {
    async assume(p) {
      let out: AssumeRoleCommandOutput;
      try {
        out = await client.send(
          new AssumeRoleCommand({
            RoleArn: p.roleArn,
            RoleSessionName: p.sessionName,
            ExternalId: p.externalId,
            DurationSeconds: settings.durationSeconds ?? 3600,
            ...(Object.keys(p.sessionTags).length > 0
              ? { Tags: Object.entries(p.sessionTags).map(([Key, Value]) => ({ Key, Value })) }
              : {}),
          }),
          { abortSignal: AbortSignal.timeout(settings.timeoutMs) },
        );
      } catch (err) {
        throw classify(err);
      }
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration)
        throw new AwsRoleFailure('malformed', 'STS AssumeRole answered without credentials');
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiresAt: c.Expiration.getTime(),
      };
    },
  };
}

/** An SDK error as an AwsRoleFailure: the STS error code, or what kept authproxy from asking. */
function classify(err: unknown): AwsRoleFailure {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  if (e?.name === 'CredentialsProviderError')
    return new AwsRoleFailure(
      'transport',
      'authproxy has no AWS credentials of its own (environment, profile, web identity, container or instance metadata)',
    );
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError')
    return new AwsRoleFailure('timeout', 'STS did not answer AssumeRole in time');
  if (e?.$metadata?.httpStatusCode !== undefined)
    return new AwsRoleFailure(
      'status',
      `STS refused AssumeRole (${e.name ?? 'error'}, HTTP ${e.$metadata.httpStatusCode})`,
    );
  return new AwsRoleFailure('transport', `STS could not be reached (${e?.code ?? e?.name ?? 'error'})`);
}
