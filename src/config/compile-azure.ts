import type { CompiledAzureRule } from '../policy/azure-hosts.js';
import type { AzureRule } from './azure-schema.js';
import { resolveValue, type ResolveContext } from './resolve-value.js';

/** Where an Azure Secret may go: the provider's own hosts (a sealed Secret is bound to the provider). */
const AZURE_TARGET = { provider: 'azure' } as const;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** One query parameter of a SAS token as the portal or an SDK writes it: a name, `=`, a URL-encoded value. */
const SAS_PAIR = /^[A-Za-z][A-Za-z0-9_-]*=[A-Za-z0-9%._~+\-:/=,]*$/;

/** Why `value` can't be a storage account key (never echoing it), or undefined when it can. */
function accountKeyProblem(value: string): string | undefined {
  if (!BASE64.test(value) || value.length % 4 !== 0) return 'is not a base64 storage account key';
  return Buffer.from(value, 'base64').length < 16 ? 'is too short for a storage account key' : undefined;
}

/** The token without a leading `?`, as the portal shows it (`sv=...&sig=...`). */
const sasQuery = (value: string) => value.replace(/^\?/, '');

/** Why `value` can't be a SAS token (never echoing it), or undefined when it can. */
function sasProblem(value: string): string | undefined {
  const pairs = sasQuery(value).split('&');
  if (pairs.some((p) => !SAS_PAIR.test(p))) return 'is not a SAS token (name=value pairs joined with &, URL-encoded)';
  return pairs.some((p) => p.startsWith('sig=') && p.length > 4)
    ? undefined
    : 'is not a SAS token: it has no sig parameter';
}

/**
 * Compiles a `type: azure` rule: resolves its Secret (a workspace secret or a sealed value bound to the
 * azure provider) and checks it when the config is applied: an account key must be base64, a SAS token
 * `name=value&...` with a `sig`. Problems are pushed one line each, naming the rule and field, no value.
 */
export function compileAzure(
  rule: AzureRule,
  position: number,
  ctx: ResolveContext,
  problems: string[],
): CompiledAzureRule {
  const { azure } = rule;
  const account = azure.storage_account;
  if ('account_key' in azure) {
    const value = resolveValue(
      azure.account_key,
      ctx,
      `rules[${position}].azure.account_key: rule "${rule.name}"`,
      problems,
      accountKeyProblem,
      AZURE_TARGET,
    );
    return { name: rule.name, position, account, auth: { kind: 'shared_key', key: Buffer.from(value, 'base64') } };
  }
  const value = resolveValue(
    azure.sas_token,
    ctx,
    `rules[${position}].azure.sas_token: rule "${rule.name}"`,
    problems,
    sasProblem,
    AZURE_TARGET,
  );
  return { name: rule.name, position, account, auth: { kind: 'sas', query: sasQuery(value) } };
}
