import { stringify } from 'yaml';
import { BODY_LIMIT, DIAL_HOST, DIAL_PORT, ROUTE_HEADER } from '../contracts/envoy.js';
import {
  accessLog,
  connectUpgrade,
  dfpFilter,
  dialPin,
  dnsCache,
  extProc,
  router,
  routeOn,
  SAFE_RETRY,
  sandboxRoute,
  typed,
  type ExtProcPhase,
} from './filters.js';
import { grpcService, authproxyCluster, internalCluster } from './clusters.js';
import { CREDENTIAL_HEADERS } from '../policy/rewrite.js';
import {
  connectTunnelRoutes,
  customResponseFilter,
  httpTunnelRoutes,
  innerRoutes,
  interceptLocalReply,
  upstreamConnectListeners,
  upstreamFilterState,
  upstreamProxyClusters,
} from './upstream-proxy.js';

/** The intercepting listener's per-connection buffer limit: what BUFFERED_PARTIAL hands authproxy of a body. */
export const INTERCEPT_BUFFER_LIMIT = BODY_LIMIT;

import type { BootstrapOptions } from './options.js';

export type { BootstrapOptions } from './options.js';

/**
 * Headers authproxy may never set or remove on the inner listener, whatever the config says. Envoy's
 * mutation rules already refuse `host`, pseudo-headers and `x-envoy-*` by default; RE2's program size
 * limit (100) is why this list is written compactly.
 */
const RESERVED =
  '^(te|trailer|upgrade|expect|(proxy-)?connection|keep-alive|content-length|transfer-encoding|x-authproxy-.*)$';

/** Sets filter state from authproxy's dynamic metadata; `ONCE`: the internal listener's connection inherits it. */
const fromMetadata = (key: string, field: string, shared: 'ONCE' | 'NONE' = 'ONCE') => ({
  object_key: key,
  format_string: {
    text_format_source: { inline_string: `%DYNAMIC_METADATA(authproxy:${field})%` },
    omit_empty_values: true,
  },
  shared_with_upstream: shared,
  skip_if_empty: true,
});

/**
 * How a copy of the outer (CONNECT-deciding) connection manager differs from the forward proxy's own:
 * the transparent bootstrap runs the same HCM behind its capture listener, with its own stat prefix, the
 * `capture` phase, and early header mutations that set the original destination from the connection.
 */
export interface OuterHcmVariant {
  readonly statPrefix: string;
  readonly logPrefix: string;
  readonly phase: ExtProcPhase;
  /** Early header mutations (after the removal of any sandbox-sent routing header). */
  readonly mutations: readonly object[];
  /** Headers removed from plain-http requests before they are forwarded (besides the routing header). */
  readonly stripOnForward: readonly string[];
}

const FORWARD_HCM: OuterHcmVariant = {
  statPrefix: 'forward_proxy',
  logPrefix: 'outer',
  phase: 'connect',
  mutations: [],
  stripOnForward: [],
};

/**
 * The outer listener's HTTP connection manager: CONNECTs and plain-http requests are decided by
 * authproxy (intercept, tunnel or refuse). Exported so that transparent mode reuses it unchanged.
 */
