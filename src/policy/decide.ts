import type { CompiledAwsRule, CompiledCallback, CompiledGcpRule, CompiledPolicy, CompiledRule } from './compiled.js';
import { awsEndpoint, isGoogleApisHost, type AwsEndpoint } from './provider-hosts.js';
import { normaliseAuthority, type Target } from './host.js';
import { normalisePath } from './path.js';
import { azureStorageService, type AzureStorageService, type CompiledAzureRule } from './azure-hosts.js';

/** The parts of one HTTP request that a decision reads (from Envoy's pseudo-headers). */
export interface PolicyRequest {
  readonly method: string;
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  /**
   * Set when the request arrived inside a CONNECT tunnel that Envoy intercepted: the CONNECT target and the
   * TLS SNI, which must both name the request's host (else a sandbox could steer a credential elsewhere).
   */
  readonly tunnel?: { readonly connectAuthority: string | undefined; readonly sni: string | undefined };
  /** The request's other headers, read only when a candidate rule has `match_headers` (without it, such a rule never matches). */
  readonly headers?: HeaderLookup;
}

/** Request headers by lowercase name, for `match_headers`. */
export interface HeaderLookup {
  /** The value when sent once, null when absent, undefined when sent more than once (ambiguous: never matches). */
  lookup(name: string): string | null | undefined;
}

/** Why a request passes untouched. */
export type PassReason = 'invalid_authority' | 'no_proxy' | 'ambiguous_path' | 'no_match';
/** Why a request is refused. */
export type RefuseReason = 'access_denied' | 'cleartext' | 'misdirected';

/** The outcome of the pure decision; callbacks still need resolving by the caller. */
export type Decision =
  | { readonly outcome: 'pass'; readonly reason: PassReason; readonly target: Target | undefined }
  | { readonly outcome: 'inject'; readonly rule: CompiledRule; readonly target: Target }
  | { readonly outcome: 'callback'; readonly callback: CompiledCallback; readonly target: Target }
  /** An AWS endpoint while a `type: aws` rule is enabled: re-sign with SigV4. */
  | { readonly outcome: 'aws'; readonly rule: CompiledAwsRule; readonly endpoint: AwsEndpoint; readonly target: Target }
  /** A Google API host while a `type: gcp` rule is enabled: authorize with a minted token. */
  | { readonly outcome: 'gcp'; readonly rule: CompiledGcpRule; readonly target: Target }
  /** One of the storage account's endpoints while a `type: azure` rule is enabled: re-sign (Shared Key) or add the SAS. */
  | {
      readonly outcome: 'azure';
      readonly rule: CompiledAzureRule;
      readonly service: AzureStorageService;
      readonly target: Target;
    }
  | {
      readonly outcome: 'refuse';
      readonly status: 403 | 421;
      readonly reason: RefuseReason;
      readonly target: Target | undefined;
    };

/**
 * The decision of the contract's "Matching" section, as a pure function of (compiled config, request):
 * no I/O, no clock, no gRPC. Order: host normalisation, no_proxy, access_control, cleartext refusal,
 * path normalisation, first enabled matching rule, first matching callback, else pass.
 */
export function decide(policy: CompiledPolicy, req: PolicyRequest): Decision {
  let target = normaliseAuthority(req.authority, req.scheme);
  if (!target) {
    // Inside an intercepted tunnel the request must name the tunnel's host; an authority that names no
    // host (userinfo such as `evil.test@api.openai.com`, two Host headers joined, junk) is misdirected.
    if (req.tunnel) return { outcome: 'refuse', status: 421, reason: 'misdirected', target };
    // An authority that names no host can't be on an allow_list, so it may not be reached.
    if (policy.access?.mode === 'allow') return { outcome: 'refuse', status: 403, reason: 'access_denied', target };
    return { outcome: 'pass', reason: 'invalid_authority', target };
  }
  if (req.tunnel) {
    const connect = normaliseAuthority(req.tunnel.connectAuthority ?? '', 'https');
    const sni = req.tunnel.sni?.toLowerCase().replace(/\.$/, '');
    if (!connect || connect.host !== target.host || sni !== target.host)
      return { outcome: 'refuse', status: 421, reason: 'misdirected', target };
    target = connect;
  }
  const { host } = target;
  const barrier = bypassOrDenial(policy, host, target.port);
  if (barrier === 'no_proxy') return { outcome: 'pass', reason: 'no_proxy', target };
  if (barrier === 'denied') return { outcome: 'refuse', status: 403, reason: 'access_denied', target };
  const ruleHits = policy.ruleIndex.all(host);
  const callbackHit = policy.callbackIndex.first(host);
  // Provider rules cover their provider's hosts wherever they sit in `rules` (narrowed by their match_hosts).
  const aws = coversAws(policy.aws, host);
  const gcp = coversGcp(policy.gcp, host);
  const azure = policy.azure && azureStorageService(host, policy.azure.account);
  if (ruleHits.length === 0 && callbackHit === undefined && !aws && !gcp && !azure)
    return { outcome: 'pass', reason: 'no_match', target };
  if (req.scheme !== 'https') return { outcome: 'refuse', status: 403, reason: 'cleartext', target };
  if (aws) return { outcome: 'aws', rule: policy.aws!, endpoint: aws, target };
  if (gcp) return { outcome: 'gcp', rule: policy.gcp!, target };
  if (azure) return { outcome: 'azure', rule: policy.azure!, service: azure, target };
  const path = normalisePath(req.path);
  if (path === undefined) return { outcome: 'pass', reason: 'ambiguous_path', target };
  // The upstream gets the path as sent, not authproxy's normalised copy: a rule that grants only some paths
  // matches only a path that is already normal (no dot segment, no `//`, no encoded unreserved character),
  // or `/admin/../public/x` would carry `/public/*`'s credential to a server that routes on the raw path.
  const normal = isNormal(req.path, path);
  let skipped = false;
  for (const index of ruleHits) {
    const rule = policy.rules[index]!;
    if (!normal && rule.paths.length > 0) {
      skipped = true;
      continue;
    }
    if (!pathMatches(rule, path) || !headersMatch(rule, req)) continue;
    // A rewrite's host destination is held to the same access_control as the host the sandbox asked for (a
    // sandbox destination is governed by its link instead).
    const dest = rule.rewrite;
    if (dest && !dest.sandbox && bypassOrDenial(policy, dest.host, dest.port) === 'denied')
      return { outcome: 'refuse', status: 403, reason: 'access_denied', target };
    return { outcome: 'inject', rule, target };
  }
  if (callbackHit !== undefined) return { outcome: 'callback', callback: policy.callbacks[callbackHit]!, target };
  return { outcome: 'pass', reason: skipped ? 'ambiguous_path' : 'no_match', target };
}

