import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { Decision, PolicyRequest } from '../../policy/decide.js';
import type { CloudHandler, Outcome, RequestExtras } from '../../contracts/engine.js';
import { withSas } from './sas.js';
import { parseSandboxAuthorization, sharedKeyAuthorization, UnsignableAzureRequest } from './shared-key.js';

/** The engine's decision for a request to the storage account's endpoints while a `type: azure` rule is enabled. */
export type AzureDecision = Extract<Decision, { outcome: 'azure' }>;

/** What became of an Azure request; the `reason` label of `authproxy_decisions_total`. */
export type AzureDecisionReason = 'azure' | 'azure_sas' | 'azure_unsigned' | 'azure_account' | 'azure_unsignable';

/** Bodies of the refusals, each saying what to change. Exported for tests. */
export const AZURE_REFUSALS = {
  unsigned:
    'request is not Shared Key-signed: authproxy re-signs Azure Storage requests that the SDK signed with the placeholder key (AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING from the sandbox environment)',
  noDate: 'Azure request has no x-ms-date or Date header: authproxy signs the date the SDK chose',
  noHeaders: 'Azure re-signing needs the request headers, which this adapter does not provide',
} as const;

/** What the Azure handler needs. */
export interface AzureHandlerOptions {
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * The `type: azure` provider. With an account key: the request the sandbox's SDK signed with the
 * placeholder key (`Authorization: SharedKey <account>:<sig>`) is signed again with the real key over the
 * request as Envoy forwards it, keeping the sandbox's x-ms-date; unsigned requests, other schemes and
 * signatures for another account are 403. With a SAS token: any SAS the sandbox sent is replaced by the
 * configured one (`:path` changes) and its `Authorization` is dropped. Never logs a credential.
 */
export class AzureAuthorizer implements CloudHandler<AzureDecision, PolicyRequest> {
  constructor(private readonly options: AzureHandlerOptions) {}

  handle(decision: AzureDecision, req: PolicyRequest, extras: RequestExtras | undefined, sandboxId: string): Outcome {
    const { auth, account } = decision.rule;
    if (auth.kind === 'sas') {
      return this.counted('inject', 'azure_sas', {
        kind: 'continue',
        set: [[':path', withSas(req.path, auth.query)]],
        remove: ['authorization', 'proxy-authorization'],
      });
    }
    if (!extras) return this.refuse(decision, sandboxId, 'azure_unsignable', 502, AZURE_REFUSALS.noHeaders);
    const headers = extras.headers();
    const signature = parseSandboxAuthorization(headers.authorization);
    if (signature.scheme !== 'SharedKey')
      return this.refuse(decision, sandboxId, 'azure_unsigned', 403, AZURE_REFUSALS.unsigned);
    if (signature.account !== account) {
      // An account name is not a secret; anything that is not one is not echoed.
      const named = /^[a-z0-9]{1,64}$/.test(signature.account)
        ? `storage account "${signature.account}"`
        : 'another storage account';
      return this.refuse(
        decision,
        sandboxId,
        'azure_account',
        403,
        `Azure request refused: signed for ${named}, but ${decision.target.host} belongs to "${account}"`,
      );
    }
    if (!headers['x-ms-date']?.[0] && !headers.date?.[0])
      return this.refuse(decision, sandboxId, 'azure_unsignable', 400, AZURE_REFUSALS.noDate);
    try {
      const authorization = sharedKeyAuthorization(
        { method: req.method, path: req.path, headers, account, service: decision.service },
        auth.key,
      );
      return this.counted('inject', 'azure', {
        kind: 'continue',
        set: [['authorization', authorization]],
        remove: ['proxy-authorization'],
      });
    } catch (err) {
      if (err instanceof UnsignableAzureRequest)
        return this.refuse(
          decision,
          sandboxId,
          'azure_unsignable',
          400,
          `Azure request can't be re-signed: ${err.message}`,
        );
      // Fail closed, logging only the error's class.
      this.options.log.error(
        {
          sandbox: sandboxId,
          rule: decision.rule.name,
          host: decision.target.host,
          err: err instanceof Error ? err.name : 'error',
        },
        'Azure re-signing failed',
      );
      return this.counted('refuse', 'azure_unsignable', {
        kind: 'immediate',
        status: 502,
        body: 'Azure re-signing failed',
      });
    }
  }

  private refuse(
    decision: AzureDecision,
    sandboxId: string,
    reason: AzureDecisionReason,
    status: number,
    body: string,
  ): Outcome {
    this.options.log.info(
      { sandbox: sandboxId, rule: decision.rule.name, host: decision.target.host, reason, status },
      'Azure request refused',
    );
    return this.counted('refuse', reason, { kind: 'immediate', status, body });
  }

  private counted(outcome: 'inject' | 'refuse', reason: AzureDecisionReason, result: Outcome): Outcome {
    this.options.metrics?.decision(outcome, reason);
    return result;
  }
}
