import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import { AzureAuthorizer } from './handler.js';

/** What `serve` hands the Azure provider. */
export interface AzureSetup {
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * The `type: azure` handler `serve` wires into the Engine, loaded (like the other providers) only when a
 * config has a `type: azure` rule. It needs no SDK and no network: Shared Key and SAS are computed locally.
 */
export function createAzureHandler(setup: AzureSetup): AzureAuthorizer {
  return new AzureAuthorizer({ log: setup.log, metrics: setup.metrics });
}
