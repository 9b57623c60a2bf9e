import type { ProxyConfig } from '../config/schema.js';
import type { StoredSandbox } from '../sandboxes/store.js';
import { effectiveIdentity, type SandboxIdentity } from '../contracts/identity.js';
import type {
  OpaqueHeaderView,
  OpaqueSecretView,
  ProviderRuleView,
  ProxyConfigView,
  SandboxConfigResponse,
  VisibleHeaderView,
} from '../sdk/types.js';
import { isProviderRule } from '../config/provider-schema.js';
import type { ProviderRule } from '../config/provider-rule.js';

type Visible = 'plaintext' | 'workspace_secret';

/** One header as reads show it: opaque ones lose their value, the others are returned as written. */
function viewHeader<T extends Visible>(h: {
  name: string;
  type: T | 'opaque';
  value: string;
}): VisibleHeaderView<T> | OpaqueHeaderView {
  return h.type === 'opaque'
    ? { name: h.name, type: 'opaque', is_set: true }
    : { name: h.name, type: h.type as T, value: h.value };
}

/** A Secret as reads show it: an opaque one loses its value (not even the sealed form is returned). */
function viewSecret<S extends { type: 'workspace_secret' | 'opaque'; value: string }>(secret: S): S | OpaqueSecretView {
  return secret.type === 'opaque' ? { type: 'opaque', is_set: true } : secret;
}

function viewProviderRule(rule: ProviderRule): ProviderRuleView {
  if (rule.type === 'azure') {
    const { azure } = rule;
    return {
      ...rule,
      azure:
        'account_key' in azure
          ? { ...azure, account_key: viewSecret(azure.account_key) }
          : { ...azure, sas_token: viewSecret(azure.sas_token) },
    };
  }
  if (rule.type === 'gcp')
    return { ...rule, gcp: { ...rule.gcp, service_account_json: viewSecret(rule.gcp.service_account_json) } };
  if ('role_arn' in rule.aws) return { ...rule, aws: rule.aws };
  return {
    ...rule,
    aws: {
      access_key_id: viewSecret(rule.aws.access_key_id),
      secret_access_key: viewSecret(rule.aws.secret_access_key),
    },
  };
}

/**
 * The read view of a stored config. Exists as the one place that decides what leaves the API: every opaque
 * header becomes `{name, type: "opaque", is_set: true}` (not even its sealed form is returned), while
 * workspace_secret headers keep their `{KEY}` template, which is never resolved in a stored config.
 * The view is itself a valid PATCH body, so read-modify-write keeps every opaque value.
 */
export function configView(config: ProxyConfig): ProxyConfigView {
  return {
    ...config,
    rules: config.rules.map((r): ProxyConfigView['rules'][number] =>
      isProviderRule(r) ? viewProviderRule(r) : { ...r, headers: r.headers.map(viewHeader) },
    ),
    callbacks: config.callbacks.map((c) => ({ ...c, request_headers: c.request_headers.map(viewHeader) })),
  };
}

/**
 * The response body of GET, PUT and PATCH. `tenant_id` / `organization_id` are the ones callbacks are sent:
 * the stored ones, else the serve defaults (`organization_id` left out when there is none).
 */
export function sandboxResponse(id: string, stored: StoredSandbox, defaults: SandboxIdentity): SandboxConfigResponse {
  const identity = effectiveIdentity(stored, defaults);
  return {
    sandbox_id: id,
    tenant_id: identity.tenantId,
    ...(identity.organizationId === undefined ? {} : { organization_id: identity.organizationId }),
    version: stored.version,
    etag: `"${stored.stamp}"`,
    updated_at: new Date(stored.updatedAt).toISOString(),
    proxy_config: configView(stored.config),
  };
}
