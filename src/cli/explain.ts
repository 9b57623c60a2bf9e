import { redactUrl, type CompiledHeader, type CompiledPolicy } from '../policy/compiled.js';
import { decide } from '../policy/decide.js';
import { normalisePath } from '../policy/path.js';
import { AuthProxyError } from '../errors.js';

/** Shows a header without its value unless it is plaintext. */
function redact(h: CompiledHeader): { name: string; value: string } {
  return { name: h.name, value: h.sensitive ? '[redacted]' : h.value };
}

/**
 * The decision for one METHOD URL as JSON, for `authproxy explain`: which rule or callback applies and
 * why, with every sensitive value redacted. Callbacks are named, not called.
 */
export function explain(policy: CompiledPolicy, method: string, url: string, sandboxId: string): Record<string, unknown> {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(url);
  if (!m) throw new AuthProxyError('usage', `URL "${url}" must be absolute, like https://api.github.com/user`);
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const path = m[3] || '/';
  const decision = decide(policy, { method: method.toUpperCase(), scheme, authority, path });
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
    case 'inject':
      return { ...base, rule: decision.rule.name, set_headers: decision.rule.headers.map(redact) };
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
        aws: { service: decision.endpoint.service, region: decision.endpoint.region ?? null, auth: decision.rule.auth.kind, ...(decision.rule.auth.kind === 'role' ? { role_arn: decision.rule.auth.roleArn } : {}) },
        set_headers: [{ name: 'Authorization', value: '[SigV4, re-signed]' }],
      };
    case 'azure':
      return {
        ...base,
        rule: decision.rule.name,
        azure: { storage_account: decision.rule.account, service: decision.service, auth: decision.rule.auth.kind },
        ...(decision.rule.auth.kind === 'sas'
          ? { remove_headers: ['authorization', 'proxy-authorization'], query: '[SAS token, replaces any the sandbox sent]' }
          : { set_headers: [{ name: 'Authorization', value: '[SharedKey, re-signed]' }] }),
      };
    case 'gcp':
      return { ...base, rule: decision.rule.name, gcp: { client_email: decision.rule.clientEmail, scopes: decision.rule.scopes }, set_headers: [{ name: 'Authorization', value: '[redacted]' }] };
  }
}
