import { redactUrl } from '../policy/compiled.js';
import type { KeyObject } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import { formatPath, proxyConfigSchema, type ProxyConfig } from '../config/schema.js';
import { decodeSealed, seal, SEALED_PREFIX } from '../secrets/sealing.js';

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

/** Largest plaintext opaque value: its sealed form (61 bytes of overhead, base64url) must still fit 8192 characters. */
export const MAX_OPAQUE_BYTES = 6000;

type ListName = 'rules' | 'callbacks';
const HEADER_LISTS: ReadonlyArray<readonly [ListName, 'headers' | 'request_headers']> = [
  ['rules', 'headers'],
  ['callbacks', 'request_headers'],
];

interface Slot {
  readonly list: ListName;
  readonly i: number;
  readonly j: number;
  readonly field: string;
  readonly action: 'keep' | 'seal' | 'sealed';
  readonly plaintext?: string;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What `prepareConfig` needs besides the body. */
export interface PrepareOptions {
  /** `put` needs every opaque value; `patch` may keep stored ones. */
  readonly mode: 'put' | 'patch';
  /** The stored config a PATCH keeps opaque values from. */
  readonly stored?: ProxyConfig;
  /** The proxy's public sealing key; without it, plaintext opaque values are refused. */
  readonly sealPublicKey: KeyObject | undefined;
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
    problems.push(...parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`));
    return { ok: false, problems };
  }
  const config = parsed.data;
  for (const slot of slots) {
    const header = headerAt(config, slot);
    const value = settle(slot, header.name, config, opts, problems);
    if (value !== undefined) header.value = value;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config };
}

/** Copies the body, taking `is_set` and plaintext values out of opaque headers so the strict schema accepts them. */
function extractOpaque(body: unknown, slots: Slot[], problems: string[]): unknown {
  if (!isObject(body)) return body;
  const copy: Obj = { ...body };
  for (const [list, key] of HEADER_LISTS) {
    const items = copy[list];
    if (!Array.isArray(items)) continue;
    copy[list] = items.map((item: unknown, i) => {
      if (!isObject(item) || !Array.isArray(item[key])) return item;
      const headers = (item[key] as unknown[]).map((h, j) => {
        if (!isObject(h) || h.type !== 'opaque') return h;
        const field = `${list}[${i}].${key}[${j}]`;
        const { is_set: isSet, value, ...rest } = h;
        if (isSet !== undefined && typeof isSet !== 'boolean') problems.push(`${field}.is_set: must be true or false`);
        if (isSet === true && value !== undefined) {
          problems.push(`${field}: is_set: true keeps the stored value; send either is_set or a new value, not both`);
          return { ...rest, value: '' };
        }
        if (value === '') problems.push(`${field}.value: must not be empty`);
        if (value === undefined) {
          if (isSet === false) problems.push(`${field}.value: required when is_set is false`);
          slots.push({ list, i, j, field, action: 'keep' });
          return { ...rest, value: '' };
        }
        if (typeof value !== 'string') return { ...rest, value };
        if (value.startsWith(SEALED_PREFIX)) {
          try {
            decodeSealed(value);
          } catch (err) {
            problems.push(`${field}.value: ${err instanceof AuthProxyError ? err.message : 'is not a valid sealed value'}`);
          }
          slots.push({ list, i, j, field, action: 'sealed' });
          return { ...rest, value };
        }
        slots.push({ list, i, j, field, action: 'seal', plaintext: value });
        return { ...rest, value };
      });
      return { ...item, [key]: headers };
    });
  }
  return copy;
}

function headerAt(config: ProxyConfig, slot: Slot): { name: string; value: string } {
  return slot.list === 'rules' ? config.rules[slot.i]!.headers[slot.j]! : config.callbacks[slot.i]!.request_headers[slot.j]!;
}

/** The value to store for one opaque header, or undefined after recording why there is none. */
function settle(slot: Slot, name: string, config: ProxyConfig, opts: PrepareOptions, problems: string[]): string | undefined {
  const field = `${slot.field}.value`;
  if (slot.action === 'sealed') return undefined;
  if (slot.action === 'seal') {
    if (!opts.sealPublicKey) {
      problems.push(`${field}: opaque values need a sealing key on the server (serve --sealing-key); none is configured`);
      return undefined;
    }
    if (Buffer.byteLength(slot.plaintext!, 'utf8') > MAX_OPAQUE_BYTES) {
      problems.push(`${field}: opaque value is longer than ${MAX_OPAQUE_BYTES} bytes`);
      return undefined;
    }
    return seal(slot.plaintext!, opts.sealPublicKey);
  }
  if (opts.mode === 'put') {
    problems.push(`${field}: required (only PATCH keeps a stored opaque value)`);
    return undefined;
  }
  const kept = storedOpaque(slot, name, config, opts.stored);
  if (kept === undefined) problems.push(`${field}: no stored value to keep for opaque header "${name}" (${ownerOf(slot, config)}); send a value`);
  return kept;
}

function ownerOf(slot: Slot, config: ProxyConfig): string {
  return slot.list === 'rules' ? `rule "${config.rules[slot.i]!.name}"` : `callback ${redactUrl(config.callbacks[slot.i]!.url)}`;
}

function storedOpaque(slot: Slot, name: string, config: ProxyConfig, stored: ProxyConfig | undefined): string | undefined {
  if (!stored) return undefined;
  const lower = name.toLowerCase();
  const pick = (headers: ReadonlyArray<{ name: string; type: string; value: string }>) =>
    headers.find((h) => h.type === 'opaque' && h.name.toLowerCase() === lower)?.value;
  if (slot.list === 'rules') {
    const next = config.rules[slot.i]!;
    const rule = stored.rules.find((r) => r.name === next.name);
    // A kept secret may only go where it already went: the new hosts must be among the stored ones, or a
    // PATCH could point a write-only credential at a host of the caller's choosing.
    if (!rule || !next.match_hosts.every((h) => rule.match_hosts.includes(h))) return undefined;
    return pick(rule.headers);
  }
  const url = config.callbacks[slot.i]!.url;
  for (const cb of stored.callbacks) {
    if (cb.url !== url) continue;
    const value = pick(cb.request_headers);
    if (value !== undefined) return value;
  }
  return undefined;
}
