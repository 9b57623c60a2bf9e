import { z } from 'zod';
import { secretSchema } from './provider-schema.js';
import { ruleFields } from './rule-fields.js';

/**
 * The `type: azure` provider rule of LangChain's proxy_config (langsmith's `ProxyConfig.Rule.azure`):
 * static credentials for one storage account, `{storage_account, account_key}` (authproxy re-signs with
 * Shared Key) or `{storage_account, sas_token}` (authproxy appends the SAS). Kept apart from the aws / gcp
 * schema so that each provider's rules stay in their own file.
 */

/** Storage account names: 3 to 24 lower-case letters and digits (Azure's own rule). */
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

/** The one-line refusal of the workload-identity variant until authproxy has its own OIDC issuer. */
export const AZURE_WORKLOAD_IDENTITY_REFUSAL =
  "workload identity (tenant_id/client_id) needs authproxy's OIDC issuer, not built yet; use storage_account with account_key or sas_token";

/** Fields only header rules have: Azure rules match their account's endpoints themselves (langsmith: "Azure rules do not accept it"). */
const notHere = z
  .undefined({ error: "not allowed on an azure rule: it matches its storage account's endpoints itself" })
  .optional();

/**
 * `azure`: exactly one of `account_key` / `sas_token` beside `storage_account`. The workload-identity keys
 * (`tenant_id`, `client_id`, `resources`, `subject_scope`) are accepted by the parser only to be refused
 * with a message that names the missing feature (instead of "unrecognized key").
 */
export const azureAuthSchema = z
  .strictObject({
    storage_account: z
      .string({ error: 'must be a string' })
      .regex(ACCOUNT_NAME, { error: 'must be a storage account name: 3 to 24 lower-case letters and digits' })
      .optional(),
    account_key: secretSchema.optional(),
    sas_token: secretSchema.optional(),
    // langsmith's workload-identity variant, typed as there, so an SDK caller may write it; refused below.
    tenant_id: z.string({ error: 'must be a string' }).optional(),
    client_id: z.string({ error: 'must be a string' }).optional(),
    resources: z.array(z.string({ error: 'must be a string' })).optional(),
    subject_scope: z.string({ error: 'must be a string' }).optional(),
  })
  .superRefine((azure, ctx) => {
    if (
      azure.tenant_id !== undefined ||
      azure.client_id !== undefined ||
      azure.resources !== undefined ||
      azure.subject_scope !== undefined
    ) {
      ctx.addIssue({ code: 'custom', message: AZURE_WORKLOAD_IDENTITY_REFUSAL });
      return;
    }
    if (azure.storage_account === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['storage_account'],
        message: 'is required (with account_key or sas_token)',
      });
    else if ((azure.account_key === undefined) === (azure.sas_token === undefined))
      ctx.addIssue({ code: 'custom', message: 'Azure storage auth requires exactly one of account_key or sas_token' });
  })
  .transform(
    (azure): AzureAuth =>
      azure.account_key
        ? { storage_account: azure.storage_account!, account_key: azure.account_key }
        : { storage_account: azure.storage_account!, sas_token: azure.sas_token! },
  );

/** One `type: azure` rule: Shared Key re-signing or a SAS for one storage account's endpoints. */
export const azureRuleSchema = z.strictObject({
  ...ruleFields,
  match_hosts: notHere,
  match_paths: notHere,
  headers: notHere,
  match_headers: notHere,
  type: z.literal('azure'),
  azure: azureAuthSchema,
});

type Secret = z.output<typeof secretSchema>;
/** A validated `azure` block: an account key, or a SAS token, for one storage account. */
export type AzureAuth =
  | { storage_account: string; account_key: Secret }
  | { storage_account: string; sas_token: Secret };
/** A validated `type: azure` rule. */
export type AzureRule = z.output<typeof azureRuleSchema>;
