import type { HeaderLookup } from './decide.js';

/** One entry of Envoy's header map, as the generated decoder gives it. */
interface HeaderEntry {
  readonly key: string;
  readonly value: string;
  readonly rawValue: Uint8Array;
}

/** A header value's text: UTF-8 when the bytes are valid UTF-8, else Latin-1 (one character per byte). */
export function headerText(raw: Uint8Array, fallback: string): string {
  if (raw.byteLength === 0) return fallback;
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const utf8 = buf.toString('utf8');
  return Buffer.byteLength(utf8) === buf.byteLength && !utf8.includes('\uFFFD') ? utf8 : buf.toString('latin1');
}

/**
 * Envoy's header map as a `match_headers` lookup: name (lowercase) -> its value when sent once, undefined
 * when sent more than once (ambiguous). Built only when a rule with `match_headers` is a candidate, from a
 * header list decoded then, so requests to other rules never decode their whole header map.
 */
export class ListHeaderLookup implements HeaderLookup {
  private map: Map<string, string | undefined> | undefined;

  constructor(private readonly list: () => readonly HeaderEntry[]) {}

  lookup(name: string): string | null | undefined {
    this.map ??= headerMap(this.list());
    const value = this.map.get(name);
    return value === undefined && !this.map.has(name) ? null : value;
  }
}

/** Envoy's header list as name (lowercase) -> value, undefined for a name sent more than once. */
export function headerMap(list: readonly HeaderEntry[]): Map<string, string | undefined> {
  const map = new Map<string, string | undefined>();
  for (const h of list) {
    const name = h.key.toLowerCase();
    map.set(name, map.has(name) ? undefined : headerText(h.rawValue, h.value));
  }
  return map;
}
