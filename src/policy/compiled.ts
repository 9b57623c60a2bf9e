import type { AccessList } from './access.js';
import type { HostIndex } from './host-index.js';
import type { ProxyConfig } from '../config/schema.js';
import type { MatchHeader } from '../config/match-header.js';
import type { PathPattern } from './path-pattern.js';
import type { CompiledRewrite } from './rewrite.js';
import type { CompiledAzureRule } from './azure-hosts.js';

/** A header ready to inject: placeholders resolved, opaque values unsealed. */
export interface CompiledHeader {
  /** The header name as configured (Envoy lower-cases it on the wire). */
  readonly name: string;
  readonly value: string;
  /** False only for plaintext headers: sensitive values are redacted in every read and log. */
  readonly sensitive: boolean;
}

/** An enabled rule, compiled. */
export interface CompiledRule {
  readonly name: string;
  /** Position in the config's `rules` list (disabled rules keep their numbers). */
  readonly position: number;
  /** The rule's `match_paths`, compiled; empty = every path. */
  readonly paths: readonly PathPattern[];
  /** The rule's `match_headers`: each must be present once with exactly this value; empty = no condition. */
  readonly matchHeaders: readonly MatchHeader[];
  readonly headers: readonly CompiledHeader[];
  /** `headers` as (name, value) pairs, built once so that injecting allocates nothing per request. */
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  /** Set on a `type: rewrite` rule: where matched requests go instead (src/policy/rewrite.ts). */
  readonly rewrite?: CompiledRewrite;
}

/** A callback, compiled. */
export interface CompiledCallback {
  /** Stable id derived from the callback's definition; part of the cache key, so an edit invalidates. */
  readonly id: string;
  readonly position: number;
  readonly url: string;
  readonly ttlSeconds: number;
  readonly requestHeaders: readonly CompiledHeader[];
  /** Called on every request with a snapshot of it, never cached (`full_request: true`). */
  readonly fullRequest: boolean;
}

/**
 * The compiled form of one proxy_config: what a decision reads. Built once per config change, immutable
 * afterwards, so swapping one reference applies a new config atomically.
 */
export interface CompiledPolicy {
  readonly rules: readonly CompiledRule[];
  /** Host patterns -> indexes into `rules`. */
  readonly ruleIndex: HostIndex;
  readonly callbacks: readonly CompiledCallback[];
  /** Host patterns -> indexes into `callbacks`. */
  readonly callbackIndex: HostIndex;
  readonly noProxy: HostIndex;
  /** The populated access_control list, if any: with `allow` only what it names may be reached, with `deny` what it names may not. */
  readonly access: { readonly mode: 'allow' | 'deny'; readonly list: AccessList } | undefined;
  /** The enabled `type: aws` rule: re-signs requests to AWS hosts. */
  readonly aws: CompiledAwsRule | undefined;
  /** The enabled `type: gcp` rule: authorizes requests to Google APIs with minted tokens. */
  readonly gcp: CompiledGcpRule | undefined;
  /** The enabled `type: azure` rule: re-signs (Shared Key) or adds a SAS to requests to its storage account. */
  readonly azure: CompiledAzureRule | undefined;
  /** The validated config as given (opaque values still sealed), for reads and env_vars. */
  readonly source: ProxyConfig;
  /** Fields holding unbound sealed values let through by `--allow-unbound-seals` (warned about when applied). */
  readonly unboundSeals?: readonly string[];
  /** A sealed value is bound to this config's own sandbox: the config may serve no other sandbox. */
  readonly sandboxBound?: boolean;
}

/** The enabled `type: aws` rule, its Secrets resolved: static keys, or a role authproxy assumes. */
export interface CompiledAwsRule {
  readonly name: string;
  readonly position: number;
  /** `match_hosts`: narrows the AWS hosts the rule covers; undefined = every AWS endpoint. */
  readonly hosts: HostIndex | undefined;
  readonly auth:
    | { readonly kind: 'static'; readonly accessKeyId: string; readonly secretAccessKey: string }
    | { readonly kind: 'role'; readonly roleArn: string; readonly sessionTags: Readonly<Record<string, string>> };
}

/** The enabled `type: gcp` rule: the checked service-account key and the scopes to mint tokens for. */
export interface CompiledGcpRule {
  readonly name: string;
  readonly position: number;
  /** `match_hosts`: narrows the Google API hosts the rule covers; undefined = every Google API host. */
  readonly hosts: HostIndex | undefined;
  readonly clientEmail: string;
  readonly privateKey: string;
  readonly privateKeyId?: string;
  readonly tokenUri: string;
  readonly scopes: readonly string[];
  /** Names the (key, scopes) pair in token caches without revealing either. */
  readonly id: string;
}

/** A URL safe to show: scheme, host, port and path; any query or fragment becomes `?[redacted]`. */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : `${url.slice(0, cut)}?[redacted]`;
}
