import { parseListenAddress } from '../sockets/listen.js';
import { DIAL_HOST, DIAL_PORT, PHASE_METADATA_KEY, ROUTE_HEADER, UPSTREAM_KEY } from '../contracts/envoy.js';
import { grpcService, typed } from './clusters.js';
import type { BootstrapOptions } from './options.js';

/** Re-exported: the transparent bootstrap builds its own filters with it. */
export { typed };

/**
 * The HTTP filters, routes and access logs that the bootstraps (forward proxy and transparent) assemble:
 * the pieces, apart from how each mode's listeners put them together.
 */

/** A protobuf Duration string from milliseconds. */
export const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;

/** The dynamic forward proxy's DNS cache: c-ares, IPv4 first, the test resolver when `--dns-resolver` names one. */
export function dnsCache(opts: BootstrapOptions) {
  const cares: Record<string, unknown> = {
    dns_resolver_options: { use_tcp_for_dns_lookups: false, no_default_search_domain: true },
  };
  if (opts.dnsResolver) {
    const dns = parseListenAddress(opts.dnsResolver, '--dns-resolver');
    if (dns.kind !== 'tcp') throw new Error('--dns-resolver must be host:port');
    cares.resolvers = [{ socket_address: { address: dns.host, port_value: dns.port } }];
    cares.use_resolvers_as_fallback = false;
  }
  return {
    name: 'dns_cache',
    dns_lookup_family: 'V4_PREFERRED',
    typed_dns_resolver_config: {
      name: 'envoy.network.dns_resolver.cares',
      typed_config: typed('envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig', cares),
    },
  };
}

/** Which decision an ext_proc stream asks for (PHASE_METADATA_KEY): `capture` = a transparent-mode connection. */
export type ExtProcPhase = 'connect' | 'inject' | 'capture';

/** An ext_proc filter for `phase`: headers only (a `full_request` answer overrides the mode), failing closed. */
export function extProc(opts: BootstrapOptions, phase: ExtProcPhase, extra: Record<string, unknown>) {
  return {
    name: 'envoy.filters.http.ext_proc',
    typed_config: typed('envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor', {
      grpc_service: grpcService(opts.sandboxId, opts.messageTimeoutMs, [[PHASE_METADATA_KEY, phase]]),
      failure_mode_allow: false,
      message_timeout: seconds(opts.messageTimeoutMs),
      processing_mode: {
        request_header_mode: 'SEND',
        response_header_mode: 'SKIP',
        request_body_mode: 'NONE',
        response_body_mode: 'NONE',
        request_trailer_mode: 'SKIP',
        response_trailer_mode: 'SKIP',
      },
      ...extra,
    }),
  };
}

/** The dynamic forward proxy filter; its host comes from filter state (`envoy.upstream.dynamic_host`) when set. */
export const dfpFilter = (opts: BootstrapOptions) => ({
  name: 'envoy.filters.http.dynamic_forward_proxy',
  typed_config: typed('envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig', {
    dns_cache_config: dnsCache(opts),
    allow_dynamic_host_from_filter_state: true,
  }),
});

/** The router filter (last in every chain). */
export const router = (extra: object = {}) => ({
  name: 'envoy.filters.http.router',
  typed_config: typed('envoy.extensions.filters.http.router.v3.Router', extra),
});

/** A stdout access log whose lines start with `[prefix]`. */
export const accessLog = (prefix: string, format: string) => [
  {
    name: 'envoy.access_loggers.stdout',
    typed_config: typed('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {
      log_format: { text_format_source: { inline_string: `[${prefix}] ${format}\n` } },
    }),
  },
];

/**
 * One retry of a safe request (GET, HEAD, OPTIONS) whose upstream connection was reset before it answered:
 * a kept-alive connection that the upstream closes just as Envoy reuses it (an idle timeout, e.g. Node's
 * 5 s) otherwise gives the sandbox a 503 `UC` (found by the soak; `bench/chaos/keepalive-race.ts`).
 * Requests with side effects are never retried.
 */
export const SAFE_RETRY = {
  retry_on: 'reset',
  num_retries: 1,
  retriable_request_headers: [{ name: ':method', string_match: { safe_regex: { regex: '^(GET|HEAD|OPTIONS)$' } } }],
};
/** A route match on authproxy's routing header (`intercept` / `tunnel`), set by the connect-phase answer. */
export const routeOn = (value: string) => [{ name: ROUTE_HEADER, string_match: { exact: value } }];
/** CONNECT handled by the route (the tunnel or the internal listener), not refused. */
export const connectUpgrade = [{ upgrade_type: 'CONNECT', connect_config: {} }];

export { DIAL_HOST, DIAL_PORT } from '../contracts/envoy.js';

/** One request-level filter state value from a format string (skipped when it renders empty). */
const stateFrom = (key: string, format: string) => ({
  object_key: key,
  format_string: { text_format_source: { inline_string: format }, omit_empty_values: true },
  skip_if_empty: true,
});

/**
 * What the intercepting listener's dynamic forward proxy dials, per request: the address checked for the
 * CONNECT target (inherited from the outer listener), replaced by the checked address of the new host
 * when authproxy's answer was a rewrite (its dynamic metadata). SNI and SAN validation follow `:authority`.
 */
export const dialPin = () => ({
  name: 'envoy.filters.http.set_filter_state',
  typed_config: typed('envoy.extensions.filters.http.set_filter_state.v3.Config', {
    on_request_headers: [
      stateFrom('envoy.upstream.dynamic_host', `%FILTER_STATE(${DIAL_HOST}:PLAIN)%`),
      stateFrom('envoy.upstream.dynamic_port', `%FILTER_STATE(${DIAL_PORT}:PLAIN)%`),
      stateFrom('envoy.upstream.dynamic_host', '%DYNAMIC_METADATA(authproxy:target_host)%'),
      stateFrom('envoy.upstream.dynamic_port', '%DYNAMIC_METADATA(authproxy:target_port)%'),
    ],
  }),
});

/**
 * The intercepting listener's route for a rewrite to another sandbox: selected by authproxy's dynamic
 * metadata (`authproxy.upstream: plain`, with the route cache cleared), which nothing the sandbox sends can
 * set, and sent over plain http to the address the answer named (dialPin), not over TLS.
 */
export const sandboxRoute = () => ({
  name: 'sandbox_plain',
  match: {
    prefix: '/',
    dynamic_metadata: [
      { filter: 'authproxy', path: [{ key: UPSTREAM_KEY }], value: { string_match: { exact: 'plain' } } },
    ],
  },
  route: { cluster: 'dfp_plain', timeout: '300s', retry_policy: SAFE_RETRY },
});
