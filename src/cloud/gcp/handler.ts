import { CallbackFailure } from '../../callbacks/client.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { CompiledGcpRule } from '../../policy/compiled.js';
import type { Decision, PolicyRequest } from '../../policy/decide.js';
import type { CloudHandler, Outcome, RequestExtras } from '../../contracts/engine.js';
import type { CredentialValues, MintedCredential, TemporaryCredentials } from '../shared/temporary-credentials.js';
import { GcpTokenFailure, type TokenMinter } from './token-minter.js';

/** The engine's decision for a request to a Google API host while a `type: gcp` rule is enabled. */
export type GcpDecision = Extract<Decision, { outcome: 'gcp' }>;

/** The `reason` label of `authproxy_decisions_total` for Google Cloud requests. */
export type GcpDecisionReason = 'gcp' | 'gcp_token_failed';

/** Start of the 502 body when no token could be minted (the rest says why, never a value). */
export const GCP_TOKEN_FAILED = 'Google Cloud token minting failed';

/**
 * Cache keys name the provider and the rule's id: a hash of (client_email, private key, token_uri,
 * scopes), so a token is shared by every sandbox whose config holds the same key and scopes (it grants
 * exactly the same thing) and a changed key or scope list is a different entry.
 */
export function gcpTokenKey(rule: CompiledGcpRule): string {
  return `gcp-token\n${rule.id}`;
}

/** What the Google Cloud handler needs besides the decision. */
export interface GcpHandlerOptions {
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Epoch ms when a mint starts (its token's lifetime counts from there); injectable for tests. */
  readonly clock?: () => number;
}

const REMOVE = ['proxy-authorization'] as const;

/**
 * The `type: gcp` provider: authorizes every request to a Google API with an OAuth2 access token minted
 * from the rule's service-account key for its scopes, replacing whatever `Authorization` the sandbox
 * sent (the placeholder `CLOUDSDK_AUTH_ACCESS_TOKEN`). Tokens live in TemporaryCredentials until 5
 * minutes before they expire (shared, sealed, with fleet-wide single flight in shared mode), so a warm
 * request answers synchronously with an Outcome built once per token. A failed mint is 502, nothing is
 * cached, and the next request tries again. Never logs a token or a key.
 */
export class GcpTokenHandler implements CloudHandler<GcpDecision, PolicyRequest> {
  private readonly clock: () => number;
  /** The Outcome of each cached token, built once so a warm request allocates nothing. */
  private readonly outcomes = new WeakMap<CredentialValues, Outcome>();

  constructor(
    private readonly tokens: TemporaryCredentials,
    private readonly minter: TokenMinter,
    private readonly options: GcpHandlerOptions,
  ) {
    this.clock = options.clock ?? Date.now;
  }

  handle(
    decision: GcpDecision,
    _req: PolicyRequest,
    _extras: RequestExtras | undefined,
    sandboxId: string,
  ): Outcome | Promise<Outcome> {
    const rule = decision.rule;
    const found = this.tokens.get(gcpTokenKey(rule), () => this.mint(rule));
    if (!(found instanceof Promise)) return this.authorized(found, decision, sandboxId);
    return found.then(
      (values) => this.authorized(values, decision, sandboxId),
      (err: unknown) => this.failed(err, decision, sandboxId),
    );
  }

  private async mint(rule: CompiledGcpRule): Promise<MintedCredential> {
    const started = this.clock();
    const token = await this.minter.mint(rule);
    return {
      values: { authorization: `Bearer ${token.accessToken}` },
      expiresAt: started + token.expiresInSeconds * 1000,
    };
  }

  private authorized(values: CredentialValues, decision: GcpDecision, sandboxId: string): Outcome {
    let outcome = this.outcomes.get(values);
    if (!outcome) {
      const authorization = values.authorization;
      if (!authorization)
        return this.failed(new GcpTokenFailure('malformed', 'a cached token is incomplete'), decision, sandboxId);
      outcome = { kind: 'continue', set: [['authorization', authorization]], remove: REMOVE };
      this.outcomes.set(values, outcome);
    }
    this.options.metrics?.decision('inject', 'gcp');
    return outcome;
  }

  private failed(err: unknown, decision: GcpDecision, sandboxId: string): Outcome {
    // A waiter on another replica's failed mint gets a plain CallbackFailure: its reason, not the detail.
    const body =
      err instanceof GcpTokenFailure
        ? err.message
        : err instanceof CallbackFailure
          ? `${GCP_TOKEN_FAILED}: the mint for this key failed on another replica (${err.reason})`
          : `${GCP_TOKEN_FAILED}: no token could be obtained`;
    const reason = err instanceof CallbackFailure ? err.reason : 'internal';
    this.options.log.warn(
      { sandbox: sandboxId, rule: decision.rule.name, host: decision.target.host, reason, err: body },
      'Google Cloud token minting failed',
    );
    this.options.metrics?.decision('refuse', 'gcp_token_failed');
    return { kind: 'immediate', status: 502, body };
  }
}
