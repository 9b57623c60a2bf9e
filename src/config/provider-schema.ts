import { z } from 'zod';
import { ruleFields } from './rule-fields.js';
import { canonicalPattern, hostPatternProblem, q } from './host-pattern.js';
import { awsEndpoint, isGoogleApisHost } from '../policy/provider-hosts.js';

/**
 * The cloud provider rules of LangChain's proxy_config, `type: aws` and `type: gcp`: they match their
 * provider's hosts themselves, so `match_hosts`, `match_paths` and `headers` are errors on them, and their
 * credentials are Secrets (workspace_secret or opaque, never plaintext).
 */

/** A credential: a `{KEY}` workspace secret template, or an opaque (sealed) value. */
export const secretSchema = z.strictObject(
  {
    type: z.enum(['workspace_secret', 'opaque'], {
      error: 'must be workspace_secret or opaque (plaintext is refused: this is a credential)',
    }),
    value: z
      .string({ error: 'must be a string' })
      .min(1, { error: 'must not be empty' })
      .max(65_536, { error: 'is longer than 65536 characters' }),
  },
  {
    error: (issue) =>
      issue.input === undefined
        ? 'is required: {type: workspace_secret | opaque, value}'
        : 'must be an object {type: workspace_secret | opaque, value}',
  },
);

const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** Session tags, as langsmith's types state AWS's limits: letters, numbers, spaces and `_.:=+-@` (keys also `/`). */
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:=+\-@]{1,256}$/u;
const RESERVED_TAG_PREFIX = /^(aws|langsmith):/i;
/** `workspace`, or `tag:<tag value id>` (LangSmith's tag value ids are UUIDs; any id of safe characters is taken). */
const SUBJECT_SCOPE = /^(workspace|tag:[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;

/** Until identity federation lands, only the workspace subject can be honoured (AssumeRole with ExternalId = tenant). */
const TAG_SCOPE_REFUSAL =
  'a "tag:" subject scope needs the sandbox\'s tag_value_ids and the web-identity role assumption of identity federation, which authproxy does not have yet: use "workspace" (the role is assumed with AssumeRole and ExternalId = the tenant)';

/** Fields that only header rules have; named so the error says why instead of "unrecognized key". */
const notHere = z
  .undefined({ error: "not allowed on a provider rule: it matches its provider's hosts itself" })
  .optional();

/**
 * `match_hosts` on aws and gcp rules: an optional narrowing of the provider's built-in hosts (empty = every
 * host the provider can authenticate). Each pattern must name hosts of that provider, or it could never match.
 */
function providerHosts(provider: 'AWS' | 'Google Cloud', covers: (host: string) => boolean) {
  return z
    .array(
      z
        .string({ error: 'must be a string' })
        .superRefine((pattern, ctx) => {
          const problem = hostPatternProblem(pattern, false);
          if (problem) return ctx.addIssue({ code: 'custom', message: problem });
          const lower = pattern.toLowerCase();
          const sample = lower.startsWith('*.') ? `x.${lower.slice(2)}` : lower;
          const covered =
            covers(sample) || (lower.startsWith('*.') && (covers(lower.slice(2)) || covers(`x-1.${lower.slice(2)}`)));
          if (!covered)
            ctx.addIssue({
              code: 'custom',
              message: `${q(pattern)} is not a ${provider} host this rule can authenticate`,
            });
        })
        .transform(canonicalPattern),
    )
    .max(256)
    .optional();
}

const providerFields = { ...ruleFields, match_paths: notHere, headers: notHere };

/**
 * `aws`: static keys `{access_key_id, secret_access_key}` (an empty `role_arn`, as langsmith's types allow,
 * counts as absent), or a role `{role_arn, session_tags?}` and nothing else, with LangChain's messages.
 */
export const awsAuthSchema = z
  .object({
    access_key_id: secretSchema.optional(),
    secret_access_key: secretSchema.optional(),
    role_arn: z.string({ error: 'must be a string' }).optional(),
    session_tags: z
      .record(
        z.string().regex(TAG_KEY, { error: 'must be an AWS tag key: 1-128 letters, numbers, spaces or _.:/=+-@' }),
        z
          .string({ error: 'must be a string' })
          .regex(TAG_VALUE, { error: 'must be an AWS tag value: 1-256 letters, numbers, spaces or _.:=+-@' }),
      )
      .superRefine((tags, ctx) => {
        const keys = Object.keys(tags);
        if (keys.length > 50)
          ctx.addIssue({ code: 'custom', message: `at most 50 session tags (${keys.length} given)` });
        for (const key of keys)
          if (RESERVED_TAG_PREFIX.test(key))
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: 'keys starting with aws: or langsmith: are reserved',
            });
      })
      .optional(),
    subject_scope: z
      .string({ error: 'must be a string' })
      .superRefine((scope, ctx) => {
        if (!SUBJECT_SCOPE.test(scope))
          ctx.addIssue({ code: 'custom', message: 'must be "workspace" or "tag:<tag value id>"' });
        else if (scope !== 'workspace') ctx.addIssue({ code: 'custom', message: TAG_SCOPE_REFUSAL });
      })
      .optional(),
  })
  .superRefine((aws, ctx) => {
    const keys = Object.keys(aws).filter((k) => (aws as Record<string, unknown>)[k] !== undefined);
    if (aws.role_arn !== undefined && aws.role_arn !== '') {
      if (keys.some((k) => k !== 'role_arn' && k !== 'session_tags' && k !== 'subject_scope'))
        ctx.addIssue({
          code: 'custom',
          message: 'AWS role auth must contain only role_arn, session_tags and subject_scope',
        });
      else if (!ROLE_ARN.test(aws.role_arn))
        ctx.addIssue({
          code: 'custom',
          path: ['role_arn'],
          message: 'must be an IAM role ARN: arn:aws:iam::<12 digits>:role/<name>',
        });
      return;
    }
    if (aws.session_tags !== undefined)
      ctx.addIssue({ code: 'custom', path: ['session_tags'], message: 'session_tags requires role_arn' });
    if (aws.subject_scope !== undefined)
      ctx.addIssue({ code: 'custom', path: ['subject_scope'], message: 'subject_scope requires role_arn' });
    if (!aws.access_key_id || !aws.secret_access_key)
      ctx.addIssue({ code: 'custom', message: 'AWS auth requires role_arn or both static credentials' });
  })
  .transform((aws) =>
    aws.role_arn
      ? {
          role_arn: aws.role_arn,
          ...(aws.session_tags ? { session_tags: aws.session_tags } : {}),
          ...(aws.subject_scope ? { subject_scope: aws.subject_scope } : {}),
        }
      : { access_key_id: aws.access_key_id!, secret_access_key: aws.secret_access_key! },
  );

