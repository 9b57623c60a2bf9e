import { redactUrl } from '../policy/compiled.js';
import type { KeyObject } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import { formatPath, proxyConfigSchema, type ProxyConfig } from '../config/schema.js';
import { issueMessage } from '../config/load.js';
import { isProviderRule } from '../config/provider-schema.js';
import { sealHosts } from '../config/compile-rewrite.js';
import { decodeSealed, seal, SEALED_PREFIX } from '../secrets/sealing.js';
import { callbackOrigin, type SealTarget } from '../secrets/seal-binding.js';

/**
 * Turns an admin API body into the config to store: validated by the same zod schema as files, with every
 * opaque value sealed. Exists because the API accepts two things a file never holds — plaintext opaque
 * values (sealed here, before anything is stored) and, in a PATCH, opaque headers without a value that
 * keep their stored value — and both must be settled before the strict schema and the store see them.
 *
 * Which stored value a value-less opaque header keeps (PATCH):
 * - in `rules[i].headers[j]`: the opaque header with the same name (case-insensitive) in the stored rule
 *   with the same `name`, wherever that rule now sits;
 * - in `callbacks[i].request_headers[j]`: the opaque header with the same name in the first stored callback
 *   with the same `url` that has one (so reordering callbacks keeps values; changing a URL needs the value).
 */

/** Largest plaintext opaque value: its sealed form (binding of at most 1 KiB, 63 bytes of box, base64url) must fit a sealed value's 12,288 characters. */
export const MAX_OPAQUE_BYTES = 6000;

