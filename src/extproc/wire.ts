import type { HeaderValue } from '../gen/envoy/config/core/v3/base.js';
import { HttpBody, HttpHeaders } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import { headerText } from '../policy/header-lookup.js';

/**
 * Reading a ProcessingRequest straight from its protobuf bytes, decoding only what a decision reads: which
 * message it is, a handful of headers (the pseudo-headers and transparent mode's two capture headers), the
 * request_headers end_of_stream flag and the two tunnel attributes. The generated decoder turns every header
 * into an object with a string and a copied Buffer; an SDK request carries 15 to 30 of them, and that was
 * most of a warm decision's cost. The whole header map (full_request snapshots) and a request body are
 * decoded with the generated code, from the same bytes, only when asked for.
 *
 * Field semantics follow the generated decoder: for a singular field the last occurrence wins, a field
 * with an unexpected wire type is skipped, a map entry without a value is ignored. Malformed bytes (a
 * truncated field, a length past the end, an invalid wire type) throw, which grpc-js answers with INTERNAL.
 */

/** Which `request` of a ProcessingRequest is set (the generated `$case` names). */
export type RequestKind =
  | 'requestHeaders'
  | 'responseHeaders'
  | 'requestBody'
  | 'responseBody'
  | 'requestTrailers'
  | 'responseTrailers';
const KINDS: ReadonlyArray<RequestKind | undefined> = [
  undefined,
  undefined,
  'requestHeaders',
  'responseHeaders',
  'requestBody',
  'responseBody',
  'requestTrailers',
  'responseTrailers',
];

/** The headers a decision may read, in the order of `WireRequest.values`. */
export const PICKED_HEADERS = [
  ':method',
  ':scheme',
  ':authority',
  ':path',
  'x-authproxy-original-dst',
  'x-authproxy-capture',
] as const;
/** A header of PICKED_HEADERS. */
export type PickedHeader = (typeof PICKED_HEADERS)[number];
const PICKED_BYTES = PICKED_HEADERS.map((k) => Buffer.from(k, 'latin1'));

/** The attribute namespace the inner ext_proc filter's attributes arrive under, and the two read. */
export const EXT_PROC_ATTRIBUTES = 'envoy.filters.http.ext_proc';
export const CONNECT_AUTHORITY = 'filter_state["authproxy.connect_authority"]';
export const SNI = 'connection.requested_server_name';
const NAMESPACE_BYTES = Buffer.from(EXT_PROC_ATTRIBUTES, 'latin1');
const ATTRIBUTE_BYTES = [Buffer.from(CONNECT_AUTHORITY, 'latin1'), Buffer.from(SNI, 'latin1')];

/** One ProcessingRequest, read lazily; `values` and the attributes are filled for request_headers only. */
export class WireRequest {
  /** Undefined when no `request` is set (the stream is then ended with INVALID_ARGUMENT). */
  kind: RequestKind | undefined = undefined;
  /** Each PICKED_HEADERS value (raw_value as latin1 first, else value), null when absent. */
  readonly values: Array<string | null> = [null, null, null, null, null, null];
  /** Bit i set: PICKED_HEADERS[i] appeared more than once (the request is then ambiguous). */
  repeated = 0;
  /** request_headers: no body follows. */
  endOfStream = false;
  /** Whether the connect-authority attribute is present at all (any type), and the two as non-empty strings. */
  hasConnectAuthority = false;
  connectAuthority: string | undefined = undefined;
  sni: string | undefined = undefined;
  /** The `request` submessage: bytes[start, end). */
  start = 0;
  end = 0;

  constructor(readonly bytes: Buffer) {}

  /** The header map's bytes, [mapStart, mapEnd), for `lookup`; -1 when the message has none. */
  mapStart = -1;
  mapEnd = 0;

  /**
   * A header for `match_headers` (HeaderLookup), found by scanning the header map's bytes for that one
   * name (ASCII case-insensitively): nothing else is decoded, and a request that no such rule looks at
   * costs nothing. The value is read as the generated decoder's list would give it (raw_value first).
   */
  lookup(name: string): string | null | undefined {
    if (this.mapStart < 0) return null;
    // Rules for several accounts on one host all ask for the same header: remember the last answer.
    if (name !== this.lastName) {
      this.lastValue = findHeader(this.bytes, this.mapStart, this.mapEnd, nameBytes(name));
      this.lastName = name;
    }
    return this.lastValue;
  }
  private lastName: string | undefined = undefined;
  private lastValue: string | null | undefined = null;

  /** A picked header's value; undefined when it is repeated. */
  header(name: PickedHeader): string | null | undefined {
    const i = PICKED_HEADERS.indexOf(name);
    return (this.repeated >> i) & 1 ? undefined : this.values[i]!;
  }

  /** The whole header map of a request_headers or response_headers message, decoded now. */
  headerList(): HeaderValue[] {
    if (this.kind !== 'requestHeaders' && this.kind !== 'responseHeaders') return [];
    return HttpHeaders.decode(this.bytes.subarray(this.start, this.end)).headers?.headers ?? [];
  }

