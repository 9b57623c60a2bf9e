import { AuthProxyError } from '../errors.js';
import { canonicalPattern, hostPatternProblem } from '../config/host-pattern.js';
import { ANY_SANDBOX, callbackOrigin, type SealBinding, type SealTarget } from '../secrets/seal-binding.js';
import { SANDBOX_ID } from '../contracts/envoy.js';

/** The binding flags of `authproxy seal`. */
export interface SealFlags {
  readonly sandbox?: string;
  readonly hosts?: string;
  readonly provider?: string;
  readonly callbackUrl?: string;
}

/**
 * The binding `authproxy seal` puts into a value: `--sandbox ID|*` and exactly one of `--hosts` (a header
 * rule's host patterns), `--provider aws|gcp|azure` (a provider rule's Secret) or `--callback-url` (a
 * callback's request header; its origin is bound). Usage errors name the flag, never the secret.
 */
export function sealBindingFromFlags(flags: SealFlags): SealBinding {
  const problems: string[] = [];
  const sandbox = flags.sandbox;
  if (sandbox === undefined)
    problems.push("--sandbox: required: the sandbox whose config may use the value, or '*' for any sandbox");
  else if (sandbox !== ANY_SANDBOX && !SANDBOX_ID.test(sandbox))
    problems.push(`--sandbox: "${sandbox.slice(0, 140)}" must be '*' or 1-128 characters of A-Z a-z 0-9 . _ : -`);
  const given = [flags.hosts, flags.provider, flags.callbackUrl].filter((f) => f !== undefined).length;
  if (given !== 1)
    problems.push('--hosts, --provider or --callback-url: give exactly one (where the value may be sent)');
  const target = given === 1 ? targetFrom(flags, problems) : undefined;
  if (problems.length > 0 || !target || sandbox === undefined)
    throw new AuthProxyError('usage', problems.join('; '), problems);
  return { sandbox, target };
}

function targetFrom(flags: SealFlags, problems: string[]): SealTarget | undefined {
  if (flags.hosts !== undefined) {
    const hosts = flags.hosts
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    if (hosts.length === 0) problems.push('--hosts: needs at least one host pattern');
    for (const h of hosts) {
      const problem = hostPatternProblem(h, false);
      if (problem) problems.push(`--hosts: ${problem}`);
    }
    return { hosts: hosts.map(canonicalPattern) };
  }
  if (flags.provider !== undefined) {
    if (flags.provider === 'aws' || flags.provider === 'gcp' || flags.provider === 'azure')
      return { provider: flags.provider };
    problems.push('--provider: must be aws, gcp or azure');
    return undefined;
  }
  try {
    const url = new URL(flags.callbackUrl!);
    if (url.protocol === 'http:' || url.protocol === 'https:') return { callback: callbackOrigin(url.href) };
  } catch {
    /* reported below */
  }
  problems.push('--callback-url: must be an absolute http:// or https:// URL (the callback URL of the config)');
  return undefined;
}