/** Where an opaque value sits: a header of a rule or callback, or a provider rule's Secret. */
interface Slot {
  /** Path from the config root to the object holding `value` (a header, or a Secret). */
  readonly path: ReadonlyArray<string | number>;
  readonly field: string;
  readonly action: 'keep' | 'seal' | 'sealed';
  readonly plaintext?: string;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Secrets of provider rules, by rule type: `rules[i].<type>.<field>`. */
const PROVIDER_SECRETS: Record<string, readonly string[]> = {
  aws: ['access_key_id', 'secret_access_key'],
  gcp: ['service_account_json'],
  azure: ['account_key', 'sas_token'],
};

/** What `prepareConfig` needs besides the body. */
export interface PrepareOptions {
  /** `put` needs every opaque value; `patch` may keep stored ones. */
  readonly mode: 'put' | 'patch';
  /** The stored config a PATCH keeps opaque values from. */
  readonly stored?: ProxyConfig;
  /** The proxy's public sealing key; without it, plaintext opaque values are refused. */
  readonly sealPublicKey: KeyObject | undefined;
  /** The sandbox in the request's path: values sealed here are bound to it (and to where each one goes). */
  readonly sandboxId: string;
}

/** The config to store, or every problem found, one line each, naming the field and never a value. */
export type Prepared = { ok: true; config: ProxyConfig } | { ok: false; problems: string[] };

/** Validates `body` and seals its opaque values; see the module comment for PATCH matching. */
export function prepareConfig(body: unknown, opts: PrepareOptions): Prepared {
  const problems: string[] = [];
  const slots: Slot[] = [];
  const candidate = extractOpaque(body, slots, problems);
  const parsed = proxyConfigSchema.safeParse(candidate);
  if (!parsed.success) {
    // issueMessage, as for files: an unrecognized key (a mis-indented plaintext opaque value) is not echoed.
    problems.push(...parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`));
    return { ok: false, problems };
  }
  const config = parsed.data;
  for (const slot of slots) {
    const holder = holderAt(config, slot.path);
    const value = settle(slot, config, opts, problems);
    if (value !== undefined) holder.value = value;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config };
}

/**
 * One opaque object of the body (a header or a Secret), copied with `is_set` and its plaintext value taken
 * out so that the strict schema accepts it; records what to do with it in `slots`.
 */
function extractOne(h: Obj, path: ReadonlyArray<string | number>, slots: Slot[], problems: string[]): Obj {
  const field = formatPath(path);
  const { is_set: isSet, value, ...rest } = h;
  if (isSet !== undefined && typeof isSet !== 'boolean') problems.push(`${field}.is_set: must be true or false`);
  if (isSet === true && value !== undefined) {
    problems.push(`${field}: is_set: true keeps the stored value; send either is_set or a new value, not both`);
    return { ...rest, value: 'x' };
  }
  if (value === '') problems.push(`${field}.value: must not be empty`);
  if (value === undefined) {
    if (isSet === false) problems.push(`${field}.value: required when is_set is false`);
    slots.push({ path, field, action: 'keep' });
    return { ...rest, value: 'x' };
  }
  if (typeof value !== 'string') return { ...rest, value };
  if (value.startsWith(SEALED_PREFIX)) {
    try {
      decodeSealed(value);
    } catch (err) {
      problems.push(`${field}.value: ${err instanceof AuthProxyError ? err.message : 'is not a valid sealed value'}`);
    }
    slots.push({ path, field, action: 'sealed' });
    return { ...rest, value };
  }
  slots.push({ path, field, action: 'seal', plaintext: value });
  return { ...rest, value };
}

const isOpaque = (v: unknown): v is Obj => isObject(v) && v.type === 'opaque';

/** Copies the body, taking `is_set` and plaintext values out of every opaque header and Secret. */
function extractOpaque(body: unknown, slots: Slot[], problems: string[]): unknown {
  if (!isObject(body)) return body;
  const copy: Obj = { ...body };
  const headerLists: ReadonlyArray<readonly [string, string]> = [
    ['rules', 'headers'],
    ['callbacks', 'request_headers'],
  ];
  for (const [list, key] of headerLists) {
    const items = copy[list];
    if (!Array.isArray(items)) continue;
    copy[list] = items.map((item: unknown, i) => {
      if (!isObject(item)) return item;
      const out: Obj = { ...item };
      if (Array.isArray(item[key]))
        out[key] = (item[key] as unknown[]).map((h, j) =>
          isOpaque(h) ? extractOne(h, [list, i, key, j], slots, problems) : h,
        );
      const provider = typeof item.type === 'string' ? item.type : '';
      const auth = item[provider];
      if (list === 'rules' && PROVIDER_SECRETS[provider] && isObject(auth)) {
        const next: Obj = { ...auth };
        for (const name of PROVIDER_SECRETS[provider]!)
          if (isOpaque(auth[name]))
            next[name] = extractOne(auth[name] as Obj, [list, i, provider, name], slots, problems);
        out[provider] = next;
      }
      return out;
    });
  }
  return copy;
}

/** The object at `path` of the parsed config (a header or a Secret): what holds the value to settle. */
function holderAt(config: ProxyConfig, path: ReadonlyArray<string | number>): { value: string; name?: string } {
  let at: unknown = config;
  for (const part of path) at = (at as Record<string | number, unknown>)[part];
  return at as { value: string; name?: string };
}

/** The value to store for one opaque value, or undefined after recording why there is none. */
function settle(slot: Slot, config: ProxyConfig, opts: PrepareOptions, problems: string[]): string | undefined {
  const field = `${slot.field}.value`;
  if (slot.action === 'sealed') return undefined;
  if (slot.action === 'seal') {
    if (!opts.sealPublicKey) {
      problems.push(
        `${field}: opaque values need a sealing key on the server (serve --sealing-key); none is configured`,
      );
      return undefined;
    }
    if (Buffer.byteLength(slot.plaintext!, 'utf8') > MAX_OPAQUE_BYTES) {
      problems.push(`${field}: opaque value is longer than ${MAX_OPAQUE_BYTES} bytes`);
      return undefined;
    }
    try {
      return seal(slot.plaintext!, opts.sealPublicKey, {
        sandbox: opts.sandboxId,
        target: sealTargetAt(slot.path, config),
      });
    } catch (err) {
      if (!(err instanceof AuthProxyError)) throw err;
      problems.push(`${field}: ${err.message}`);
      return undefined;
    }
  }
  if (opts.mode === 'put') {
    problems.push(`${field}: required (only PATCH keeps a stored opaque value)`);
    return undefined;
  }
  const kept = opts.stored ? storedOpaque(slot.path, config, opts.stored) : undefined;
  if (kept === undefined)
    problems.push(`${field}: no stored value to keep for opaque ${describe(slot.path, config)}; send a value`);
  return kept;
}

/** Where the value at `path` goes, which its seal is bound to: the rule's hosts, the provider, or the callback's origin. */
function sealTargetAt(path: ReadonlyArray<string | number>, config: ProxyConfig): SealTarget {
  const [list, i] = path as [string, number];
  if (list === 'callbacks') return { callback: callbackOrigin(config.callbacks[i]!.url) };
  const rule = config.rules[i]!;
  return isProviderRule(rule) ? { provider: rule.type } : { hosts: sealHosts(rule) };
}

function describe(path: ReadonlyArray<string | number>, config: ProxyConfig): string {
  const [list, i, key] = path as [string, number, string];
  const holder = holderAt(config, path);
  if (list === 'callbacks') return `header "${holder.name}" (callback ${redactUrl(config.callbacks[i]!.url)})`;
  const rule = config.rules[i]!;
  return key === 'headers'
    ? `header "${holder.name}" (rule "${rule.name}")`
    : `${key}.${String(path[3])} (rule "${rule.name}")`;
}

/**
 * The stored value a value-less opaque entry keeps (PATCH):
 * - a rule's header: the opaque header with the same name (case-insensitive) in the stored rule with the same
 *   `name`, only while the rule's hosts (a rewrite's destination) stay among the stored ones (or a PATCH could
 *   point a write-only credential at a host of the caller's choosing);
 * - a provider rule's Secret: the same Secret of the stored rule with the same `name` and `type` (aws and gcp
 *   rules match fixed hosts, so the credential cannot be moved; an azure rule's only while its
 *   `storage_account` stays the same);
 * - a callback's header: the opaque header with the same name in the first stored callback with the same `url`.
 */
function storedOpaque(
  path: ReadonlyArray<string | number>,
  config: ProxyConfig,
  stored: ProxyConfig,
): string | undefined {
  const [list, i, key] = path as [string, number, string];
  const holder = holderAt(config, path);
  const lower = holder.name?.toLowerCase();
  const pick = (headers: ReadonlyArray<{ name: string; type: string; value: string }>) =>
    headers.find((h) => h.type === 'opaque' && h.name.toLowerCase() === lower)?.value;
  if (list === 'callbacks') {
    const url = config.callbacks[i]!.url;
    for (const cb of stored.callbacks) {
      if (cb.url !== url) continue;
      const value = pick(cb.request_headers);
      if (value !== undefined) return value;
    }
    return undefined;
  }
  const next = config.rules[i]!;
  const rule = stored.rules.find((r) => r.name === next.name && r.type === next.type);
  if (!rule) return undefined;
  if (key !== 'headers') {
    // An azure rule's hosts come from its storage account: a Secret stays only with the account it was stored for.
    if (next.type === 'azure' && rule.type === 'azure' && next.azure.storage_account !== rule.azure.storage_account)
      return undefined;
    const secret = holderAt({ ...stored, rules: [rule] } as ProxyConfig, ['rules', 0, key, path[3]!]) as
      | { type?: string; value: string }
      | undefined;
    return secret?.type === 'opaque' ? secret.value : undefined;
  }
  if (isProviderRule(next) || isProviderRule(rule)) return undefined;
  // A header rule's hosts, a rewrite's destination (sealHosts): changing it must not carry the value along.
  const to = sealHosts(next);
  if (to.length === 0 || !to.every((h) => sealHosts(rule).includes(h))) return undefined;
  return pick(rule.headers);
}
