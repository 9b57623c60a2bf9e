import type { Logger } from '../log.js';
import { redactUrl, type CompiledPolicy } from '../policy/compiled.js';
import { decide, type Decision, type PolicyRequest } from '../policy/decide.js';
import { decideRoute } from '../policy/connect.js';
import type { CachedCredential } from '../callbacks/cache.js';
import { CallbackFailure } from '../callbacks/client.js';
import type { CallbackResolver } from '../callbacks/resolver.js';
import type { Metrics } from '../metrics/metrics.js';
import { buildSnapshot } from '../callbacks/snapshot.js';
import type { EgressGuard } from '../egress/guard.js';
import type { OriginalDestination } from '../policy/capture.js';
import { captureDecision, type SettledCapture } from './capture-route.js';
import { rewriteOutcome } from './rewrite.js';
import type { CloudHandler, Outcome, PolicySource as PolicySourceOf, RequestExtras } from '../contracts/engine.js';
import { CALLBACK_FAILED_BODY, refusalBody } from '../contracts/reasons.js';

export { CALLBACK_FAILED_BODY, refusalBody } from '../contracts/reasons.js';

export type { Outcome, RequestExtras } from '../contracts/engine.js';
/** The engine's PolicySource: compiled configs by sandbox. */
export type PolicySource = PolicySourceOf<CompiledPolicy>;

/** The cloud providers `serve` wires in; a provider decision without its handler fails closed (502). */
export interface CloudProviders {
  readonly aws?: CloudHandler<Extract<Decision, { outcome: 'aws' }>, PolicyRequest>;
  readonly gcp?: CloudHandler<Extract<Decision, { outcome: 'gcp' }>, PolicyRequest>;
  readonly azure?: CloudHandler<Extract<Decision, { outcome: 'azure' }>, PolicyRequest>;
}

/** The engine's optional parts. */
export interface EngineOptions {
  readonly metrics?: Metrics;
  /** Refuses private destinations and pins the checked address; `authproxy serve` always sets one. */
  readonly egress?: EgressGuard;
  readonly cloud?: CloudProviders;
}

const ALWAYS_REMOVE = ['proxy-authorization'] as const;
const NO_BODY = new Uint8Array(0);
const PASS: Outcome = { kind: 'continue', set: [], remove: ALWAYS_REMOVE };

/**
 * Turns a request into an Outcome: the pure decision, then (for callbacks) the cache or the endpoint.
 * Returns synchronously unless a callback has to be called, so warm requests cost no promise. Logs one
 * debug line per decision with names and outcomes, never a value.
 */
export class Engine {
  private readonly metrics: Metrics | undefined;
  private readonly egress: EgressGuard | undefined;
  private readonly cloud: CloudProviders;

  constructor(
    private readonly source: PolicySource,
    private readonly resolver: CallbackResolver,
    private readonly log: Logger,
    options: EngineOptions = {},
  ) {
    this.metrics = options.metrics;
    this.egress = options.egress;
    this.cloud = options.cloud ?? {};
  }

