/**
 * The engine's contract with its sources (cloud handlers), its adapter (extproc) and its policy holders
 * (the sandbox registry). A leaf: it imports nothing from src/, so any layer can name these types without
 * reaching the engine. Types of the policy layer appear as type parameters, filled in by the users.
 */

/** Where a request goes: the normalised host and the port. */
export interface Target {
  host: string;
  port: number;
}

/** With `--upstream-proxy`/`--upstream-no-proxy`: whether Envoy dials the destination or goes through the proxy. */
export type UpstreamVia = 'direct' | 'proxy' | 'proxy_connect';

/** What Envoy should do with one request; the extproc adapter turns it into a ProcessingResponse. */
export type Outcome =
  | {
      readonly kind: 'continue';
      readonly set: ReadonlyArray<readonly [string, string]>;
      readonly remove: readonly string[];
    }
  | { readonly kind: 'immediate'; readonly status: number; readonly body: string }
  /**
   * `address`: the checked IP that Envoy must dial (the egress guard's pin); the hostname when no guard runs.
   * `upstream`: with `--upstream-proxy`/`--upstream-no-proxy`, whether Envoy dials it or goes through the proxy.
   */
  | {
      readonly kind: 'route';
      readonly route: 'intercept' | 'tunnel';
      readonly target: Target;
      readonly address?: string;
      readonly upstream?: UpstreamVia;
    }
  /** A `type: rewrite` match: set and remove headers, and dial `dial` (the checked address of the new host) instead. */
  /** `plain`: the destination is another sandbox, reached over plain http (the intercepting listener's plain route). */
  | {
      readonly kind: 'rewrite';
      readonly set: ReadonlyArray<readonly [string, string]>;
      readonly remove: readonly string[];
      readonly dial: { readonly host: string; readonly port: number };
      readonly plain?: boolean;
    }
  /** Hold the request and ask Envoy for its body; `resume` decides once the (first part of the) body is there. */
  | { readonly kind: 'awaitBody'; resume(body: Uint8Array, complete: boolean): Outcome | Promise<Outcome> };

/**
 * What the adapter can tell about a request beyond its pseudo-headers. Read only when a decision needs it
 * (a `full_request` callback), so ordinary requests never decode their whole header map.
 */
export interface RequestExtras {
  /** True when the request ended with its headers: no body follows, so none is asked for. */
  readonly endOfStream: boolean;
  /** The headers as the sandbox sent them, name -> values (pseudo-headers and Proxy-Authorization left out). */
  headers(): Record<string, string[]>;
}

/**
 * What one cloud provider rule does with a request it covers: sign it, authorize it, or refuse it.
 * `D`: the provider's decision; `R`: the request (the policy layer's PolicyRequest).
 */
export interface CloudHandler<D, R> {
  /** A value when it can answer at once (a cached token); a promise when it has to fetch or hash first. */
  handle(decision: D, req: R, extras: RequestExtras | undefined, sandboxId: string): Outcome | Promise<Outcome>;
}

/** Finds the compiled config (`P`: the policy layer's CompiledPolicy) that applies to a sandbox. */
export interface PolicySource<P> {
  policyFor(sandboxId: string): P | undefined;
}
