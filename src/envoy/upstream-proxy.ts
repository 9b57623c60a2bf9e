/**
 * Egress through a corporate forward proxy (`envoy-config --upstream-proxy URL`). authproxy decides every
 * connection as without a proxy (access control, rules, the private-destination guard), and its route
 * answer says how it leaves, as dynamic metadata `authproxy.upstream`:
 *
 *   direct         (`--upstream-no-proxy`) the dynamic forward proxy clusters, dialling the checked address
 *   proxy          tunnel: the sandbox's CONNECT is forwarded to the proxy as is (a refusal becomes a 502);
 *                  intercepted host: TLS to the origin (verified against --ca-bundle, SNI = the host) over a
 *                  `CONNECT host:port` that a tcp_proxy behind an internal listener opens (tunneling_config);
 *                  plain HTTP: an absolute-form request to the proxy (send_fully_qualified_url)
 *   proxy_connect  plain HTTP to an IP address: origin-form inside a `CONNECT ip:port`, as intercepted hosts
 *
 * Without the metadata (an authproxy started without the flags) a connection goes through the proxy:
 * nothing falls back to a direct dial. The tcp_proxy's CONNECT target is authproxy's `upstream_authority`
 * (the decided host and port, by name: the proxy resolves it); a forwarded tunnel CONNECT carries the
 * authority authproxy decided on, as the sandbox wrote it.
 */
import { isIP } from 'node:net';
import { typed } from './clusters.js';
import { accessLog, dnsCache } from './filters.js';
import type { BootstrapOptions } from './options.js';

/** The internal listener whose tcp_proxy opens `CONNECT host:port` through the proxy. */
const CONNECT_LISTENER = 'upstream_connect';
/** Filter state carrying the CONNECT target from the outer listener through both internal hops. */
const AUTHORITY_STATE = 'authproxy.upstream_authority';
/** Filter state carrying authproxy's `upstream` answer to the intercepting listener's route. */
const VIA_STATE = 'authproxy.upstream_via';

/** Body of the 502 a sandbox gets when the proxy refuses (or cannot open) a connection. */
export const PROXY_REFUSED_BODY = 'authproxy: the upstream proxy refused or could not open the connection\n';

/** The bootstrap options this module reads. */
type ProxyOpts = BootstrapOptions;

const viaMetadata = (value: string) => [
  { filter: 'authproxy', path: [{ key: 'upstream' }], value: { string_match: { exact: value } } },
];

/** set_filter_state entries of the outer listener: the CONNECT target and the `upstream` answer, for later hops. */
export function upstreamFilterState(opts: ProxyOpts): object[] {
  if (!opts.upstreamProxy) return [];
  const state = (key: string, field: string) => ({
    object_key: key,
    factory_key: 'envoy.string',
    format_string: {
      text_format_source: { inline_string: `%DYNAMIC_METADATA(authproxy:${field})%` },
      omit_empty_values: true,
    },
    // The intercepting listener's request opens the CONNECT one internal hop further: TRANSITIVE reaches it.
    shared_with_upstream: 'TRANSITIVE',
    skip_if_empty: true,
  });
  return [state(AUTHORITY_STATE, 'upstream_authority'), state(VIA_STATE, 'upstream')];
}

const withMatch = (route: Record<string, unknown>, name: string, extra: object) => ({
  ...route,
  name,
  match: { ...(route.match as object), ...extra },
});

/**
 * The outer listener's route for decided CONNECT tunnels: as given without a proxy; with one, the `direct`
 * route first (matched on authproxy's metadata), then the CONNECT forwarded to the proxy without the
 * `strip` headers.
 */
export function connectTunnelRoutes(
  opts: ProxyOpts,
  connectTunnel: Record<string, unknown>,
  strip: readonly string[],
): object[] {
  if (!opts.upstreamProxy) return [connectTunnel];
  return [
    withMatch(connectTunnel, 'connect_tunnel_direct', { dynamic_metadata: viaMetadata('direct') }),
    {
      name: 'connect_tunnel_proxy',
      match: connectTunnel.match,
      // The CONNECT leaves Envoy: the sandbox's Proxy-Authorization and authproxy's own headers stay behind.
      request_headers_to_remove: strip,
      // No connect_config: the CONNECT itself goes to the proxy, whose answer decides; a refusal becomes a 502.
      route: { cluster: 'upstream_proxy', upgrade_configs: [{ upgrade_type: 'CONNECT' }], timeout: '0s' },
      typed_per_filter_config: { 'envoy.filters.http.custom_response': refusalTo502() },
    },
  ];
}

