import { AuthProxyError } from '../errors.js';
import { parseSealed, type ValueUnsealer } from '../secrets/sealing.js';
import { bindingProblem, type SealTarget } from '../secrets/seal-binding.js';
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
  /**
   * The sandbox whose config this is: a sealed value bound to another sandbox is refused. Undefined for a
   * config that is not one sandbox's own: only values sealed for any sandbox (`*`) are accepted then.
   */
  readonly sandboxId?: string;
  /** `--allow-unbound-seals`: accept version-1 sealed values, which name no sandbox and no hosts. */
  readonly allowUnboundSeals?: boolean;
  /** Filled while a config is compiled: what its sealed values are bound to (for warnings and serving). */
  readonly report?: SealReport;
}

/** What the sealed values of one config turned out to be bound to. */
export interface SealReport {
  /** Fields holding unbound (version 1) values that `--allow-unbound-seals` let through. */
  readonly unbound: string[];
  /** True when a value is bound to this config's sandbox itself rather than to any sandbox. */
  sandboxBound: boolean;
}

/**
 * Resolves one configured value when a config is applied: fills `{KEY}` placeholders from the workspace
 * secrets or opens a sealed value. Problems are pushed (naming `where` and the missing KEY, never a value);
 * `check` adds a rule of the value's use (a header value may not hold CR/LF, a key file may); `target` is
 * where the value goes, which a sealed value's binding must allow (with the sandbox of `ctx`). Shared by
 * header rules, callbacks and provider rules so that every credential resolves the same way.
 */
export function resolveValue(
  spec: ValueSpec,
  ctx: ResolveContext,
  where: string,
  problems: string[],
  check: ((value: string) => string | undefined) | undefined,
  target: SealTarget,
): string {
  if (spec.type === 'plaintext') return spec.value;
  if (spec.type === 'workspace_secret') {
    const missing = new Set<string>();
    const value = spec.value.replace(PLACEHOLDER, (_m, key: string) => {
      const secret = ctx.secrets.get(key);
      if (secret === undefined) missing.add(key);
      return secret ?? '';
    });
    if (!/\{[A-Za-z_][A-Za-z0-9_]*\}/.test(spec.value))
      problems.push(`${where}: workspace_secret value has no {KEY} placeholder`);
    for (const key of missing) problems.push(`${where}: workspace secret "${key}" is not set`);
    const bad = missing.size === 0 ? check?.(value) : undefined;
    if (bad) problems.push(`${where}: resolved value ${bad}`);
    return value;
  }
  try {
    const { binding } = parseSealed(spec.value);
    if (!ctx.unsealer) {
      problems.push(`${where}: opaque value needs a sealing key (--sealing-key)`);
      return '';
    }
    const refused = binding ? bindingProblem(binding, ctx.sandboxId, target) : unboundProblem(ctx, where);
    if (refused) {
      problems.push(`${where}: sealed value ${refused}`);
      return '';
    }
    if (binding && binding.sandbox !== '*' && ctx.report) ctx.report.sandboxBound = true;
    const value = ctx.unsealer.unseal(spec.value);
    const bad = check?.(value);
    if (bad) problems.push(`${where}: unsealed value ${bad}`);
    return value;
  } catch (err) {
    problems.push(`${where}: ${err instanceof AuthProxyError ? err.message : 'cannot be unsealed'}`);
    return '';
  }
}

/** Why an unbound (version 1) sealed value is refused; recorded for a warning when `--allow-unbound-seals` lets it through. */
function unboundProblem(ctx: ResolveContext, where: string): string | undefined {
  if (!ctx.allowUnboundSeals) {
    return "is not bound to a sandbox and hosts (sealed before bindings existed); seal it again with `authproxy seal --sandbox ID|'*' --hosts ...`, or serve with --allow-unbound-seals";
  }
  ctx.report?.unbound.push(where);
  return undefined;
}
