import { z } from 'zod';
import { ruleFields } from './rule-fields.js';
import type { AzureRule } from './azure-schema.js';

/**
 * The cloud provider rules of LangChain's proxy_config, `type: aws` and `type: gcp`: they match their
 * provider's hosts themselves, so `match_hosts`, `match_paths` and `headers` are errors on them, and their
 * credentials are Secrets (workspace_secret or opaque, never plaintext).
 */

/** A credential: a `{KEY}` workspace secret template, or an opaque (sealed) value. */
export const secretSchema = z.strictObject({
  type: z.enum(['workspace_secret', 'opaque'], { error: 'must be workspace_secret or opaque (plaintext is refused: this is a credential)' }),
  value: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(65_536, { error: 'is longer than 65536 characters' }),
});

const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

/** Fields that only header rules have; named so the error says why instead of "unrecognized key". */
const notHere = z.undefined({ error: "not allowed on a provider rule: it matches its provider's hosts itself" }).optional();

const providerFields = { ...ruleFields, match_hosts: notHere, match_paths: notHere, headers: notHere };

/**
 * `aws`: static keys `{access_key_id, secret_access_key}` (an empty `role_arn`, as langsmith's types allow,
 * counts as absent), or a role `{role_arn, session_tags?}` and nothing else, with LangChain's messages.
 */
export const awsAuthSchema = z
  .object({
    access_key_id: secretSchema.optional(),
    secret_access_key: secretSchema.optional(),
    role_arn: z.string({ error: 'must be a string' }).optional(),
    session_tags: z.record(z.string().regex(TAG_KEY, { error: 'must be an AWS tag key' }), z.string({ error: 'must be a string' }).min(1).max(256)).optional(),
  })
  .superRefine((aws, ctx) => {
    const keys = Object.keys(aws).filter((k) => (aws as Record<string, unknown>)[k] !== undefined);
    if (aws.role_arn !== undefined && aws.role_arn !== '') {
      if (keys.some((k) => k !== 'role_arn' && k !== 'session_tags')) ctx.addIssue({ code: 'custom', message: 'AWS role auth must contain only role_arn and session_tags' });
      else if (!ROLE_ARN.test(aws.role_arn)) ctx.addIssue({ code: 'custom', path: ['role_arn'], message: 'must be an IAM role ARN: arn:aws:iam::<12 digits>:role/<name>' });
      return;
    }
    if (aws.session_tags !== undefined) ctx.addIssue({ code: 'custom', path: ['session_tags'], message: 'session_tags requires role_arn' });
    if (!aws.access_key_id || !aws.secret_access_key) ctx.addIssue({ code: 'custom', message: 'AWS auth requires role_arn or both static credentials' });
  })
  .transform((aws) => (aws.role_arn ? { role_arn: aws.role_arn, ...(aws.session_tags ? { session_tags: aws.session_tags } : {}) } : { access_key_id: aws.access_key_id!, secret_access_key: aws.secret_access_key! }));

/** One `type: aws` rule: re-signs requests to AWS hosts with SigV4. */
export const awsRuleSchema = z.strictObject({ ...providerFields, type: z.literal('aws'), aws: awsAuthSchema });

const scopeUrl = z.string({ error: 'must be a string' }).refine((s) => /^https:\/\/[^\s/]+\/\S*$/.test(s), { error: 'must be an https:// scope URL' });

/** One `type: gcp` rule: mints OAuth2 access tokens for Google APIs from a service-account key. */
export const gcpRuleSchema = z.strictObject({
  ...providerFields,
  type: z.literal('gcp'),
  gcp: z.strictObject({
    service_account_json: secretSchema,
    scopes: z.array(scopeUrl, { error: 'must be a list of scope URLs' }).min(1, { error: 'needs at least one scope' }).max(64),
  }),
});

export type AwsRule = z.output<typeof awsRuleSchema>;
export type GcpRule = z.output<typeof gcpRuleSchema>;
export type ProviderRule = AwsRule | GcpRule | AzureRule;
export type Secret = z.output<typeof secretSchema>;
/** Static AWS keys, after validation. */
export type AwsStaticAuth = { access_key_id: Secret; secret_access_key: Secret };
/** An AWS role, after validation. */
export type AwsRoleAuth = { role_arn: string; session_tags?: Record<string, string> };

/** Whether a validated rule is a provider rule (else a header rule). */
export function isProviderRule<R extends { type?: unknown }>(rule: R): rule is Extract<R, { type: 'aws' | 'gcp' | 'azure' }> {
  return rule.type === 'aws' || rule.type === 'gcp' || rule.type === 'azure';
}

/** Environment variables authproxy manages for a sandbox while the provider rule is enabled. */
export const MANAGED_ENV: Record<'aws' | 'gcp' | 'azure', readonly string[]> = {
  aws: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_EC2_METADATA_DISABLED', 'AWS_CA_BUNDLE'],
  gcp: ['CLOUDSDK_AUTH_ACCESS_TOKEN', 'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE'],
  azure: ['AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_SAS_TOKEN', 'AZURE_STORAGE_CONNECTION_STRING'],
};
