import { AuthProxyError } from '../errors.js';

/**
 * Where a sealed value may be used. Exists so that a `sealed:` value is only good for the place it was
 * sealed for: the binding is the seal's authenticated data (AES-GCM AAD), so it cannot be edited without
 * breaking the seal, and it is checked against the place a config uses the value when the config is
 * applied. A value copied into another sandbox's config, or moved to a rule for other hosts, is refused.
 *
 * - a header rule's value: the rule's host patterns (`hosts`);
 * - a provider rule's Secret: the provider (`aws`, `gcp`, `azure`), whose hosts authproxy fixes itself;
 * - a callback's request header: the callback URL's origin (scheme, host and port), where it is sent.
 */
export type SealTarget =
  | { readonly hosts: readonly string[] }
  | { readonly provider: 'aws' | 'gcp' | 'azure' }
  | { readonly callback: string };

/** A seal's binding: a sandbox id (or `*`, any sandbox) and a target. */
export interface SealBinding {
  readonly sandbox: string;
  readonly target: SealTarget;
}

/** The sandbox of a binding that any sandbox may use. */
export const ANY_SANDBOX = '*';
/** Largest encoded binding: keeps a bound seal of a 6000-byte value inside a header value's limit. */
export const MAX_BINDING_BYTES = 1024;

const SANDBOX = /^(\*|[A-Za-z0-9][A-Za-z0-9._:-]{0,127})$/;
const PROVIDERS = new Set(['aws', 'gcp', 'azure']);

/** The origin a callback's request headers are bound to: `https://host[:port]` of its URL. */
export function callbackOrigin(url: string): string {
  return new URL(url).origin;
}

/** Host patterns as a binding holds them: lower-case, without a trailing dot, unique, sorted. */
function canonicalHosts(hosts: readonly string[]): string[] {
  return [...new Set(hosts.map((h) => h.toLowerCase().replace(/\.$/, '')))].sort();
}

/** The binding's bytes (canonical JSON), or a `usage` error when it is malformed or too large. */
export function encodeBinding(binding: SealBinding): Buffer {
  const problem = bindingShapeProblem(binding);
  if (problem) throw new AuthProxyError('usage', problem);
  const t = binding.target;
  const json =
    'hosts' in t
      ? { sandbox: binding.sandbox, hosts: canonicalHosts(t.hosts) }
      : 'provider' in t
        ? { sandbox: binding.sandbox, provider: t.provider }
        : { sandbox: binding.sandbox, callback: t.callback };
  const bytes = Buffer.from(JSON.stringify(json), 'utf8');
  if (bytes.length > MAX_BINDING_BYTES)
    throw new AuthProxyError(
      'usage',
      `the binding (sandbox and hosts) is longer than ${MAX_BINDING_BYTES} bytes; bind fewer hosts`,
    );
  return bytes;
}

/** Reads a binding back from a seal; undefined when the bytes are not one (a malformed seal). */
export function decodeBinding(bytes: Buffer): SealBinding | undefined {
  let v: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    v = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const sandbox = v.sandbox;
  if (typeof sandbox !== 'string') return undefined;
  let target: SealTarget;
  if (Array.isArray(v.hosts) && v.hosts.every((h) => typeof h === 'string')) target = { hosts: v.hosts as string[] };
  else if (typeof v.provider === 'string') target = { provider: v.provider as 'aws' };
  else if (typeof v.callback === 'string') target = { callback: v.callback };
  else return undefined;
  const binding = { sandbox, target };
  return bindingShapeProblem(binding) ? undefined : binding;
}

function bindingShapeProblem(b: SealBinding): string | undefined {
  if (!SANDBOX.test(b.sandbox))
    return 'the sandbox of a binding is "*" or a sandbox id (1-128 characters of A-Z a-z 0-9 . _ : -)';
  const t = b.target;
  if ('hosts' in t)
    return t.hosts.length === 0 || t.hosts.some((h) => !/^(\*\.)?[a-z0-9.-]{1,253}$/i.test(h))
      ? 'the hosts of a binding are host patterns (api.example.com, *.example.com)'
      : undefined;
  if ('provider' in t) return PROVIDERS.has(t.provider) ? undefined : 'the provider of a binding is aws, gcp or azure';
  return /^https?:\/\/[^/\s]+$/.test(t.callback)
    ? undefined
    : 'the callback of a binding is a URL origin (https://host[:port])';
}

/** A target in words, for error messages (host names and origins are not secrets). */
export function describeTarget(t: SealTarget): string {
  if ('hosts' in t) {
    const hosts = canonicalHosts(t.hosts);
    return `hosts ${hosts.slice(0, 5).join(', ')}${hosts.length > 5 ? ` and ${hosts.length - 5} more` : ''}`;
  }
  if ('provider' in t) return `provider ${t.provider}`;
  return `callback ${t.callback}`;
}

/** Whether a sealed host pattern covers a rule's host pattern: the same, or below a sealed `*.domain`. */
function covers(sealed: string, used: string): boolean {
  if (sealed === used) return true;
  if (!sealed.startsWith('*.')) return false;
  const name = used.startsWith('*.') ? used.slice(2) : used;
  return name.endsWith(sealed.slice(1));
}

/**
 * Why a value sealed with `bound` may not be used for `sandbox` and `target`, or undefined when it may.
 * Hosts: every host pattern of the rule must be covered by the sealed ones (a rule for fewer hosts is
 * fine; a rule for another host is not). Names sandboxes and hosts, never a value.
 */
export function bindingProblem(
  bound: SealBinding,
  sandbox: string | undefined,
  target: SealTarget,
): string | undefined {
  if (bound.sandbox !== ANY_SANDBOX && bound.sandbox !== sandbox) {
    return sandbox === undefined
      ? `is bound to sandbox "${bound.sandbox}", and this config is not one sandbox's own (seal it with --sandbox '*')`
      : `is bound to sandbox "${bound.sandbox}", not "${sandbox}"`;
  }
  const b = bound.target;
  const wrongKind = `is bound to ${describeTarget(b)}, not to ${describeTarget(target)}`;
  if ('hosts' in target) {
    if (!('hosts' in b)) return wrongKind;
    const sealed = canonicalHosts(b.hosts);
    const outside = canonicalHosts(target.hosts).find((h) => !sealed.some((s) => covers(s, h)));
    return outside === undefined ? undefined : `is bound to ${describeTarget(b)}; "${outside}" is not among them`;
  }
  if ('provider' in target) return 'provider' in b && b.provider === target.provider ? undefined : wrongKind;
  return 'callback' in b && b.callback === target.callback ? undefined : wrongKind;
}
