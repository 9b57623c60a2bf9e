import type { CompiledPolicy } from '../policy/compiled.js';
import type { PolicySource } from './engine.js';

/**
 * Sidecar mode's policy source: one config for the one sandbox behind this Envoy, whatever id the
 * sidecar sends. Replacing it swaps a single reference, so a reload is atomic for every request.
 */
export class SidecarPolicy implements PolicySource {
  constructor(private current: CompiledPolicy) {}

  policyFor(): CompiledPolicy {
    return this.current;
  }

  replace(policy: CompiledPolicy): void {
    this.current = policy;
  }
}
