/**
 * Which hosts a `type: azure` rule covers, as a pure function of the hostname: the configured storage
 * account's blob, dfs, queue, table and file endpoints in Azure's public cloud, and nothing else. Another
 * account's endpoints, secondary endpoints and other Azure hosts get no credential (they pass untouched).
 */

/** The storage services whose endpoints a rule covers. */
export const AZURE_STORAGE_SERVICES = ['blob', 'dfs', 'queue', 'table', 'file'] as const;
/** One storage service; Table signs with its own string-to-sign, the others share one. */
export type AzureStorageService = (typeof AZURE_STORAGE_SERVICES)[number];

const SUFFIX = '.core.windows.net';

/** The service of `host` when it is one of `account`'s endpoints (`<account>.<service>.core.windows.net`), else undefined. */
export function azureStorageService(host: string, account: string): AzureStorageService | undefined {
  if (!host.endsWith(SUFFIX) || !host.startsWith(`${account}.`)) return undefined;
  const service = host.slice(account.length + 1, -SUFFIX.length);
  return (AZURE_STORAGE_SERVICES as readonly string[]).includes(service) ? (service as AzureStorageService) : undefined;
}

/** The enabled `type: azure` rule, its Secret resolved: the account key (decoded) or the SAS token's query parameters. */
export interface CompiledAzureRule {
  readonly name: string;
  readonly position: number;
  /** The storage account whose endpoints the rule covers. */
  readonly account: string;
  readonly auth:
    | { readonly kind: 'shared_key'; readonly key: Buffer }
    | { readonly kind: 'sas'; readonly query: string };
}