/** The outer listener's route for plain-http forwards: direct, `CONNECT ip:port` (proxy_connect), or absolute-form to the proxy. */
export function httpTunnelRoutes(opts: ProxyOpts, httpTunnel: Record<string, unknown>): object[] {
  if (!opts.upstreamProxy) return [httpTunnel];
  const action = httpTunnel.route as Record<string, unknown>;
  return [
    withMatch(httpTunnel, 'http_tunnel_direct', { dynamic_metadata: viaMetadata('direct') }),
    {
      ...withMatch(httpTunnel, 'http_tunnel_proxy_connect', { dynamic_metadata: viaMetadata('proxy_connect') }),
      route: { ...action, cluster: 'proxied_raw' },
    },
    { ...httpTunnel, name: 'http_tunnel_proxy', route: { ...action, cluster: 'upstream_proxy' } },
  ];
}

/** The intercepting listener's routes: `direct` to the dynamic forward proxy cluster, the rest through the proxy. */
export function innerRoutes(opts: ProxyOpts, route: Record<string, unknown>): object[] {
  if (!opts.upstreamProxy) return [route];
  const action = route.route as Record<string, unknown>;
  return [
    {
      ...route,
      name: 'intercept_direct',
      match: { ...(route.match as object), filter_state: [{ key: VIA_STATE, string_match: { exact: 'direct' } }] },
    },
    { ...route, name: 'intercept_proxy', route: { ...action, cluster: 'proxied_tls' } },
  ];
}

/**
 * The intercepting connection manager's local reply for a request whose tunnel through the proxy failed
 * (refused CONNECT, unreachable proxy, or a failed TLS handshake with the origin inside it): Envoy's 503
 * `UF` becomes a 502 naming the proxy. Direct dials keep Envoy's own answer.
 */
export function interceptLocalReply(opts: ProxyOpts): object {
  if (!opts.upstreamProxy) return {};
  const cel = typed('envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', {
    expression: "xds.route_name == 'intercept_proxy'",
  });
  const filter = {
    and_filter: {
      filters: [
        { response_flag_filter: { flags: ['UF'] } },
        { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: cel } },
      ],
    },
  };
  return {
    local_reply_config: { mappers: [{ filter, status_code: 502, body: { inline_string: PROXY_REFUSED_BODY } }] },
  };
}

/**
 * The custom_response filter (placed in the outer chain, idle unless a route turns it on): the proxy's
 * non-2xx answer to a forwarded CONNECT becomes authproxy's own 502, so a sandbox can tell a refused
 * tunnel from an origin's answer and nothing is retried directly.
 */
export function customResponseFilter(opts: ProxyOpts): object[] {
  if (!opts.upstreamProxy) return [];
  return [
    {
      name: 'envoy.filters.http.custom_response',
      typed_config: typed('envoy.extensions.filters.http.custom_response.v3.CustomResponse'),
    },
  ];
}

function refusalTo502() {
  const policy = typed('envoy.extensions.http.custom_response.local_response_policy.v3.LocalResponsePolicy', {
    body: { inline_string: PROXY_REFUSED_BODY },
    status_code: 502,
  });
  const onClass = (prefix: string) => ({
    predicate: {
      single_predicate: {
        input: { name: 'status', typed_config: typed('envoy.type.matcher.v3.HttpResponseStatusCodeClassMatchInput') },
        value_match: { exact: prefix },
      },
    },
    on_match: { action: { name: 'refused', typed_config: policy } },
  });
  return typed('envoy.extensions.filters.http.custom_response.v3.CustomResponse', {
    custom_response_matcher: { matcher_list: { matchers: ['3xx', '4xx', '5xx'].map(onClass) } },
  });
}