  /** The body of a request_body or response_body message, decoded now. */
  body(): HttpBody {
    return HttpBody.decode(this.bytes.subarray(this.start, this.end));
  }
}

let pos = 0;

function malformed(): Error {
  return new Error('malformed ProcessingRequest');
}

function varint(buf: Buffer, end: number): number {
  let result = 0;
  let shift = 0;
  let b: number;
  do {
    if (pos >= end) throw malformed();
    b = buf[pos++]!;
    if (shift < 32) result |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80 && shift < 70);
  if (b & 0x80) throw malformed();
  return result >>> 0;
}

/** Skips a length-delimited field's payload; returns where it starts (`pos` is then its end). */
function delimited(buf: Buffer, end: number): number {
  const len = varint(buf, end);
  const start = pos;
  if (len > end - start) throw malformed();
  pos = start + len;
  return start;
}

function skip(buf: Buffer, end: number, tag: number, depth = 0): void {
  switch (tag & 7) {
    case 0:
      varint(buf, end);
      return;
    case 1:
      if ((pos += 8) > end) throw malformed();
      return;
    case 2:
      delimited(buf, end);
      return;
    case 5:
      if ((pos += 4) > end) throw malformed();
      return;
    case 3: {
      if (depth > 64) throw malformed();
      for (;;) {
        const inner = varint(buf, end);
        if ((inner & 7) === 4) {
          if (inner >>> 3 !== tag >>> 3) throw malformed();
          return;
        }
        skip(buf, end, inner, depth + 1);
      }
    }
    default:
      throw malformed();
  }
}

/** Reads the next tag; tag 0 and a stray end-group are malformed. */
function tagAt(buf: Buffer, end: number): number {
  const tag = varint(buf, end);
  if (tag >>> 3 === 0 || (tag & 7) === 4) throw malformed();
  return tag;
}

function equals(buf: Buffer, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

/** grpc-js's deserializer for the ext_proc stream: a ProcessingRequest read as described above. */
export function readRequest(bytes: Buffer): WireRequest {
  const req = new WireRequest(bytes);
  const end = bytes.length;
  let field = 0;
  let struct = -1;
  let structEnd = 0;
  pos = 0;
  while (pos < end) {
    const tag = tagAt(bytes, end);
    const f = tag >>> 3;
    if (f >= 2 && f <= 7 && (tag & 7) === 2) {
      req.start = delimited(bytes, end);
      req.end = pos;
      field = f;
    } else if (f === 9 && (tag & 7) === 2) {
      const start = delimited(bytes, end);
      const found = attributeEntry(bytes, start, pos);
      if (found >= 0) {
        struct = found;
        structEnd = foundEnd;
      }
    } else {
      skip(bytes, end, tag);
    }
  }
  req.kind = KINDS[field];
  if (field === 2) readHeaders(req, bytes, req.start, req.end);
  if (struct >= 0) readAttributes(req, bytes, struct, structEnd);
  return req;
}

/** Where the Struct that attributeEntry found ends. */
let foundEnd = 0;

/** A map entry of `attributes`: the start of its Struct when its key is ours and it has one (end in foundEnd), else -1. */
function attributeEntry(buf: Buffer, start: number, end: number): number {
  const after = pos;
  pos = start;
  let ours = false;
  let value = -1;
  let valueEnd = 0;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag === 10) {
      const s = delimited(buf, end);
      ours = equals(buf, s, pos, NAMESPACE_BYTES);
    } else if (tag === 18) {
      value = delimited(buf, end);
      valueEnd = pos;
    } else skip(buf, end, tag);
  }
  pos = after;
  if (!ours || value < 0) return -1;
  foundEnd = valueEnd;
  return value;
}

/** HttpHeaders: the last `headers` map and `end_of_stream`; then the picked headers of that map. */
function readHeaders(req: WireRequest, buf: Buffer, start: number, end: number): void {
  pos = start;
  let map = -1;
  let mapEnd = 0;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag === 10) {
      map = delimited(buf, end);
      mapEnd = pos;
    } else if (tag === 24) req.endOfStream = varint(buf, end) !== 0;
    else skip(buf, end, tag);
  }
  if (map < 0) return;
  req.mapStart = map;
  req.mapEnd = mapEnd;
  pos = map;
  while (pos < mapEnd) {
    const tag = tagAt(buf, mapEnd);
    if (tag !== 10) {
      skip(buf, mapEnd, tag);
      continue;
    }
    const entry = delimited(buf, mapEnd);
    const next = pos;
    readHeaderValue(req, buf, entry, next);
    pos = next;
  }
}

