import { compiledRewrite, type CompiledRewrite } from '../policy/rewrite.js';
import type { RewriteRule, Rule } from './schema.js';

/**
 * Where a sandbox may send rewritten requests to another sandbox: the links that shared-service mode's
 * admin API keeps. Absent in sidecar mode, where there is no other sandbox to reach.
 */
export interface SandboxLinks {
  /** The address (`host:port`, plain http) to dial for `from` -> `to`:`port`, or undefined when no link allows it. */
  dial(from: string, to: string, port: number): string | undefined;
}

/** Why a `rewrite.sandbox` destination can't be compiled without sandbox links (sidecar mode, or a config file). */
export const SANDBOX_NEEDS_SHARED_MODE = 'a sandbox destination needs a link kept by the admin API (shared-service mode); sidecar mode and config files have no other sandboxes to reach';

/** The links of a store that keeps none yet: every `rewrite.sandbox` is refused, naming the missing link. */
export const NO_SANDBOX_LINKS: SandboxLinks = { dial: () => undefined };

/**
 * Compiles the `rewrite` part of a rewrite rule. A `sandbox` destination is a config error (pushed to
 * `problems`, naming the field) without sandbox links, or when no link lets this sandbox reach that port.
 */
export function compileRewrite(rule: RewriteRule, position: number, ctx: { sandboxId?: string; sandboxLinks?: SandboxLinks }, problems: string[]): CompiledRewrite | undefined {
  const { host, sandbox, port, credentials } = rule.rewrite;
  if (host !== undefined) return compiledRewrite(host, port, credentials);
  const field = `rules[${position}].rewrite.sandbox`;
  if (!ctx.sandboxLinks) {
    problems.push(`${field}: ${SANDBOX_NEEDS_SHARED_MODE}`);
    return undefined;
  }
  const from = ctx.sandboxId ?? '(unknown)';
  if (ctx.sandboxLinks.dial(from, sandbox!, port) === undefined) problems.push(`${field}: no link lets sandbox "${from}" reach sandbox "${sandbox}" on port ${port}`);
  // Reaching another sandbox over plain http is not wired into Envoy yet: refused even with a link.
  else problems.push(`${field}: sandbox destinations are not supported yet`);
  return undefined;
}

/**
 * The hosts a rule's header values are sent to, which a sealed value must be bound to: a header rule's
 * `match_hosts`, but a rewrite's destination (a value sealed for api.openai.com must not ride a rewrite
 * that matches api.openai.com and sends to another host). A sandbox destination has no host to bind.
 */
export function sealHosts(rule: Rule): readonly string[] {
  if (rule.type !== 'rewrite') return rule.match_hosts;
  return rule.rewrite.host !== undefined ? [rule.rewrite.host] : [];
}
