import type { Target } from '../policy/host.js';
import { headerText } from '../policy/header-lookup.js';
import type { CallbackRequestSnapshot } from './client.js';

/** The most of a request body that a `full_request` snapshot carries (contract: the first 1 MiB). */
export const SNAPSHOT_BODY_LIMIT = 1024 * 1024;

/** What a snapshot is built from: the request as Envoy handed it to authproxy. */
export interface SnapshotSource {
  readonly method: string;
  readonly scheme: string;
  /** The raw `:path`, query included. */
  readonly path: string;
  /** Headers as the sandbox sent them, pseudo-headers and Proxy-Authorization already left out. */
  readonly headers: Record<string, string[]>;
  /** The body bytes Envoy buffered (empty for a request without a body). */
  readonly body: Uint8Array;
  /** False when Envoy stopped buffering before the end of the body. */
  readonly complete: boolean;
}

/**
 * Builds the `request` member of a `full_request` callback body (LangSmith's SandboxCallbackRequest):
 * the absolute URL toward the decided target, the path without its query, the query without `?` (left
 * out when empty), and the first 1 MiB of the body in base64 with `body_truncated` saying whether more
 * followed. Pure, so that what a callback sees is tested without Envoy.
 */
export function buildSnapshot(src: SnapshotSource, target: Target): CallbackRequestSnapshot {
  const hash = src.path.indexOf('#');
  const raw = hash >= 0 ? src.path.slice(0, hash) : src.path;
  const q = raw.indexOf('?');
  const path = (q >= 0 ? raw.slice(0, q) : raw) || '/';
  const query = q >= 0 ? raw.slice(q + 1) : '';
  const defaultPort = src.scheme === 'http' ? 80 : 443;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const authority = target.port === defaultPort ? host : `${host}:${target.port}`;
  const truncated = !src.complete || src.body.byteLength > SNAPSHOT_BODY_LIMIT;
  const body = src.body.byteLength > SNAPSHOT_BODY_LIMIT ? src.body.subarray(0, SNAPSHOT_BODY_LIMIT) : src.body;
  return {
    method: src.method,
    url: `${src.scheme}://${authority}${path}${query ? `?${query}` : ''}`,
    scheme: src.scheme,
    host: target.host,
    path,
    ...(query ? { query } : {}),
    headers: src.headers,
    body_base64: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
    body_truncated: truncated,
  };
}

/** Headers a snapshot never carries: pseudo-headers (they are in method and url), the proxy's own credentials. */
function omitted(name: string): boolean {
  return name.startsWith(':') || name === 'proxy-authorization' || name.startsWith('x-authproxy-');
}

/**
 * Envoy's header list as name -> values, in the order sent, for a snapshot. Exists apart from the
 * decision's pseudo-header reader so that only `full_request` callbacks pay for decoding every header.
 */
export function snapshotHeaders(
  list: ReadonlyArray<{ readonly key: string; readonly value: string; readonly rawValue: Uint8Array }>,
): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const h of list) {
    const name = h.key.toLowerCase();
    if (omitted(name)) continue;
    (out[name] ??= []).push(headerText(h.rawValue, h.value));
  }
  return { ...out };
}