/** Whether the raw `:path` (query and fragment aside) is already its own normal form. No allocation when it is. */
function isNormal(raw: string, normalised: string): boolean {
  const cut = raw.search(/[?#]/);
  const end = cut < 0 ? raw.length : cut;
  if (end === 0) return normalised === '/';
  return end === normalised.length && raw.startsWith(normalised);
}

/** Whether the normalised path matches one of the rule's `match_paths` (none = every path). A loop, not `some`: no closure per request. */
export function pathMatches(rule: CompiledRule, path: string): boolean {
  const { paths } = rule;
  if (paths.length === 0) return true;
  for (let i = 0; i < paths.length; i++) if (paths[i]!.test(path)) return true;
  return false;
}

/** Whether the request carries every `match_headers` entry exactly once with exactly its value. */
export function headersMatch(rule: CompiledRule, req: PolicyRequest): boolean {
  const wanted = rule.matchHeaders;
  if (wanted.length === 0) return true;
  const headers = req.headers;
  if (!headers) return false;
  for (let i = 0; i < wanted.length; i++) {
    const w = wanted[i]!;
    if (headers.lookup(w.name) !== w.value) return false;
  }
  return true;
}

/** The AWS endpoint `host` is, when the enabled aws rule covers it. */
function coversAws(rule: CompiledAwsRule | undefined, host: string): AwsEndpoint | undefined {
  if (!rule || (rule.hosts && !rule.hosts.has(host))) return undefined;
  return awsEndpoint(host);
}

/** Whether the enabled gcp rule covers `host`. */
function coversGcp(rule: CompiledGcpRule | undefined, host: string): boolean {
  return rule !== undefined && (!rule.hosts || rule.hosts.has(host)) && isGoogleApisHost(host);
}

/** Where a host stands before any path is looked at: the part of a decision that CONNECT and SDS share too. */
export type HostStanding = 'no_proxy' | 'denied' | 'credentialed' | 'plain';

/**
 * no_proxy first, then access_control (on host and port): the checks that come before any rule is looked at.
 * With no port (SDS), a host is denied only when it is denied on every port.
 */
function bypassOrDenial(
  policy: CompiledPolicy,
  host: string,
  port: number | undefined,
): 'no_proxy' | 'denied' | undefined {
  if (policy.noProxy.has(host)) return 'no_proxy';
  const access = policy.access;
  if (!access) return undefined;
  const allow = access.mode === 'allow';
  let listed: boolean;
  if (port !== undefined) listed = access.list.matches(host, port);
  else listed = allow ? access.list.matchesOnSomePort(host) : access.list.matchesOnEveryPort(host);
  return listed === allow ? undefined : 'denied';
}

/**
 * Where a target stands: bypassed, denied (access_control looks at the normalised target port too), or
 * whether any enabled rule or callback names the host. `port` undefined means the port is unknown (SDS
 * minting a certificate): then the host is denied only if access_control refuses it on every port.
 */
export function hostStanding(policy: CompiledPolicy, host: string, port: number | undefined): HostStanding {
  return bypassOrDenial(policy, host, port) ?? (credentialed(policy, host) ? 'credentialed' : 'plain');
}

/** Whether any enabled rule, callback or provider rule names `host`. */
function credentialed(policy: CompiledPolicy, host: string): boolean {
  return (
    policy.ruleIndex.has(host) ||
    policy.callbackIndex.has(host) ||
    coversAws(policy.aws, host) !== undefined ||
    coversGcp(policy.gcp, host) ||
    (policy.azure !== undefined && azureStorageService(host, policy.azure.account) !== undefined)
  );
}
