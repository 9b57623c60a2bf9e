import type { CredentialPolicy } from '../config/rewrite-schema.js';

/**
 * The destination part of a compiled `type: rewrite` rule and the pure header arithmetic of a rewrite:
 * which of the sandbox's credential headers go, which are redacted, and what `:authority` becomes. The
 * engine adds the egress guard's checked address; the adapter turns it into Envoy mutations.
 */

/**
 * Where a sandbox may send rewritten requests to another sandbox: the links that shared-service mode's
 * admin API keeps (src/sandboxes/links.ts). Absent in sidecar mode, where there is no other sandbox to reach.
 */
export interface SandboxLinks {
  /** The address (an IP literal, plain http) to dial for `from` -> `to`:`port` now, or undefined when nothing allows it. */
  dial(from: string, to: string, port: number): string | undefined;
  /** Why `from` can't reach `to`:`port` now (one line), or undefined when it can. */
  whyNot?(from: string, to: string, port: number): string | undefined;
}

/**
 * A rewrite to another sandbox: its address is looked up on every request (`links.dial`), never compiled
 * in, so a removed link or a changed address applies to the next request.
 */
export interface SandboxDestination {
  readonly from: string;
  readonly to: string;
  readonly links: SandboxLinks;
}

/** Where a rewrite rule sends matched requests: https with TLS verified against `host`, or another sandbox over plain http. */
export interface CompiledRewrite {
  /** The new host; for a sandbox destination, the target sandbox's id (the address is found per request). */
  readonly host: string;
  readonly port: number;
  /** The new `:authority` (and Host): `host`, with `:port` unless the port is 443; for a sandbox, `address:port` per request. */
  readonly authority: string;
  readonly credentials: CredentialPolicy;
  /** Set when the destination is another sandbox (plain http). */
  readonly sandbox?: SandboxDestination;
}

/**
 * The credential headers a sandbox may send that a rewrite strips or redacts (lower-case): Authorization,
 * Proxy-Authorization, Cookie, and the API-key headers of the APIs authproxy knows (Anthropic, Azure
 * OpenAI, Google, GitLab, AWS session tokens, generic token headers).
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'x-amz-security-token',
  'private-token',
  'x-auth-token',
];

/** The value every redacted header gets; an Authorization-style value keeps its scheme (`Bearer redacted`). */
export const REDACTED = 'redacted';

/** Builds the compiled destination of a rewrite (host lower-cased by the schema). */
export function compiledRewrite(host: string, port: number, credentials: CredentialPolicy): CompiledRewrite {
  return { host, port, authority: port === 443 ? host : `${host}:${port}`, credentials };
}

/** The `:authority` a request to another sandbox carries: the address dialled and the port (IPv6 in brackets). */
export function sandboxAuthority(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** What a rewrite does to the request's headers, before the rule's own headers are set over it. */
export interface RewriteMutation {
  /** Headers to set, `:authority` first; then redacted credentials; then the rule's headers (which win). */
  readonly set: ReadonlyArray<readonly [string, string]>;
  /** Headers to remove: stripped credentials (never one that `set` names) and always Proxy-Authorization. */
  readonly remove: readonly string[];
}

/**
 * The header mutation of a rewrite. `sent` lists the sandbox's headers (lower-case names; only read for
 * `redact`). Proxy-Authorization is always removed, whatever the policy (contract, Matching step 11).
 */
export function rewriteMutation(
  rewrite: CompiledRewrite,
  ruleHeaders: ReadonlyArray<readonly [string, string]>,
  sent: () => Record<string, string[]>,
): RewriteMutation {
  const own = new Set(ruleHeaders.map(([name]) => name.toLowerCase()));
  const set: Array<readonly [string, string]> = [[':authority', rewrite.authority]];
  const remove = new Set<string>(['proxy-authorization']);
  if (rewrite.credentials === 'strip') for (const h of CREDENTIAL_HEADERS) remove.add(h);
  if (rewrite.credentials === 'redact') {
    const headers = sent();
    for (const name of CREDENTIAL_HEADERS) {
      const values = headers[name];
      if (!values || values.length === 0 || name === 'proxy-authorization' || own.has(name)) continue;
      set.push([name, redact(name, values[0]!)]);
    }
  }
  set.push(...ruleHeaders);
  return { set, remove: [...remove].filter((h) => !own.has(h)) };
}

/**
 * A credential value redacted: `Bearer abc` -> `Bearer redacted` (the scheme kept when the value is
 * `scheme SP token`, as Authorization values are); anything else, a Cookie included, -> `redacted`.
 */
export function redact(name: string, value: string): string {
  const scheme = name === 'authorization' ? /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*) +\S/.exec(value) : null;
  return scheme ? `${scheme[1]} ${REDACTED}` : REDACTED;
}