export function outerHcm(opts: BootstrapOptions, variant: OuterHcmVariant = FORWARD_HCM) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
      stat_prefix: variant.statPrefix,
      codec_type: 'AUTO',
      http2_protocol_options: { allow_connect: true },
      // Python's http.client (urllib3, requests, boto3) before 3.12 sends `CONNECT host:port HTTP/1.0`.
      http_protocol_options: { accept_http_10: true },
      upgrade_configs: [{ upgrade_type: 'CONNECT' }],
      // The routing header may only come from authproxy: drop any copy the sandbox sent, first thing.
      early_header_mutation_extensions: [
        {
          name: 'envoy.http.early_header_mutation.header_mutation',
          typed_config: typed('envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation', {
            mutations: [{ remove: ROUTE_HEADER }, ...variant.mutations],
          }),
        },
      ],
      access_log: accessLog(
        variant.logPrefix,
        '%REQ(:METHOD)% %REQ(:AUTHORITY)% route=%ROUTE_NAME% -> %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%',
      ),
      route_config: {
        name: 'forward_proxy',
        virtual_hosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [
              {
                name: 'connect_intercept',
                match: { connect_matcher: {}, headers: routeOn('intercept') },
                route: { cluster: 'intercept_internal', upgrade_configs: connectUpgrade },
              },
              // With --upstream-proxy: direct routes for authproxy's `direct` answers, then the proxied ones.
              ...connectTunnelRoutes(
                opts,
                {
                  name: 'connect_tunnel',
                  match: { connect_matcher: {}, headers: routeOn('tunnel') },
                  route: { cluster: 'dfp_plain', upgrade_configs: connectUpgrade },
                },
                [ROUTE_HEADER, 'proxy-authorization', ...variant.stripOnForward],
              ),
              {
                name: 'connect_refuse',
                match: { connect_matcher: {} },
                direct_response: { status: 403, body: { inline_string: 'authproxy: CONNECT refused\n' } },
              },
              ...httpTunnelRoutes(opts, {
                name: 'http_tunnel',
                match: { prefix: '/', headers: routeOn('tunnel') },
                request_headers_to_remove: [ROUTE_HEADER, 'proxy-authorization', ...variant.stripOnForward],
                route: { cluster: 'dfp_plain', timeout: '300s', retry_policy: SAFE_RETRY },
              }),
              {
                name: 'http_refuse',
                match: { prefix: '/' },
                direct_response: { status: 403, body: { inline_string: 'authproxy: request refused\n' } },
              },
            ],
          },
        ],
      },
      http_filters: [
        extProc(opts, variant.phase, {
          route_cache_action: 'CLEAR',
          mutation_rules: {
            disallow_all: true,
            allow_expression: { regex: `^${ROUTE_HEADER}$` },
            disallow_is_error: true,
          },
          metadata_options: { receiving_namespaces: { untyped: ['authproxy'] } },
        }),
        {
          name: 'envoy.filters.http.set_filter_state',
          typed_config: typed('envoy.extensions.filters.http.set_filter_state.v3.Config', {
            on_request_headers: [
              // The tunnel's own dial target, and a copy the intercepting listener inherits (dialPin).
              fromMetadata('envoy.upstream.dynamic_host', 'target_host', 'NONE'),
              fromMetadata('envoy.upstream.dynamic_port', 'target_port', 'NONE'),
              { ...fromMetadata(DIAL_HOST, 'target_host'), factory_key: 'envoy.string' },
              { ...fromMetadata(DIAL_PORT, 'target_port'), factory_key: 'envoy.string' },
              {
                object_key: 'authproxy.connect_authority',
                factory_key: 'envoy.string',
                format_string: { text_format_source: { inline_string: '%REQ(:AUTHORITY)%' } },
                shared_with_upstream: 'ONCE',
              },
              ...upstreamFilterState(opts),
            ],
          }),
        },
        ...customResponseFilter(opts),
        // Tunnels and plain-http forwards dial the address authproxy checked (filter state), not a fresh lookup.
        dfpFilter(opts),
        router(),
      ],
    }),
  };
}

function outerListener(opts: BootstrapOptions) {
  return {
    name: 'forward_proxy',
    address: { socket_address: { address: opts.proxyAddress, port_value: opts.proxyPort } },
    filter_chains: [{ filters: [outerHcm(opts)] }],
  };
}

/** The internal listener that terminates intercepted TLS (on-demand leaf) and runs the inject-phase ext_proc. */
export function innerListener(opts: BootstrapOptions) {
  // `:authority` may be set (only a rewrite answer does; header rules can't name it), and in strict mode the
  // credential headers a rewrite strips may be removed too. allow_expression overrides disallow_system.
  const mutationRules = opts.credentialHeaders
    ? {
        disallow_all: true,
        allow_expression: {
          regex: `^(${[...new Set([...opts.credentialHeaders.map((h) => h.toLowerCase()), ...CREDENTIAL_HEADERS])].map((h) => h.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('|')}|:authority)$`,
        },
        disallow_is_error: true,
      }
    : // The pseudo-headers authproxy sets: `:authority` for a rewrite rule, `:path` for a `type: azure` SAS rule
      // (the SAS is appended to the query); every other one stays refused.
      {
        disallow_system: true,
        allow_expression: { regex: '^(:authority|:path)$' },
        disallow_expression: { regex: RESERVED },
        disallow_is_error: true,
      };
  return {
    name: 'intercept_tls',
    internal_listener: {},
    // The buffer limit is what BUFFERED_PARTIAL hands authproxy of a body (AWS re-signing hashes up to 16 MiB).
    per_connection_buffer_limit_bytes: INTERCEPT_BUFFER_LIMIT,
    listener_filters: [
      {
        name: 'envoy.filters.listener.tls_inspector',
        typed_config: typed('envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector'),
      },
    ],
    filter_chains: [
      {
        transport_socket_connect_timeout: '10s',
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: typed('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
            disable_stateless_session_resumption: true,
            disable_stateful_session_resumption: true,
            common_tls_context: {
              alpn_protocols: ['h2', 'http/1.1'],
              custom_tls_certificate_selector: {
                name: 'envoy.tls.certificate_selectors.on_demand_secret',
                typed_config: typed(
                  'envoy.extensions.transport_sockets.tls.cert_selectors.on_demand_secret.v3.Config',
                  {
                    config_source: {
                      resource_api_version: 'V3',
                      initial_fetch_timeout: '5s',
                      api_config_source: {
                        api_type: 'DELTA_GRPC',
                        transport_api_version: 'V3',
                        grpc_services: [grpcService(opts.sandboxId)],
                      },
                    },
                    certificate_mapper: {
                      name: 'envoy.tls.certificate_mappers.sni',
                      typed_config: typed('envoy.extensions.transport_sockets.tls.cert_mappers.sni.v3.SNI', {
                        default_value: 'no-sni.invalid',
                      }),
                    },
                  },
                ),
              },
            },
          }),
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typed('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
              stat_prefix: 'intercept',
              codec_type: 'AUTO',
              // Paths reach the upstream byte for byte as the sandbox sent them (an S3 key may hold `//`, `.`,
              // `..` or `%2F`); authproxy normalises a copy for matching and refuses what stays ambiguous.
              normalize_path: false,
              merge_slashes: false,
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              strip_any_host_port: true,
              strip_trailing_host_dot: true,
              ...interceptLocalReply(opts),
              access_log: accessLog(
                'inner',
                '%REQ(:METHOD)% %REQ(:AUTHORITY)% sni=%REQUESTED_SERVER_NAME% -> %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% up=%UPSTREAM_HOST%',
              ),
              route_config: {
                name: 'intercept',
                virtual_hosts: [
                  {
                    name: 'all',
                    domains: ['*'],
                    routes: [
                      sandboxRoute(),
                      ...innerRoutes(opts, {
                        match: { prefix: '/' },
                        route: { cluster: 'dfp_tls', timeout: '300s', retry_policy: SAFE_RETRY },
                      }),
                    ],
                  },
                ],
              },
              http_filters: [
                extProc(opts, 'inject', {
                  request_attributes: [
                    'connection.requested_server_name',
                    'filter_state["authproxy.connect_authority"]',
                  ],
                  mutation_rules: mutationRules,
                  // Only `full_request` callbacks ask for a body (mode_override from the request_headers answer);
                  // every other request stays headers-only.
                  allow_mode_override: true,
                  // A rewrite answer names the new destination's checked address here (dialPin).
                  metadata_options: { receiving_namespaces: { untyped: ['authproxy'] } },
                }),
                dialPin(),
                dfpFilter(opts),
                router({ suppress_envoy_headers: true }),
              ],
            }),
          },
        ],
      },
    ],
  };
}