/** The proxy's HTTP/1.1 cluster: forwarded CONNECTs, absolute-form plain HTTP, and the tcp_proxy's CONNECTs. */
function proxyCluster(opts: ProxyOpts) {
  const proxy = opts.upstreamProxy!;
  return {
    name: 'upstream_proxy',
    type: 'STRICT_DNS',
    connect_timeout: '5s',
    dns_lookup_family: 'V4_PREFERRED',
    // The proxy's name is resolved like destinations are (`--dns-resolver`, else /etc/resolv.conf).
    typed_dns_resolver_config: dnsCache(opts).typed_dns_resolver_config,
    load_assignment: {
      cluster_name: 'upstream_proxy',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: proxy.host, port_value: proxy.port } } } },
          ],
        },
      ],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        {
          explicit_http_config: { http_protocol_options: { send_fully_qualified_url: true } },
        },
      ),
    },
    ...(proxy.scheme === 'https'
      ? {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            // The proxy's certificate must name it: its DNS name (also the SNI), or its IP address (no SNI).
            typed_config: typed('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
              ...(isIP(proxy.host) === 0 ? { sni: proxy.host } : {}),
              common_tls_context: {
                alpn_protocols: ['http/1.1'],
                validation_context: {
                  trusted_ca: { filename: opts.caBundle },
                  match_typed_subject_alt_names: [
                    { san_type: isIP(proxy.host) === 0 ? 'DNS' : 'IP_ADDRESS', matcher: { exact: proxy.host } },
                  ],
                },
              },
            }),
          },
        }
      : {}),
  };
}

/** A cluster whose endpoint is the CONNECT-opening internal listener, with `inner` as its transport. */
function connectCluster(name: string, inner: object, extra: object = {}) {
  return {
    name,
    connect_timeout: '10s',
    // Each downstream connection gets its own: the CONNECT target is that connection's filter state.
    connection_pool_per_downstream_connection: true,
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { envoy_internal_address: { server_listener_name: CONNECT_LISTENER } } } },
          ],
        },
      ],
    },
    transport_socket: {
      name: 'envoy.transport_sockets.internal_upstream',
      typed_config: typed('envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport', {
        transport_socket: inner,
      }),
    },
    ...extra,
  };
}

/**
 * The clusters a proxy adds: the proxy itself, `proxied_tls` (intercepted hosts: TLS to the origin, as
 * `dfp_tls` does, inside the tunnel) and `proxied_raw` (plain HTTP to an IP, origin-form in the tunnel).
 * `tls` is dfp_tls's protocol options and transport socket, so both verify origins the same way.
 */
export function upstreamProxyClusters(
  opts: ProxyOpts,
  tls: { typed_extension_protocol_options: object; transport_socket: object },
): object[] {
  if (!opts.upstreamProxy) return [];
  const raw = {
    name: 'envoy.transport_sockets.raw_buffer',
    typed_config: typed('envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer'),
  };
  // proxied_raw: one request per tunnel. A kept-alive sandbox connection may name another address with its
  // next request, and a pooled tunnel would carry that request to the first one.
  const oneRequest = typed('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', {
    common_http_protocol_options: { max_requests_per_connection: 1 },
    explicit_http_config: { http_protocol_options: {} },
  });
  return [
    proxyCluster(opts),
    connectCluster('proxied_tls', tls.transport_socket, {
      typed_extension_protocol_options: tls.typed_extension_protocol_options,
    }),
    connectCluster('proxied_raw', raw, {
      typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': oneRequest },
    }),
  ];
}

/** The internal listener that turns a connection into `CONNECT host:port` to the proxy (tcp_proxy tunneling_config). */
export function upstreamConnectListeners(opts: ProxyOpts): object[] {
  if (!opts.upstreamProxy) return [];
  return [
    {
      name: CONNECT_LISTENER,
      internal_listener: {},
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: typed('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
                stat_prefix: CONNECT_LISTENER,
                cluster: 'upstream_proxy',
                tunneling_config: { hostname: `%FILTER_STATE(${AUTHORITY_STATE}:PLAIN)%` },
                access_log: accessLog(
                  'upstream-connect',
                  `%FILTER_STATE(${AUTHORITY_STATE}:PLAIN)% -> %RESPONSE_FLAGS% %UPSTREAM_TRANSPORT_FAILURE_REASON%`,
                ),
              }),
            },
          ],
        },
      ],
    },
  ];
}
