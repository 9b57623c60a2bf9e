import { isIP } from 'node:net';
import type { HttpHeaders } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import type { CaptureKind, OriginalDestination } from '../policy/capture.js';
import { singleHeaders } from './translate.js';
import type { PickedHeader, WireRequest } from './wire.js';

/**
 * The header that carries a redirected connection's original destination (`ip:port`, IPv6 in brackets)
 * from Envoy's transparent listener to authproxy. Envoy sets it from the socket (`%DOWNSTREAM_LOCAL_ADDRESS%`)
 * after removing any copy the sandbox sent; authproxy reads it only on `capture`-phase streams, never on the
 * forward proxy's, where a sandbox could have written it.
 */
export const ORIGINAL_DST_HEADER = 'x-authproxy-original-dst' satisfies PickedHeader;
/** The header naming what the transparent listener saw on the connection: `tls`, `http` or `tcp`. */
export const CAPTURE_HEADER = 'x-authproxy-capture' satisfies PickedHeader;

const KINDS: ReadonlySet<string> = new Set<CaptureKind>(['tls', 'http', 'tcp']);

/**
 * Reads the original destination and capture kind from a capture-phase request's headers. Undefined when
 * either header is missing, repeated or malformed: such a connection is refused, never guessed at.
 */
export function capturedFrom(headers: HttpHeaders | undefined): OriginalDestination | undefined {
  const found = singleHeaders(headers, [ORIGINAL_DST_HEADER, CAPTURE_HEADER]);
  return found && originalDestination(found[ORIGINAL_DST_HEADER], found[CAPTURE_HEADER]);
}

/** capturedFrom for a message read by the wire reader (which picks both headers). */
export function wireCapturedFrom(wire: WireRequest): OriginalDestination | undefined {
  const dst = wire.header(ORIGINAL_DST_HEADER);
  const kind = wire.header(CAPTURE_HEADER);
  return dst === undefined || kind === undefined ? undefined : originalDestination(dst, kind);
}

function originalDestination(
  dst: string | null | undefined,
  kind: string | null | undefined,
): OriginalDestination | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(dst ?? '');
  if (!kind || !KINDS.has(kind) || !m) return undefined;
  const address = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (isIP(address) === 0 || port < 1 || port > 65535) return undefined;
  return { address, port, kind: kind as CaptureKind };
}
