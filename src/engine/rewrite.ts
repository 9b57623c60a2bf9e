import type { CompiledRule } from '../policy/compiled.js';
import { rewriteMutation, sandboxAuthority, type CompiledRewrite, type SandboxDestination } from '../policy/rewrite.js';
import type { EgressGuard } from '../egress/guard.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Outcome, RequestExtras } from '../contracts/engine.js';
import { refusalBody } from '../contracts/reasons.js';

/** What a rewrite needs from the engine around it. */
export interface RewriteContext {
  readonly egress: EgressGuard | undefined;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  readonly sandboxId: string;
}

/** The short text bodies of a refused rewrite (the same as any refused destination). */
const PRIVATE = refusalBody('private_destination');
const UNRESOLVABLE = refusalBody('unresolvable');
/** The body of a rewrite to another sandbox that no link allows now (removed link or port, no address, another tenant). */
export const NO_SANDBOX_LINK = refusalBody('no_sandbox_link');
/** The body of a host rewrite refused because serve sends egress through `--upstream-proxy`. */
export const REWRITE_VIA_PROXY = 'rewrite rules to another host do not work through --upstream-proxy yet';

/**
 * The outcome of a request matched by a `type: rewrite` rule: the new destination passes the egress guard
 * like any other (a private or loopback answer is 403, none is 502), and Envoy is told to dial exactly the
 * address checked here, with `:authority` (so SNI and certificate validation) set to the new host. The
 * sandbox's credential headers are stripped, redacted or kept, then the rule's headers are set.
 */
export function rewriteOutcome(
  rule: CompiledRule,
  rewrite: CompiledRewrite,
  extras: RequestExtras | undefined,
  ctx: RewriteContext,
): Outcome | Promise<Outcome> {
  if (rewrite.sandbox) return sandboxOutcome(rule, rewrite, rewrite.sandbox, extras, ctx);
  // Without the sandbox's headers (an adapter that can't give them) a redaction can't be done: strip instead.
  const sent = () => extras?.headers() ?? {};
  const mutation = rewriteMutation(
    extras || rewrite.credentials !== 'redact' ? rewrite : { ...rewrite, credentials: 'strip' },
    rule.pairs,
    sent,
  );
  const done = (address: string): Outcome => {
    ctx.metrics?.decision('inject', 'rewrite');
    return { kind: 'rewrite', set: mutation.set, remove: mutation.remove, dial: { host: address, port: rewrite.port } };
  };
  if (!ctx.egress) return done(rewrite.host);
  // Through `--upstream-proxy`, the intercepted connection's tunnel goes to the host the sandbox asked for;
  // dialling another host inside it isn't built, so such a rewrite fails closed instead of going astray.
  if (ctx.egress.upstream) {
    ctx.metrics?.decision('refuse', 'internal');
    return { kind: 'immediate', status: 502, body: REWRITE_VIA_PROXY };
  }
  return ctx.egress.check(rewrite.host).then((checked): Outcome => {
    if (checked.ok) return done(checked.address);
    ctx.metrics?.decision('refuse', checked.reason);
    ctx.log.info(
      {
        sandbox: ctx.sandboxId,
        rule: rule.name,
        host: rewrite.host,
        port: rewrite.port,
        reason: checked.reason,
        detail: checked.detail,
      },
      'rewrite destination refused',
    );
    return {
      kind: 'immediate',
      status: checked.reason === 'unresolvable' ? 502 : 403,
      body: checked.reason === 'unresolvable' ? UNRESOLVABLE : PRIVATE,
    };
  });
}

/**
 * A rewrite to another sandbox: the address its link allows is looked up now (never compiled in, so a
 * removed link is refused at once: 403), `:authority` becomes `address:port`, and the answer marks the
 * request plain (`plain`), which the intercepting listener routes to its plain-http cluster. The operator
 * registered the address, so the egress guard's private-address refusal does not apply to it.
 */
function sandboxOutcome(
  rule: CompiledRule,
  rewrite: CompiledRewrite,
  to: SandboxDestination,
  extras: RequestExtras | undefined,
  ctx: RewriteContext,
): Outcome {
  const address = to.links.dial(to.from, to.to, rewrite.port);
  if (address === undefined) {
    ctx.metrics?.decision('refuse', 'no_sandbox_link');
    ctx.log.info(
      { sandbox: ctx.sandboxId, rule: rule.name, to: to.to, port: rewrite.port },
      'rewrite to sandbox refused: no link allows it',
    );
    return { kind: 'immediate', status: 403, body: NO_SANDBOX_LINK };
  }
  const sent = () => extras?.headers() ?? {};
  const effective = {
    ...rewrite,
    authority: sandboxAuthority(address, rewrite.port),
    ...(extras || rewrite.credentials !== 'redact' ? {} : { credentials: 'strip' as const }),
  };
  const mutation = rewriteMutation(effective, rule.pairs, sent);
  ctx.metrics?.decision('inject', 'rewrite');
  return {
    kind: 'rewrite',
    set: mutation.set,
    remove: mutation.remove,
    dial: { host: address, port: rewrite.port },
    plain: true,
  };
}