  handle(req: PolicyRequest, sandboxId: string, extras?: RequestExtras): Outcome | Promise<Outcome> {
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
        if (decision.rule.rewrite) {
          if (debug)
            this.trace(sandboxId, req, 'rewrite', {
              rule: decision.rule.name,
              to: decision.rule.rewrite.sandbox
                ? `sandbox ${decision.rule.rewrite.host}:${decision.rule.rewrite.port}`
                : decision.rule.rewrite.authority,
              credentials: decision.rule.rewrite.credentials,
            });
          return rewriteOutcome(decision.rule, decision.rule.rewrite, extras, {
            egress: this.egress,
            log: this.log,
            metrics: this.metrics,
            sandboxId,
          });
        }
        this.metrics?.decision('inject', 'rule');
        if (debug) this.trace(sandboxId, req, 'inject', { rule: decision.rule.name });
        return { kind: 'continue', set: decision.rule.pairs, remove: ALWAYS_REMOVE };
      case 'aws':
      case 'gcp': {
        const provider = decision.outcome === 'aws' ? this.cloud.aws : this.cloud.gcp;
        if (debug) this.trace(sandboxId, req, 'inject', { rule: decision.rule.name, provider: decision.outcome });
        if (!provider) {
          this.metrics?.decision('refuse', 'internal');
          return {
            kind: 'immediate',
            status: 502,
            body: `${decision.outcome === 'aws' ? 'AWS' : 'Google Cloud'} credentials are not available`,
          };
        }
        return decision.outcome === 'aws'
          ? this.cloud.aws!.handle(decision, req, extras, sandboxId)
          : this.cloud.gcp!.handle(decision, req, extras, sandboxId);
      }
      case 'azure':
        if (debug) this.trace(sandboxId, req, 'inject', { rule: decision.rule.name, provider: 'azure' });
        if (!this.cloud.azure) {
          this.metrics?.decision('refuse', 'internal');
          return { kind: 'immediate', status: 502, body: 'Azure credentials are not available' };
        }
        return this.cloud.azure.handle(decision, req, extras, sandboxId);
      case 'callback':
        if (decision.callback.fullRequest) return this.viaFullRequest(decision, req, sandboxId, extras);
        return this.viaCallback(decision, req, sandboxId, debug);
    }
  }

  /**
   * The forward proxy's intercept-or-tunnel choice for a CONNECT or absolute-form request (outer listener),
   * then the egress guard: the target is resolved here, every address checked, and the one checked is what
   * Envoy dials. A private destination is 403 and an unresolvable one 502, whatever the lists say.
   * With `original` (transparent mode: a redirected connection), the transparent rules come first and the
   * guard checks and pins the original destination address instead of resolving the name.
   */
  route(
    method: string,
    authority: string,
    sandboxId: string | undefined,
    original?: OriginalDestination,
  ): Outcome | Promise<Outcome> {
    const policy = sandboxId === undefined ? undefined : this.source.policyFor(sandboxId);
    const decision = original
      ? captureDecision(policy, method, authority, original, this.egress)
      : decideRoute(policy, method, authority);
    if (decision instanceof Promise)
      return decision.then((d) => this.pinRoute(d, method, authority, sandboxId, original));
    return this.pinRoute(decision, method, authority, sandboxId, original);
  }

  private pinRoute(
    decision: SettledCapture,
    method: string,
    authority: string,
    sandboxId: string | undefined,
    original: OriginalDestination | undefined,
  ): Outcome | Promise<Outcome> {
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug(
        {
          sandbox: sandboxId ?? '(ambiguous)',
          method,
          authority,
          phase: original ? `capture_${original.kind}` : 'connect',
          outcome: decision.outcome,
          reason: 'reason' in decision ? decision.reason : undefined,
        },
        'decision',
      );
    }
    if (decision.outcome === 'refuse') {
      this.metrics?.decision('refuse', decision.reason);
      return { kind: 'immediate', status: decision.status, body: refusalBody(decision.reason) };
    }
    const { target } = decision;
    const route = decision.outcome;
    if (!this.egress) return { kind: 'route', route, target, address: original?.address };
    return this.egress.check(original?.address ?? target.host).then((checked): Outcome => {
      if (checked.ok) {
        const via = this.egress!.upstream?.via(target.host, target.port, checked.address, method);
        return via === undefined
          ? { kind: 'route', route, target, address: checked.address }
          : { kind: 'route', route, target, address: checked.address, upstream: via };
      }
      this.metrics?.decision('refuse', checked.reason);
      this.log.info(
        {
          sandbox: sandboxId ?? '(ambiguous)',
          host: target.host,
          port: target.port,
          reason: checked.reason,
          detail: checked.detail,
        },
        'egress refused',
      );
      return checked.reason === 'unresolvable'
        ? { kind: 'immediate', status: 502, body: refusalBody('unresolvable') }
        : { kind: 'immediate', status: 403, body: refusalBody('private_destination') };
    });
  }

  private viaCallback(
    decision: Extract<Decision, { outcome: 'callback' }>,
    req: PolicyRequest,
    sandboxId: string,
    debug: boolean,
  ): Outcome | Promise<Outcome> {
    const found = this.resolver.lookup(decision.callback, decision.target, sandboxId);
    if (!(found instanceof Promise)) {
      this.metrics?.decision('inject', 'callback');
      if (debug) this.trace(sandboxId, req, 'inject', { callback: redactUrl(decision.callback.url), cache: 'hit' });
      return injected(found);
    }
    return found.then(
      (entry) => {
        this.metrics?.decision('inject', 'callback');
        if (this.log.isLevelEnabled('debug'))
          this.trace(sandboxId, req, 'inject', { callback: redactUrl(decision.callback.url), cache: 'miss' });
        return injected(entry);
      },
      (err: unknown) => {
        const reason = err instanceof CallbackFailure ? err.reason : 'internal';
        this.metrics?.decision('callback_failed', reason);
        this.log.warn(
          {
            sandbox: sandboxId,
            host: decision.target.host,
            callback: redactUrl(decision.callback.url),
            reason,
            err: errMessage(err),
          },
          'callback resolution failed',
        );
        return { kind: 'immediate', status: 502, body: CALLBACK_FAILED_BODY } as const;
      },
    );
  }

  /**
   * A `full_request` callback: called on every request with a snapshot of it, never cached. A request with
   * a body is held and its body asked for first; one without a body (or an adapter that can't give one)
   * is decided at once. Fails closed like any callback: 502, nothing injected.
   */
  private viaFullRequest(
    decision: Extract<Decision, { outcome: 'callback' }>,
    req: PolicyRequest,
    sandboxId: string,
    extras: RequestExtras | undefined,
  ): Outcome | Promise<Outcome> {
    const call = (body: Uint8Array, complete: boolean): Promise<Outcome> => {
      const snapshot = buildSnapshot(
        { method: req.method, scheme: req.scheme, path: req.path, headers: extras?.headers() ?? {}, body, complete },
        decision.target,
      );
      return this.resolver.callFull(decision.callback, decision.target, sandboxId, snapshot).then(
        (headers) => {
          this.metrics?.decision('inject', 'callback');
          if (this.log.isLevelEnabled('debug'))
            this.trace(sandboxId, req, 'inject', {
              callback: redactUrl(decision.callback.url),
              cache: 'full_request',
              body_bytes: body.byteLength,
            });
          return { kind: 'continue', set: headers, remove: ALWAYS_REMOVE } as const;
        },
        (err: unknown) => this.callbackFailed(err, decision, sandboxId),
      );
    };
    if (!extras || extras.endOfStream) return call(NO_BODY, true);
    return { kind: 'awaitBody', resume: call };
  }

  /** The one way a failed callback ends: a warning naming the reason (never a value) and the contract's 502. */
  private callbackFailed(
    err: unknown,
    decision: Extract<Decision, { outcome: 'callback' }>,
    sandboxId: string,
  ): Outcome {
    const reason = err instanceof CallbackFailure ? err.reason : 'internal';
    this.metrics?.decision('callback_failed', reason);
    this.log.warn(
      {
        sandbox: sandboxId,
        host: decision.target.host,
        callback: redactUrl(decision.callback.url),
        reason,
        err: errMessage(err),
      },
      'callback resolution failed',
    );
    return { kind: 'immediate', status: 502, body: CALLBACK_FAILED_BODY };
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

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