/** One HeaderValue: key, value, raw_value (each last one wins); kept when the key is a picked header. */
function readHeaderValue(req: WireRequest, buf: Buffer, start: number, end: number): void {
  pos = start;
  let key = -1;
  let keyEnd = 0;
  let value = -1;
  let valueEnd = 0;
  let raw = -1;
  let rawEnd = 0;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag === 10) {
      key = delimited(buf, end);
      keyEnd = pos;
    } else if (tag === 18) {
      value = delimited(buf, end);
      valueEnd = pos;
    } else if (tag === 26) {
      raw = delimited(buf, end);
      rawEnd = pos;
    } else skip(buf, end, tag);
  }
  if (key < 0) return;
  for (let i = 0; i < PICKED_BYTES.length; i++) {
    if (!equals(buf, key, keyEnd, PICKED_BYTES[i]!)) continue;
    if (req.values[i] !== null) req.repeated |= 1 << i;
    else
      req.values[i] =
        raw >= 0 && rawEnd > raw
          ? req.bytes.toString('latin1', raw, rawEnd)
          : value >= 0
            ? req.bytes.toString('utf8', value, valueEnd)
            : '';
    return;
  }
}

/** Header names asked for by `match_headers`, as bytes: few (a config's names), so kept once each. */
const NAME_BYTES = new Map<string, Buffer>();
function nameBytes(name: string): Buffer {
  let bytes = NAME_BYTES.get(name);
  if (!bytes) {
    bytes = Buffer.from(name, 'latin1');
    if (NAME_BYTES.size < 1024) NAME_BYTES.set(name, bytes);
  }
  return bytes;
}

/** `key` equals the lowercase name `want`, ASCII letters compared without case. */
function keyIs(buf: Buffer, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) {
    const b = buf[start + i]!;
    if ((b >= 65 && b <= 90 ? b + 32 : b) !== want[i]) return false;
  }
  return true;
}

/** The value of the one entry named `want` in a header map: null when none, undefined when several. */
function findHeader(buf: Buffer, start: number, end: number, want: Uint8Array): string | null | undefined {
  let found: string | null = null;
  pos = start;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag !== 10) {
      skip(buf, end, tag);
      continue;
    }
    const entry = delimited(buf, end);
    const next = pos;
    pos = entry;
    let key = -1;
    let keyEnd = 0;
    let value = -1;
    let valueEnd = 0;
    let raw = -1;
    let rawEnd = 0;
    while (pos < next) {
      const t = tagAt(buf, next);
      if (t === 10) {
        key = delimited(buf, next);
        keyEnd = pos;
      } else if (t === 18) {
        value = delimited(buf, next);
        valueEnd = pos;
      } else if (t === 26) {
        raw = delimited(buf, next);
        rawEnd = pos;
      } else skip(buf, next, t);
    }
    pos = next;
    if (key < 0 || !keyIs(buf, key, keyEnd, want)) continue;
    if (found !== null) return undefined;
    found = headerText(
      raw >= 0 ? buf.subarray(raw, rawEnd) : EMPTY,
      value >= 0 ? buf.toString('utf8', value, valueEnd) : '',
    );
  }
  return found;
}
const EMPTY = new Uint8Array(0);

/** The ext_proc namespace's Struct: the connect authority and SNI, each the last entry that has a value. */
function readAttributes(req: WireRequest, buf: Buffer, start: number, end: number): void {
  pos = start;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag !== 10) {
      skip(buf, end, tag);
      continue;
    }
    const entry = delimited(buf, end);
    const next = pos;
    structField(req, buf, entry, next);
    pos = next;
  }
}

/** One Struct field (key, Value): the Value's kind decides; a Value with no kind counts as absent. */
function structField(req: WireRequest, buf: Buffer, start: number, end: number): void {
  pos = start;
  let which = -1;
  let value = -1;
  let valueEnd = 0;
  while (pos < end) {
    const tag = tagAt(buf, end);
    if (tag === 10) {
      const s = delimited(buf, end);
      which = equals(buf, s, pos, ATTRIBUTE_BYTES[0]!) ? 0 : equals(buf, s, pos, ATTRIBUTE_BYTES[1]!) ? 1 : -1;
    } else if (tag === 18) {
      value = delimited(buf, end);
      valueEnd = pos;
    } else skip(buf, end, tag);
  }
  if (which < 0 || value < 0) return;
  // Value: kind is a oneof of fields 1-6, the last one set wins; string_value is field 3.
  pos = value;
  let kind = 0;
  let text: string | undefined;
  while (pos < valueEnd) {
    const tag = tagAt(buf, valueEnd);
    const f = tag >>> 3;
    const s = pos;
    skip(buf, valueEnd, tag);
    if (f < 1 || f > 6 || (tag & 7) !== (f === 2 ? 1 : f === 1 || f === 4 ? 0 : 2)) continue;
    kind = f;
    text = f === 3 ? stringPayload(buf, s, pos) : undefined;
  }
  if (kind === 0) return;
  const str = text !== undefined && text.length > 0 ? text : undefined;
  if (which === 0) {
    req.hasConnectAuthority = true;
    req.connectAuthority = str;
  } else req.sni = str;
}

/** The text of a length-delimited field whose bytes (length prefix included) are buf[start, end). */
function stringPayload(buf: Buffer, start: number, end: number): string {
  const saved = pos;
  pos = start;
  const s = delimited(buf, end);
  pos = saved;
  return buf.toString('utf8', s, end);
}
