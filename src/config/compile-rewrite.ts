import { compiledRewrite, type CompiledRewrite, type SandboxLinks } from '../policy/rewrite.js';
import type { RewriteRule, Rule } from './schema.js';

export type { SandboxLinks };

/** Why a `rewrite.sandbox` destination can't be compiled without sandbox links (sidecar mode, or a config file). */
export const SANDBOX_NEEDS_SHARED_MODE =
  'a sandbox destination needs a link kept by the admin API (shared-service mode); sidecar mode and config files have no other sandboxes to reach';

/** The links of a store that keeps none: every `rewrite.sandbox` is refused, naming the missing link. */
export const NO_SANDBOX_LINKS: SandboxLinks = { dial: () => undefined };

/** What compiling a rewrite reads from the compile context. */
export interface RewriteCompileContext {
  readonly sandboxId?: string;
  readonly sandboxLinks?: SandboxLinks;
  /**
   * The admin API's check before storing: a sandbox destination must be reachable now (a link names the port
   * and the target has an address), else a problem naming the field. A replica applying a stored config
   * compiles it either way: its requests are refused (403) while nothing allows them.
   */
  readonly requireLinks?: boolean;
}

/**
 * Compiles the `rewrite` part of a rewrite rule. A `sandbox` destination is a config error (pushed to
 * `problems`, naming the field) without sandbox links, or, with `requireLinks`, when nothing lets this
 * sandbox reach that port now.
 */
export function compileRewrite(
  rule: RewriteRule,
  position: number,
  ctx: RewriteCompileContext,
  problems: string[],
): CompiledRewrite | undefined {
  const { host, sandbox, port, credentials } = rule.rewrite;
  if (host !== undefined) return compiledRewrite(host, port, credentials);
  const field = `rules[${position}].rewrite.sandbox`;
  if (!ctx.sandboxLinks || ctx.sandboxId === undefined) {
    problems.push(`${field}: ${SANDBOX_NEEDS_SHARED_MODE}`);
    return undefined;
  }
  // (The schema has refused secret headers on a sandbox destination: they would go in cleartext.)
  const before = problems.length;
  const from = ctx.sandboxId;
  if (ctx.requireLinks) {
    const why = ctx.sandboxLinks.whyNot
      ? ctx.sandboxLinks.whyNot(from, sandbox!, port)
      : ctx.sandboxLinks.dial(from, sandbox!, port) === undefined
        ? `no link lets sandbox "${from}" reach sandbox "${sandbox}" on port ${port}`
        : undefined;
    if (why !== undefined) problems.push(`${field}: ${why}`);
  }
  if (problems.length > before) return undefined;
  return {
    ...compiledRewrite(sandbox!, port, credentials),
    authority: '',
    sandbox: { from, to: sandbox!, links: ctx.sandboxLinks },
  };
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
