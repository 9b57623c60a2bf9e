import { redactUrl, type CompiledHeader, type CompiledPolicy } from '../policy/compiled.js';
import { decide, type HeaderLookup } from '../policy/decide.js';
import { normalisePath } from '../policy/path.js';
import { matchingPattern } from '../policy/path-pattern.js';
import { ListHeaderLookup } from '../policy/header-lookup.js';
import { AuthProxyError } from '../errors.js';
import { CREDENTIAL_HEADERS } from '../policy/rewrite.js';

/** Shows a header without its value unless it is plaintext. */
function redact(h: CompiledHeader): { name: string; value: string } {
  return { name: h.name, value: h.sensitive ? '[redacted]' : h.value };
}

/** `--header "name: value"` lines as the decision's header lookup (names lower-cased; a name given twice is ambiguous). */
function headerLookup(lines: readonly string[]): HeaderLookup {
  const entries = lines.map((line) => {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new AuthProxyError('usage', '--header: each must be written "name: value"');
    return { key: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim(), rawValue: NO_RAW_VALUE };
  });
  // The same lookup Envoy's header maps get: names lower-cased, a name given twice is ambiguous.
  return new ListHeaderLookup(() => entries);
}
const NO_RAW_VALUE = new Uint8Array(0);

/**
 * The decision for one METHOD URL as JSON, for `authproxy explain`: which rule or callback applies and
 * why, with every sensitive value redacted. Callbacks are named, not called.
 */
export function explain(
  policy: CompiledPolicy,
  method: string,
  url: string,
  sandboxId: string,
  headerLines: readonly string[] = [],
): Record<string, unknown> {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(url);
  if (!m) throw new AuthProxyError('usage', `URL "${url}" must be absolute, like https://api.github.com/user`);
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const path = m[3] || '/';
  const decision = decide(policy, {
    method: method.toUpperCase(),
    scheme,
    authority,
    path,
    headers: headerLookup(headerLines),
  });
  const base = {
    sandbox: sandboxId,
    method: method.toUpperCase(),
    scheme,
    host: decision.target?.host ?? null,
    port: decision.target?.port ?? null,
    path: normalisePath(path) ?? null,
    outcome: decision.outcome,
    remove_headers: decision.outcome === 'refuse' ? [] : ['proxy-authorization'],
  };
  switch (decision.outcome) {
    case 'pass':
      return { ...base, reason: decision.reason };
    case 'refuse':
      return { ...base, status: decision.status, reason: decision.reason };
    case 'inject': {
      const pattern = matchingPattern(decision.rule.paths, base.path ?? '');
      const matched = {
        matched_path: pattern
          ? { pattern: pattern.pattern, form: pattern.form }
          : { pattern: null, form: 'no match_paths: every path' },
        ...(decision.rule.matchHeaders.length > 0
          ? { matched_headers: decision.rule.matchHeaders.map((h) => h.name) }
          : {}),
      };
      const { rewrite } = decision.rule;
      if (!rewrite)
        return { ...base, rule: decision.rule.name, ...matched, set_headers: decision.rule.headers.map(redact) };
      // The destination as configured; `serve` resolves it through the egress guard and dials that address.
      const own = (h: string) => decision.rule.headers.some((r) => r.name.toLowerCase() === h);
      const credentials = CREDENTIAL_HEADERS.filter((h) => h !== 'proxy-authorization' && !own(h));
      return {
        ...base,
        outcome: 'rewrite',
        rule: decision.rule.name,
        ...matched,
        rewrite: {
          url: `https://${rewrite.authority}${path}`,
          host: rewrite.host,
          port: rewrite.port,
          credentials: rewrite.credentials,
        },
        set_headers: [{ name: ':authority', value: rewrite.authority }, ...decision.rule.headers.map(redact)],
        remove_headers: rewrite.credentials === 'strip' ? ['proxy-authorization', ...credentials] : base.remove_headers,
        ...(rewrite.credentials === 'redact' ? { redact_headers: credentials } : {}),
      };
    }
    case 'callback':
      return {
        ...base,
        callback: {
          url: redactUrl(decision.callback.url),
          ttl_seconds: decision.callback.ttlSeconds,
          request_headers: decision.callback.requestHeaders.map(redact),
          full_request: decision.callback.fullRequest,
        },
      };
    case 'aws':
      return {
        ...base,
        rule: decision.rule.name,
        aws: {
          service: decision.endpoint.service,
          region: decision.endpoint.region ?? null,
          auth: decision.rule.auth.kind,
          ...(decision.rule.auth.kind === 'role' ? { role_arn: decision.rule.auth.roleArn } : {}),
        },
        set_headers: [{ name: 'Authorization', value: '[SigV4, re-signed]' }],
      };
    case 'azure':
      return {
        ...base,
        rule: decision.rule.name,
        azure: { storage_account: decision.rule.account, service: decision.service, auth: decision.rule.auth.kind },
        ...(decision.rule.auth.kind === 'sas'
          ? {
              remove_headers: ['authorization', 'proxy-authorization'],
              query: '[SAS token, replaces any the sandbox sent]',
            }
          : { set_headers: [{ name: 'Authorization', value: '[SharedKey, re-signed]' }] }),
      };
    case 'gcp':
      return {
        ...base,
        rule: decision.rule.name,
        gcp: { client_email: decision.rule.clientEmail, scopes: decision.rule.scopes },
        set_headers: [{ name: 'Authorization', value: '[redacted]' }],
      };
  }
}
