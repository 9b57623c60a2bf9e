import type { ProxyConfig } from '../config/schema.js';
import { isProviderRule } from '../config/provider-schema.js';
import { PLACEHOLDER } from '../secrets/workspace.js';

/** Whether workspace secret `key` is within a token's `keys=` entries (exact names or `PREFIX*`). */
export function keyAllowed(patterns: readonly string[], key: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : key === p));
}

/** Every `workspace_secret` value of a config with its field: header rules' headers and provider rules' Secrets. */
function workspaceValues(config: ProxyConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  config.rules.forEach((rule, i) => {
    if (isProviderRule(rule)) {
      const auth = (rule.type === 'aws' ? rule.aws : rule.type === 'gcp' ? rule.gcp : rule.azure) as Record<
        string,
        unknown
      >;
      for (const [name, secret] of Object.entries(auth)) {
        const s = secret as { type?: unknown; value?: unknown } | undefined;
        if (s?.type === 'workspace_secret' && typeof s.value === 'string')
          out.push([`rules[${i}].${rule.type}.${name}.value`, s.value]);
      }
      return;
    }
    rule.headers.forEach((h, j) => {
      if (h.type === 'workspace_secret') out.push([`rules[${i}].headers[${j}].value`, h.value]);
    });
  });
  return out;
}

/**
 * The `{KEY}` placeholders of a config that a token limited to `patterns` (its `keys=` scope entries) may
 * not name, one line each with the field and the key (a key name is not a secret; no value is shown).
 * Exists so that a token for one team can't store a config that injects another team's workspace secret.
 */
export function keyScopeProblems(config: ProxyConfig, patterns: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [field, value] of workspaceValues(config)) {
    const keys = new Set([...value.matchAll(PLACEHOLDER)].map((m) => m[1]!));
    for (const key of keys)
      if (!keyAllowed(patterns, key))
        problems.push(
          `${field}: workspace secret "${key}" is outside this token's key scope (keys=${patterns.join(',keys=')})`,
        );
  }
  return problems;
}
