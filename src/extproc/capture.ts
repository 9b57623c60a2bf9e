import { isIP } from 'node:net';
import type { HttpHeaders } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import type { CaptureKind, OriginalDestination } from '../policy/capture.js';
import { singleHeaders } from './translate.js';

/**
 * The header that carries a redirected connection's original destination (`ip:port`, IPv6 in brackets)
 * from Envoy's transparent listener to authproxy. Envoy sets it from the socket (`%DOWNSTREAM_LOCAL_ADDRESS%`)
 * after removing any copy the sandbox sent; authproxy reads it only on `capture`-phase streams, never on the
 * forward proxy's, where a sandbox could have written it.
 */
export const ORIGINAL_DST_HEADER = 'x-authproxy-original-dst';
/** The header naming what the transparent listener saw on the connection: `tls`, `http` or `tcp`. */
export const CAPTURE_HEADER = 'x-authproxy-capture';

const KINDS: ReadonlySet<string> = new Set<CaptureKind>(['tls', 'http', 'tcp']);

/**
 * Reads the original destination and capture kind from a capture-phase request's headers. Undefined when
 * either header is missing, repeated or malformed: such a connection is refused, never guessed at.
 */
export function capturedFrom(headers: HttpHeaders | undefined): OriginalDestination | undefined {
  const found = singleHeaders(headers, [ORIGINAL_DST_HEADER, CAPTURE_HEADER]);
  if (!found) return undefined;
  const kind = found[CAPTURE_HEADER];
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(found[ORIGINAL_DST_HEADER] ?? '');
  if (!kind || !KINDS.has(kind) || !m) return undefined;
  const address = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (isIP(address) === 0 || port < 1 || port > 65535) return undefined;
  return { address, port, kind: kind as CaptureKind };
}
