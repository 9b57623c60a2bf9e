import { AuthProxyError } from '../errors.js';
import { decodeSealed, type ValueUnsealer } from '../secrets/sealing.js';
import { PLACEHOLDER } from '../secrets/workspace.js';

/** A value as configured: plaintext, a `{KEY}` workspace-secret template, or a sealed opaque value. */
export interface ValueSpec {
  readonly type: 'plaintext' | 'workspace_secret' | 'opaque';
  readonly value: string;
}

/** What resolving values needs: the workspace secrets and the key that opens sealed values. */
export interface ResolveContext {
  readonly secrets: ReadonlyMap<string, string>;
  readonly unsealer: ValueUnsealer | undefined;
}

/**
 * Resolves one configured value when a config is applied: fills `{KEY}` placeholders from the workspace
 * secrets or opens a sealed value. Problems are pushed (naming `where` and the missing KEY, never a value);
 * `check` adds a rule of the value's use (a header value may not hold CR/LF, a key file may). Shared by
 * header rules, callbacks and provider rules so that every credential resolves the same way.
 */
export function resolveValue(spec: ValueSpec, ctx: ResolveContext, where: string, problems: string[], check?: (value: string) => string | undefined): string {
  if (spec.type === 'plaintext') return spec.value;
  if (spec.type === 'workspace_secret') {
    const missing = new Set<string>();
    const value = spec.value.replace(PLACEHOLDER, (_m, key: string) => {
      const secret = ctx.secrets.get(key);
      if (secret === undefined) missing.add(key);
      return secret ?? '';
    });
    if (!/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(spec.value)) problems.push(`${where}: workspace_secret value has no {KEY} placeholder`);
    for (const key of missing) problems.push(`${where}: workspace secret "${key}" is not set`);
    const bad = missing.size === 0 ? check?.(value) : undefined;
    if (bad) problems.push(`${where}: resolved value ${bad}`);
    return value;
  }
  try {
    decodeSealed(spec.value);
    if (!ctx.unsealer) {
      problems.push(`${where}: opaque value needs a sealing key (--sealing-key)`);
      return '';
    }
    const value = ctx.unsealer.unseal(spec.value);
    const bad = check?.(value);
    if (bad) problems.push(`${where}: unsealed value ${bad}`);
    return value;
  } catch (err) {
    problems.push(`${where}: ${err instanceof AuthProxyError ? err.message : 'cannot be unsealed'}`);
    return '';
  }
}
