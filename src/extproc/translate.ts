import type {
  HttpHeaders,
  ProcessingRequest,
  ProcessingResponse,
} from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import { HeaderValueOption_HeaderAppendAction } from '../gen/envoy/config/core/v3/base.js';
import {
  ProcessingMode_BodySendMode,
  ProcessingMode_HeaderSendMode,
  type ProcessingMode,
} from '../gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode.js';
import type { HeaderLookup, PolicyRequest } from '../policy/decide.js';
import { ListHeaderLookup } from '../policy/header-lookup.js';
import type { Target } from '../policy/host.js';
import type { UpstreamVia } from '../contracts/engine.js';
import { ROUTE_HEADER, UPSTREAM_KEY } from '../contracts/envoy.js';
import type { Outcome } from '../contracts/engine.js';
import { CONNECT_AUTHORITY, EXT_PROC_ATTRIBUTES, SNI, type WireRequest } from './wire.js';

/**
 * Reads the request pseudo-headers from Envoy's header map (raw_value first, as Envoy 1.32+ sends it).
 * Returns undefined when :method, :scheme or :authority is missing, or any pseudo-header is repeated:
 * such a request is ambiguous. With `inTunnel` (the forward proxy's inject phase) the CONNECT target and
 * SNI attributes are always carried, present or not, so that a missing one fails the agreement check
 * (421) instead of switching it off.
 */
export function toPolicyRequest(
  headers: HttpHeaders | undefined,
  attributes?: ProcessingRequest['attributes'],
  inTunnel = false,
): PolicyRequest | undefined {
  const found = singleHeaders(headers, [':method', ':scheme', ':authority', ':path']);
  if (!found) return undefined;
  const attrs = attributes?.[EXT_PROC_ATTRIBUTES] ?? {};
  const tunnel =
    inTunnel || CONNECT_AUTHORITY in attrs
      ? { connectAuthority: stringAttr(attrs, CONNECT_AUTHORITY), sni: stringAttr(attrs, SNI) }
      : undefined;
  return policyRequest(
    found[':method'] ?? null,
    found[':scheme'] ?? null,
    found[':authority'] ?? null,
    found[':path'] ?? null,
    tunnel,
    new ListHeaderLookup(() => headers?.headers?.headers ?? []),
  );
}

/**
 * toPolicyRequest for a message read by the wire reader (the ext_proc server's path): the same rules,
 * from the few headers and attributes it picked, without decoding the rest of the header map.
 */
export function wirePolicyRequest(wire: WireRequest, inTunnel = false): PolicyRequest | undefined {
  if (wire.repeated & PSEUDO_BITS) return undefined;
  const [method, scheme, authority, path] = wire.values;
  const tunnel =
    inTunnel || wire.hasConnectAuthority ? { connectAuthority: wire.connectAuthority, sni: wire.sni } : undefined;
  return policyRequest(method!, scheme!, authority!, path!, tunnel, wire);
}

/** The four pseudo-headers are PICKED_HEADERS[0..3]. */
const PSEUDO_BITS = 0b1111;

function policyRequest(
  method: string | null,
  scheme: string | null,
  authority: string | null,
  path: string | null,
  tunnel: PolicyRequest['tunnel'],
  headers: HeaderLookup,
): PolicyRequest | undefined {
  if (!method || !authority || !scheme) return undefined;
  return tunnel
    ? { method, scheme, authority, path: path ?? '', tunnel, headers }
    : { method, scheme, authority, path: path ?? '', headers };
}

/**
 * The values of `keys` in Envoy's header map (raw_value first), null for an absent one; undefined when any
 * of them is repeated, which makes the request ambiguous. Shared by every reader of headers Envoy set.
 */
export function singleHeaders(
  headers: HttpHeaders | undefined,
  keys: readonly string[],
): Record<string, string | null> | undefined {
  const found: Record<string, string | null> = Object.fromEntries(keys.map((k) => [k, null]));
  for (const h of headers?.headers?.headers ?? []) {
    if (!(h.key in found)) continue;
    if (found[h.key] !== null) return undefined;
    found[h.key] = h.rawValue.length > 0 ? h.rawValue.toString('latin1') : h.value;
  }
  return found;
}