/**
 * The bootstrap document both modes share (node, runtime, internal listeners, authproxy and upstream
 * clusters) around the listeners a mode brings; `extraClusters` go after the intercept cluster.
 */
export function bootstrapDocument(
  opts: BootstrapOptions,
  listeners: readonly object[],
  extraClusters: readonly object[] = [],
) {
  const dfpCluster = (name: string, extra: object) => ({
    name,
    connect_timeout: '5s',
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.dynamic_forward_proxy',
      typed_config: typed('envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig', {
        dns_cache_config: dnsCache(opts),
      }),
    },
    ...extra,
  });
  /** How origins are verified (TLS, SNI and SAN from the request's host), directly or inside a proxy's tunnel. */
  const upstreamTls = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        {
          upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
          auto_config: { http_protocol_options: {}, http2_protocol_options: {} },
        },
      ),
    },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: typed('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
        common_tls_context: {
          alpn_protocols: ['h2', 'http/1.1'],
          validation_context: { trusted_ca: { filename: opts.caBundle } },
        },
      }),
    },
  };
  const bootstrap = {
    node: { id: `authproxy-sidecar-${opts.sandboxId}`, cluster: 'authproxy-sidecar' },
    ...(opts.adminPort !== undefined
      ? { admin: { address: { socket_address: { address: '127.0.0.1', port_value: opts.adminPort } } } }
      : {}),
    // ext_proc streams end with a half-close and authproxy's OK status instead of an RST_STREAM per
    // request: Node's HTTP/2 (nghttp2) answers more than ~1,000 resets per connection (33/s sustained)
    // with GOAWAY, and the streams in flight then fail (measured: 9 of 4,000 requests at 8 in flight).
    // RE2's program size limit (100 by default) is raised for the strict mutation rules' list of header names.
    layered_runtime: {
      layers: [
        {
          name: 'static',
          static_layer: {
            'envoy.reloadable_features.ext_proc_graceful_grpc_close': true,
            're2.max_program_size.error_level': 1000,
          },
        },
      ],
    },
    bootstrap_extensions: [
      {
        name: 'envoy.bootstrap.internal_listener',
        typed_config: typed('envoy.extensions.bootstrap.internal_listener.v3.InternalListener'),
      },
    ],
    static_resources: {
      listeners: [...listeners, ...upstreamConnectListeners(opts)],
      clusters: [
        authproxyCluster(opts.authproxy, opts.authproxyTls),
        internalCluster('intercept_internal', 'intercept_tls'),
        ...extraClusters,
        dfpCluster('dfp_plain', {}),
        dfpCluster('dfp_tls', upstreamTls),
        ...upstreamProxyClusters(opts, upstreamTls),
      ],
    },
  };
  return bootstrap;
}

/** The bootstrap as YAML under a one-line header naming the mode. */
export function bootstrapYaml(mode: string, doc: object): string {
  return `# authproxy sidecar bootstrap (${mode} mode), rendered by \`authproxy envoy-config\`. Envoy >= 1.37.\n${stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 })}`;
}

/** Renders the sidecar's Envoy bootstrap (forward-proxy mode) as YAML. */
export function renderBootstrap(opts: BootstrapOptions): string {
  return bootstrapYaml('forward-proxy', bootstrapDocument(opts, [outerListener(opts), innerListener(opts)]));
}
