import { parseListenAddress } from '../sockets/listen.js';
import { SANDBOX_METADATA_KEY } from '../contracts/envoy.js';

/** Client certificate, key and CA with which Envoy authenticates to authproxy over TCP (mTLS). */
export interface AuthproxyTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** A typed_config object (`@type` plus fields), for every Envoy extension the bootstraps configure. */
export const typed = (type: string, config: object = {}) => ({ '@type': `type.googleapis.com/${type}`, ...config });

/**
 * The `grpc_service` of every ext_proc filter and SDS source: the authproxy cluster, with the sandbox's
 * identity in initial metadata (which code inside the sandbox cannot touch).
 */
export function grpcService(sandboxId: string, timeoutMs?: number, extra: Array<[string, string]> = []) {
  return {
    envoy_grpc: { cluster_name: 'authproxy' },
    ...(timeoutMs ? { timeout: `${(timeoutMs / 1000).toFixed(3)}s` } : {}),
    initial_metadata: [[SANDBOX_METADATA_KEY, sandboxId], ...extra].map(([key, value]) => ({ key, value })),
  };
}

/**
 * HTTP/2 to authproxy, with keepalive pings: they find a connection whose replica vanished without a FIN
 * (shared-service mode over a network), which Envoy would otherwise keep opening ext_proc streams on until
 * TCP gives up, each request failing closed meanwhile. The 15 s to answer a ping is above ext_proc's message
 * timeout (12 s), so a stall that a stream would survive doesn't drop the connection and its streams.
 * Envoy's default flow-control windows stay: smaller ones measured no different (docs/benchmarks.md).
 */
export const AUTHPROXY_HTTP2 = { connection_keepalive: { interval: '30s', timeout: '15s' } } as const;

/**
 * The cluster that reaches authproxy: a Unix socket (only Envoy's user may open it), or TCP with mTLS so
 * that nothing but a sidecar holding a client certificate gets decisions, which contain secrets.
 */
export function authproxyCluster(address: string, tls: AuthproxyTls | undefined) {
  const parsed = parseListenAddress(address, '--authproxy');
  if (parsed.kind === 'tcp' && !tls)
    throw new Error('--authproxy on TCP needs --authproxy-tls-cert, --authproxy-tls-key and --authproxy-tls-ca (mTLS)');
  const endpoint =
    parsed.kind === 'unix'
      ? { pipe: { path: parsed.path } }
      : { socket_address: { address: parsed.host, port_value: parsed.port } };
  return {
    name: 'authproxy',
    type: parsed.kind === 'unix' ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        {
          explicit_http_config: { http2_protocol_options: AUTHPROXY_HTTP2 },
        },
      ),
    },
    load_assignment: {
      cluster_name: 'authproxy',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: endpoint } }] }],
    },
    // Several replicas (STRICT_DNS answering with more than one address): without these, Envoy kept
    // sending half the ext_proc streams to a killed replica (500s until it came back; npm run chaos,
    // replica-kill). A connection failure ejects a replica at once, the grpc.health.v1 check (authproxy
    // serves it) finds a hung one; a lone endpoint is still used when unhealthy (Envoy's panic mode).
    health_checks: [
      {
        timeout: '1s',
        interval: '2s',
        no_traffic_interval: '2s',
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: {},
      },
    ],
    outlier_detection: {
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: 1,
      interval: '1s',
      base_ejection_time: '5s',
      max_ejection_percent: 50,
    },
    ...(tls && parsed.kind === 'tcp'
      ? {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: typed('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
              sni: parsed.host,
              common_tls_context: {
                alpn_protocols: ['h2'],
                tls_certificates: [{ certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } }],
                validation_context: { trusted_ca: { filename: tls.ca } },
              },
            }),
          },
        }
      : {}),
  };
}

/** A cluster whose one endpoint is an internal listener: how a decided connection reaches the next stage. */
export function internalCluster(name: string, listener: string) {
  return {
    name,
    connect_timeout: '5s',
    // The internal connection inherits the tunnel's filter state (its CONNECT target); pooled across
    // downstream connections, a spare one made for tunnel A was handed to tunnel B, whose requests then
    // failed the host/SNI/CONNECT agreement (421). Seen with keep-alive SDKs (AWS JS v3, boto3) and 2+ hosts.
    connection_pool_per_downstream_connection: true,
    load_assignment: {
      cluster_name: name,
      endpoints: [
        { lb_endpoints: [{ endpoint: { address: { envoy_internal_address: { server_listener_name: listener } } } }] },
      ],
    },
    transport_socket: {
      name: 'envoy.transport_sockets.internal_upstream',
      typed_config: typed('envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport', {
        transport_socket: {
          name: 'envoy.transport_sockets.raw_buffer',
          typed_config: typed('envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer'),
        },
      }),
    },
  };
}