function stringAttr(attrs: Record<string, unknown>, key: string): string | undefined {
  const v = attrs[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export { ROUTE_HEADER, UPSTREAM_KEY } from '../contracts/envoy.js';

const OVERWRITE = HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD;

/** One header to set: the value in `raw_value` only, overwrite semantics, `append` left unset. */
function setHeader(key: string, value: string) {
  return {
    header: { key: key.toLowerCase(), value: '', rawValue: Buffer.from(value, 'utf8') },
    appendAction: OVERWRITE,
    keepEmptyValue: false,
  };
}

/** A request_headers (or, for a held body, request_body) answer that continues with `mutation` applied. */
function continueWith(
  setHeaders: ReturnType<typeof setHeader>[],
  removeHeaders: string[],
  extra: {
    clearRouteCache?: boolean;
    dynamicMetadata?: ProcessingResponse['dynamicMetadata'];
    phase?: 'requestHeaders' | 'requestBody';
    modeOverride?: ProcessingMode;
  } = {},
): ProcessingResponse {
  return {
    response: {
      $case: extra.phase ?? 'requestHeaders',
      value: {
        response: {
          status: 0,
          headerMutation: { setHeaders, removeHeaders },
          bodyMutation: undefined,
          trailers: undefined,
          clearRouteCache: extra.clearRouteCache ?? false,
        },
      },
    },
    dynamicMetadata: extra.dynamicMetadata,
    modeOverride: extra.modeOverride,
    overrideMessageTimeout: undefined,
  };
}

/**
 * The processing mode asked for when a `full_request` callback needs the body: the first part of it
 * (up to the listener's buffer limit) in one message, everything else skipped. A mode override replaces
 * the whole mode, so every field is named (a missing response_header_mode would mean SEND).
 */
const BODY_MODE: ProcessingMode = {
  requestHeaderMode: ProcessingMode_HeaderSendMode.SKIP,
  responseHeaderMode: ProcessingMode_HeaderSendMode.SKIP,
  requestBodyMode: ProcessingMode_BodySendMode.BUFFERED_PARTIAL,
  responseBodyMode: ProcessingMode_BodySendMode.NONE,
  requestTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
  responseTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
};

/**
 * The request_headers answer that holds the request and asks Envoy for its body (`mode_override`), used
 * only for requests whose credentials come from a `full_request` callback. The sandbox's
 * Proxy-Authorization is removed already; credentials follow in the request_body answer.
 */
export function askForBodyResponse(): ProcessingResponse {
  return continueWith([], ['proxy-authorization'], { modeOverride: BODY_MODE });
}

/**
 * The answer to a CONNECT on the outer listener: the routing header, a route cache clear, and the target
 * as dynamic metadata (namespace `authproxy`) so that Envoy dials exactly the host and port decided here.
 */
export function toRouteResponse(
  route: 'intercept' | 'tunnel',
  target: Target,
  address?: string,
  upstream?: UpstreamVia,
): ProcessingResponse {
  // `upstream_authority`: the CONNECT target when Envoy goes through `--upstream-proxy` (the name, not the pin);
  // `upstream`: authproxy's `--upstream-no-proxy` answer (src/envoy/upstream-proxy.ts).
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const proxy = { upstream_authority: `${host}:${target.port}`, ...(upstream ? { upstream } : {}) };
  const dial = dialMetadata(address ?? target.host, target.port) as { authproxy: Record<string, unknown> };
  return continueWith([setHeader(ROUTE_HEADER, route)], [], {
    clearRouteCache: true,
    dynamicMetadata: { authproxy: { ...dial.authproxy, ...proxy } },
  });
}

/**
 * The dynamic metadata (namespace `authproxy`) naming what Envoy dials: the address the egress guard
 * checked (IPv6 in brackets, as Envoy's dynamic forward proxy takes it); SNI and certificate validation
 * stay on the hostname (the request's Host).
 */
function dialMetadata(address: string, port: number, plain = false): ProcessingResponse['dynamicMetadata'] {
  const host = address.includes(':') ? `[${address}]` : address;
  return { authproxy: { target_host: host, target_port: String(port), ...(plain ? { [UPSTREAM_KEY]: 'plain' } : {}) } };
}

/**
 * The answer to a request a `type: rewrite` rule matched (inner listener): `:authority` and the credential
 * headers changed, the route cache cleared, and the checked address of the new host as dynamic metadata,
 * which the listener's set_filter_state turns into the dynamic forward proxy's host and port.
 */
export function toRewriteResponse(outcome: Extract<Outcome, { kind: 'rewrite' }>): ProcessingResponse {
  return continueWith(
    outcome.set.map(([key, value]) => setHeader(key, value)),
    [...outcome.remove],
    { clearRouteCache: true, dynamicMetadata: dialMetadata(outcome.dial.host, outcome.dial.port, outcome.plain) },
  );
}

/**
 * Builds the ProcessingResponse for a request_headers message: header values in `raw_value` only,
 * `append_action: OVERWRITE_IF_EXISTS_OR_ADD` with `append` unset, and refusals as ImmediateResponse.
 * A refusal sets no header: Envoy applies the filter's mutation rules to an immediate response's headers
 * too, and the outer listener's (only the routing header) or a strict `--credential-headers` list refused a
 * content-type, logging "Header content-type may not be modified" and "Immediate response mutations failed"
 * on every refusal. Envoy's local reply types the short body as text/plain itself.
 */
export function toProcessingResponse(
  outcome: Outcome,
  phase: 'requestHeaders' | 'requestBody' = 'requestHeaders',
): ProcessingResponse {
  if (outcome.kind === 'route')
    return toRouteResponse(outcome.route, outcome.target, outcome.address, outcome.upstream);
  if (outcome.kind === 'awaitBody') return askForBodyResponse();
  if (outcome.kind === 'rewrite') return toRewriteResponse(outcome);
  if (outcome.kind === 'continue')
    return continueWith(
      outcome.set.map(([key, value]) => setHeader(key, value)),
      [...outcome.remove],
      { phase },
    );
  return {
    response: {
      $case: 'immediateResponse',
      value: {
        status: { code: outcome.status },
        headers: { setHeaders: [], removeHeaders: [] },
        body: Buffer.from(outcome.body),
        details: 'authproxy',
      },
    },
    modeOverride: undefined,
    overrideMessageTimeout: undefined,
  };
}

/** The CONTINUE answer for messages we never ask for but must not leave unanswered. */
export function continueResponse(
  kind: 'responseHeaders' | 'requestBody' | 'responseBody' | 'requestTrailers' | 'responseTrailers',
): ProcessingResponse {
  const common = {
    status: 0,
    headerMutation: undefined,
    bodyMutation: undefined,
    trailers: undefined,
    clearRouteCache: false,
  };
  const response =
    kind === 'requestTrailers' || kind === 'responseTrailers'
      ? { $case: kind, value: { headerMutation: undefined } }
      : { $case: kind, value: { response: common } };
  return { response, modeOverride: undefined, overrideMessageTimeout: undefined } as ProcessingResponse;
}
