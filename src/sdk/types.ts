/**
 * The admin API's wire types, derived from the proxy_config zod schema's types (type-only imports, so the
 * SDK never loads zod at run time). Shared by the SDK and the admin server so the two cannot drift.
 */
import type { ProxyConfig, ProxyConfigInput } from '../config/schema.js';

/** A proxy_config as a caller writes it (defaults optional): the body of a PUT. */
export type ProxyConfigWrite = ProxyConfigInput;

type AnyRuleInput = NonNullable<ProxyConfigInput['rules']>[number];
type RuleInput = Exclude<AnyRuleInput, { type: 'aws' | 'gcp' | 'azure' }>;
type AwsRuleInput = Extract<AnyRuleInput, { type: 'aws' }>;
type GcpRuleInput = Extract<AnyRuleInput, { type: 'gcp' }>;
type AzureRuleInput = Extract<AnyRuleInput, { type: 'azure' }>;
type CallbackInput = NonNullable<ProxyConfigInput['callbacks']>[number];

/** One header of a rule, as written: `{name, type, value}`. */
export type HeaderInput = NonNullable<RuleInput['headers']>[number];
/** One header sent to a callback endpoint, as written (plaintext or opaque). */
export type CallbackHeaderInput = NonNullable<CallbackInput['request_headers']>[number];

/**
 * An opaque header without a value: in a PATCH it keeps the value stored for the same header (see the
 * admin API's matching rules); in a GET it is how every opaque header is shown.
 */
export interface OpaqueHeaderKept {
  name: string;
  type: 'opaque';
  is_set?: boolean;
  value?: undefined;
}

/** An opaque header as a read shows it: set, and never with its value. */
export interface OpaqueHeaderView {
  name: string;
  type: 'opaque';
  is_set: true;
}

/** A plaintext or workspace_secret header as a read shows it: as written (`{KEY}` templates unresolved). */
export interface VisibleHeaderView<T extends 'plaintext' | 'workspace_secret' = 'plaintext' | 'workspace_secret'> {
  name: string;
  type: T;
  value: string;
}

/** A provider rule's opaque Secret without a value: a PATCH keeps the stored one. */
export interface OpaqueSecretKept {
  type: 'opaque';
  is_set?: boolean;
  value?: undefined;
}

/** A provider rule's opaque Secret as a read shows it. */
export interface OpaqueSecretView {
  type: 'opaque';
  is_set: true;
}

type SecretShape = { type: 'workspace_secret' | 'opaque'; value: string };
/** Each Secret field of a provider rule's auth may also be `T` (kept in a PATCH, or hidden in a read). */
type SecretsOr<A, T> = { [K in keyof A]: NonNullable<A[K]> extends SecretShape ? A[K] | T : A[K] };
type ProviderRulePatch =
  | (Omit<AwsRuleInput, 'aws'> & { aws: SecretsOr<AwsRuleInput['aws'], OpaqueSecretKept> })
  | (Omit<GcpRuleInput, 'gcp'> & { gcp: SecretsOr<GcpRuleInput['gcp'], OpaqueSecretKept> })
  | (Omit<AzureRuleInput, 'azure'> & { azure: SecretsOr<AzureRuleInput['azure'], OpaqueSecretKept> });

/** A header or rewrite rule with its headers' type replaced by `H` (a rewrite rule's `headers` stays optional when written). */
type HeadersAs<R, H> = R extends { type: 'rewrite' }
  ? Omit<R, 'headers'> & { headers?: H[] }
  : Omit<R, 'headers'> & { headers: H[] };
/** Each rule of the union `R` with its headers as `H` (distributive, so a rewrite rule keeps its `rewrite`). */
type ViewHeaders<R, H> = R extends unknown ? Omit<R, 'headers'> & { headers: H[] } : never;

/** A PATCH body: a whole proxy_config, where an opaque header or Secret may leave out its value to keep the stored one. */
export type ProxyConfigPatch = Omit<ProxyConfigInput, 'rules' | 'callbacks'> & {
  rules?: Array<HeadersAs<RuleInput, HeaderInput | OpaqueHeaderKept> | ProviderRulePatch>;
  callbacks?: Array<
    Omit<CallbackInput, 'request_headers'> & { request_headers?: Array<CallbackHeaderInput | OpaqueHeaderKept> }
  >;
};

type AnyRule = ProxyConfig['rules'][number];
type Rule = Exclude<AnyRule, { type: 'aws' | 'gcp' | 'azure' }>;
type AwsRule = Extract<AnyRule, { type: 'aws' }>;
type GcpRule = Extract<AnyRule, { type: 'gcp' }>;
type AzureRule = Extract<AnyRule, { type: 'azure' }>;
/** A provider rule as reads show it: opaque Secrets as `{type: "opaque", is_set: true}`. */
export type ProviderRuleView =
  | (Omit<AwsRule, 'aws'> & { aws: SecretsOr<AwsRule['aws'], OpaqueSecretView> })
  | (Omit<GcpRule, 'gcp'> & { gcp: SecretsOr<GcpRule['gcp'], OpaqueSecretView> })
  | (Omit<AzureRule, 'azure'> & { azure: SecretsOr<AzureRule['azure'], OpaqueSecretView> });
type Callback = ProxyConfig['callbacks'][number];

/** A stored proxy_config as reads return it: defaults filled in, opaque values replaced by `is_set: true`. */
export type ProxyConfigView = Omit<ProxyConfig, 'rules' | 'callbacks'> & {
  rules: Array<ViewHeaders<Rule, VisibleHeaderView | OpaqueHeaderView> | ProviderRuleView>;
  callbacks: Array<
    Omit<Callback, 'request_headers'> & { request_headers: Array<VisibleHeaderView<'plaintext'> | OpaqueHeaderView> }
  >;
};

/** What GET, PUT and PATCH on `/v1/sandboxes/{id}/proxy-config` answer. */
export interface SandboxConfigResponse {
  sandbox_id: string;
  /** The tenant (workspace) the sandbox belongs to: sent to callbacks as `identity.tenant_id`. */
  tenant_id: string;
  /** The organization sent to callbacks as `identity.organization_id`; absent when none is set. */
  organization_id?: string;
  /** Grows by one on every write of this sandbox's config. */
  version: number;
  /** The entity tag of this version: send it as `ifMatch` to write only if nobody changed it since. */
  etag: string;
  /** ISO 8601 time of the latest write. */
  updated_at: string;
  proxy_config: ProxyConfigView;
}

/** What `GET /v1/sandboxes/{id}/env` answers: the placeholders a sandbox should set (never secrets). */
export interface SandboxEnvResponse {
  sandbox_id: string;
  version: number;
  env_vars: Record<string, string>;
}

/** Every error response of the admin API. */
export interface ApiErrorBody {
  error: string;
  /** Field-named problems, e.g. `rules[0].match_hosts[0]: "*" may contain "*" only as "*.domain"`. */
  problems?: string[];
}

/** A sandbox link: `from` may reach these ports of `to` with a `rewrite: {sandbox, port}` rule. */
export interface SandboxLink {
  readonly from: string;
  readonly to: string;
  readonly ports: number[];
}

/** `GET /v1/sandboxes/{id}/links`. */
export interface SandboxLinksResponse {
  readonly sandbox_id: string;
  readonly links: SandboxLink[];
}

/** `GET|PUT /v1/sandboxes/{id}/address`. */
export interface SandboxAddressResponse {
  readonly sandbox_id: string;
  readonly address: string;
}