/** One `type: aws` rule: re-signs requests to AWS hosts with SigV4. */
export const awsRuleSchema = z.strictObject({
  ...providerFields,
  match_hosts: providerHosts('AWS', (h) => awsEndpoint(h) !== undefined),
  type: z.literal('aws'),
  aws: awsAuthSchema,
});

const scopeUrl = z
  .string({ error: 'must be a string' })
  .refine((s) => /^https:\/\/[^\s/]+\/\S*$/.test(s), { error: 'must be an https:// scope URL' });

/** The scope LangSmith (and so authproxy) asks for when a gcp rule names none. */
export const DEFAULT_GCP_SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/** Workload identity federation needs authproxy's own OIDC issuer, which it does not have yet. */
const GCP_WIF_REFUSAL =
  'workload identity federation (workload_identity_provider) needs authproxy to sign its own OIDC tokens, which it does not do yet: use service_account_json';

/** Fields of the workload-identity variant of langsmith's gcp type: each refused with the reason. */
const wifField = z.undefined({ error: GCP_WIF_REFUSAL }).optional();

/** The gcp auth: a service-account key; the workload-identity variant of langsmith's types is refused with the reason. */
const gcpAuthSchema = z.strictObject({
  service_account_json: secretSchema,
  scopes: z
    .array(scopeUrl, { error: 'must be a list of scope URLs' })
    .min(1, { error: 'needs at least one scope (or leave scopes out for cloud-platform)' })
    .max(64)
    .default(DEFAULT_GCP_SCOPES),
  workload_identity_provider: wifField,
  service_account_email: wifField,
  subject_scope: wifField,
});

/** One `type: gcp` rule: mints OAuth2 access tokens for Google APIs from a service-account key. */
export const gcpRuleSchema = z.strictObject({
  ...providerFields,
  match_hosts: providerHosts('Google Cloud', isGoogleApisHost),
  type: z.literal('gcp'),
  gcp: gcpAuthSchema,
});

export type AwsRule = z.output<typeof awsRuleSchema>;
export type GcpRule = z.output<typeof gcpRuleSchema>;
export type Secret = z.output<typeof secretSchema>;
/** Static AWS keys, after validation. */
export type AwsStaticAuth = { access_key_id: Secret; secret_access_key: Secret };
/** An AWS role, after validation. */
export type AwsRoleAuth = { role_arn: string; session_tags?: Record<string, string>; subject_scope?: string };

/** Whether a validated rule is a provider rule (else a header rule). */
export function isProviderRule<R extends { type?: unknown }>(
  rule: R,
): rule is Extract<R, { type: 'aws' | 'gcp' | 'azure' }> {
  return rule.type === 'aws' || rule.type === 'gcp' || rule.type === 'azure';
}

/** Environment variables authproxy manages for a sandbox while the provider rule is enabled. */
export const MANAGED_ENV: Record<'aws' | 'gcp' | 'azure', readonly string[]> = {
  aws: [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_EC2_METADATA_DISABLED',
    'AWS_CA_BUNDLE',
  ],
  gcp: ['CLOUDSDK_AUTH_ACCESS_TOKEN', 'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE'],
  azure: ['AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_SAS_TOKEN', 'AZURE_STORAGE_CONNECTION_STRING'],
};
