import type { Logger } from '../log.js';
import { redactUrl, type CompiledPolicy } from '../policy/compiled.js';
import { decide, type Decision, type PolicyRequest } from '../policy/decide.js';
import { decideRoute } from '../policy/connect.js';
import type { Target } from '../policy/host.js';
import type { CachedCredential } from '../callbacks/cache.js';
import { CallbackFailure } from '../callbacks/client.js';
import type { CallbackResolver } from '../callbacks/resolver.js';
import type { Metrics } from '../metrics/metrics.js';

/** What Envoy should do with one request; the extproc adapter turns it into a ProcessingResponse. */
export type Outcome =
  | { readonly kind: 'continue'; readonly set: ReadonlyArray<readonly [string, string]>; readonly remove: readonly string[] }
  | { readonly kind: 'immediate'; readonly status: number; readonly body: string }
  | { readonly kind: 'route'; readonly route: 'intercept' | 'tunnel'; readonly target: Target };

/** Finds the compiled config that applies to a sandbox. */
export interface PolicySource {
  policyFor(sandboxId: string): CompiledPolicy | undefined;
}

/** Body of the 502 the contract prescribes when a callback fails. */
export const CALLBACK_FAILED_BODY = 'callback resolution failed';
const ALWAYS_REMOVE = ['proxy-authorization'] as const;
const PASS: Outcome = { kind: 'continue', set: [], remove: ALWAYS_REMOVE };

/**
 * Turns a request into an Outcome: the pure decision, then (for callbacks) the cache or the endpoint.
 * Returns synchronously unless a callback has to be called, so warm requests cost no promise. Logs one
 * debug line per decision with names and outcomes, never a value.
 */
export class Engine {
  constructor(
    private readonly source: PolicySource,
    private readonly resolver: CallbackResolver,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {}

  handle(req: PolicyRequest, sandboxId: string): Outcome | Promise<Outcome> {
    const debug = this.log.isLevelEnabled('debug');
    const policy = this.source.policyFor(sandboxId);
    if (!policy) {
      this.metrics?.decision('pass', 'unknown_sandbox');
      if (debug) this.trace(sandboxId, req, 'pass', { reason: 'unknown_sandbox' });
      return PASS;
    }
    const decision = decide(policy, req);
    switch (decision.outcome) {
      case 'pass':
        this.metrics?.decision('pass', decision.reason);
        if (debug) this.trace(sandboxId, req, 'pass', { reason: decision.reason });
        return PASS;
      case 'refuse':
        this.metrics?.decision('refuse', decision.reason);
        if (debug) this.trace(sandboxId, req, 'refuse', { reason: decision.reason, status: decision.status });
        return { kind: 'immediate', status: decision.status, body: refusalBody(decision.reason) };
      case 'inject':
        this.metrics?.decision('inject', 'rule');
        if (debug) this.trace(sandboxId, req, 'inject', { rule: decision.rule.name });
        return { kind: 'continue', set: decision.rule.pairs, remove: ALWAYS_REMOVE };
      case 'callback':
        return this.viaCallback(decision, req, sandboxId, debug);
    }
  }

  /** The forward proxy's intercept-or-tunnel choice for a CONNECT or absolute-form request (outer listener). */
  route(method: string, authority: string, sandboxId: string | undefined): Outcome {
    const policy = sandboxId === undefined ? undefined : this.source.policyFor(sandboxId);
    const decision = decideRoute(policy, method, authority);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ sandbox: sandboxId ?? '(ambiguous)', method, authority, phase: 'connect', outcome: decision.outcome, reason: 'reason' in decision ? decision.reason : undefined }, 'decision');
    }
    if (decision.outcome === 'refuse') return { kind: 'immediate', status: decision.status, body: refusalBody(decision.reason) };
    return { kind: 'route', route: decision.outcome, target: decision.target };
  }

  private viaCallback(decision: Extract<Decision, { outcome: 'callback' }>, req: PolicyRequest, sandboxId: string, debug: boolean): Outcome | Promise<Outcome> {
    const found = this.resolver.lookup(decision.callback, decision.target, sandboxId);
    if (!(found instanceof Promise)) {
      this.metrics?.decision('inject', 'callback');
      if (debug) this.trace(sandboxId, req, 'inject', { callback: redactUrl(decision.callback.url), cache: 'hit' });
      return injected(found);
    }
    return found.then(
      (entry) => {
        this.metrics?.decision('inject', 'callback');
        if (this.log.isLevelEnabled('debug')) this.trace(sandboxId, req, 'inject', { callback: redactUrl(decision.callback.url), cache: 'miss' });
        return injected(entry);
      },
      (err: unknown) => {
        const reason = err instanceof CallbackFailure ? err.reason : 'internal';
        this.metrics?.decision('callback_failed', reason);
        this.log.warn({ sandbox: sandboxId, host: decision.target.host, callback: redactUrl(decision.callback.url), reason, err: errMessage(err) }, 'callback resolution failed');
        return { kind: 'immediate', status: 502, body: CALLBACK_FAILED_BODY } as const;
      },
    );
  }

  /** One debug line per decision: names and outcomes, the path without its query, never a value. */
  private trace(sandbox: string, req: PolicyRequest, outcome: string, extra: Record<string, unknown>): void {
    const cut = req.path.search(/[?#]/);
    const path = cut >= 0 ? req.path.slice(0, cut) : req.path;
    this.log.debug({ sandbox, method: req.method, authority: req.authority, path, outcome, ...extra }, 'decision');
  }
}

function injected(entry: CachedCredential): Outcome {
  return { kind: 'continue', set: entry.headers, remove: ALWAYS_REMOVE };
}

const REFUSALS: Record<string, string> = {
  cleartext: 'credentials are only sent over https',
  misdirected: 'host, TLS server name and CONNECT target disagree',
  invalid_authority: 'invalid target',
};

function refusalBody(reason: string): string {
  return REFUSALS[reason] ?? 'egress to this host is not allowed';
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
