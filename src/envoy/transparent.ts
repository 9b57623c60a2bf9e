/**
 * The transparent-mode bootstrap: one listener receives every TCP connection that the sandbox's packet
 * rules (`authproxy sandbox-net`) redirect to it, and hands each to the forward proxy's own decision:
 *
 *   TLS (any port)   -> a CONNECT SNI:port synthesized by tcp_proxy, into an internal listener running the
 *                       forward proxy's outer connection manager (intercept with the on-demand leaf, or tunnel)
 *   plain HTTP       -> the same outer connection manager, directly on the listener
 *   anything else    -> a CONNECT ip:port, same way; authproxy applies the raw TCP rules
 *
 * Every path carries the original destination (`x-authproxy-original-dst`, set by Envoy from the socket),
 * which authproxy checks and pins instead of resolving a name.
 */
import {
  bootstrapDocument,
  bootstrapYaml,
  innerListener,
  outerHcm,
  type BootstrapOptions,
  type OuterHcmVariant,
} from './bootstrap.js';
import { typed } from './filters.js';
import { internalCluster } from './clusters.js';
import { CAPTURE_HEADER, ORIGINAL_DST_HEADER } from '../extproc/capture.js';
import type { CaptureKind } from '../policy/capture.js';

/** The internal listener (and its cluster) that runs the outer connection manager for synthesized CONNECTs. */
const CAPTURE_CONNECT = 'capture_connect';
const ORIGINAL_DST = '%DOWNSTREAM_LOCAL_ADDRESS%';
/**
 * How long the listener waits for a client's first bytes to tell TLS from HTTP from anything else. A
 * server-speaks-first protocol (SMTP, MySQL) sends nothing, so it is treated as raw TCP after this delay.
 */
const DETECT_TIMEOUT = '1s';

const overwrite = (key: string, value: string) => ({
  append: { header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
});

/** Plain HTTP arrives with headers the sandbox wrote: its copies of the capture headers go, Envoy's own are set. */
const HTTP_HCM: OuterHcmVariant = {
  statPrefix: 'capture_http',
  logPrefix: 'capture-http',
  phase: 'capture',
  mutations: [
    { remove: ORIGINAL_DST_HEADER },
    { remove: CAPTURE_HEADER },
    overwrite(ORIGINAL_DST_HEADER, ORIGINAL_DST),
    overwrite(CAPTURE_HEADER, 'http'),
  ],
  stripOnForward: [ORIGINAL_DST_HEADER, CAPTURE_HEADER],
};

/** Synthesized CONNECTs come from Envoy's tcp_proxy only, whose headers are Envoy's: nothing to strip. */
const CONNECT_HCM: OuterHcmVariant = {
  statPrefix: CAPTURE_CONNECT,
  logPrefix: 'capture-connect',
  phase: 'capture',
  mutations: [],
  stripOnForward: [],
};

const listenerFilter = (name: string, type: string) => ({
  name: `envoy.filters.listener.${name}`,
  typed_config: typed(`envoy.extensions.filters.listener.${name}.v3.${type}`),
});

/** A tcp_proxy that turns the connection into a CONNECT `hostname` carrying the original destination. */
function synthesizedConnect(kind: CaptureKind, hostname: string) {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: typed('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
      stat_prefix: `capture_${kind}`,
      cluster: CAPTURE_CONNECT,
      tunneling_config: {
        hostname,
        headers_to_add: [
          { header: { key: ORIGINAL_DST_HEADER, value: ORIGINAL_DST } },
          { header: { key: CAPTURE_HEADER, value: kind } },
        ],
      },
      access_log: [
        {
          name: 'envoy.access_loggers.stdout',
          typed_config: typed('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {
            log_format: {
              text_format_source: {
                inline_string: `[capture-${kind}] ${ORIGINAL_DST} sni=%REQUESTED_SERVER_NAME% -> %RESPONSE_FLAGS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n`,
              },
            },
          }),
        },
      ],
    }),
  };
}

/** The listener the packet rules redirect to: original destination restored, protocol sniffed, one chain each. */
function captureListener(opts: BootstrapOptions) {
  return {
    name: 'transparent',
    address: { socket_address: { address: opts.proxyAddress, port_value: opts.proxyPort } },
    listener_filters: [
      listenerFilter('original_dst', 'OriginalDst'),
      listenerFilter('tls_inspector', 'TlsInspector'),
      listenerFilter('http_inspector', 'HttpInspector'),
    ],
    listener_filters_timeout: DETECT_TIMEOUT,
    continue_on_listener_filters_timeout: true,
    filter_chains: [
      {
        name: 'tls',
        filter_chain_match: { transport_protocol: 'tls' },
        filters: [synthesizedConnect('tls', '%REQUESTED_SERVER_NAME%:%DOWNSTREAM_LOCAL_PORT%')],
      },
      {
        name: 'http',
        filter_chain_match: {
          transport_protocol: 'raw_buffer',
          application_protocols: ['http/1.0', 'http/1.1', 'h2c'],
        },
        filters: [outerHcm(opts, HTTP_HCM)],
      },
    ],
    default_filter_chain: { name: 'tcp', filters: [synthesizedConnect('tcp', ORIGINAL_DST)] },
  };
}

/** Renders the sidecar's Envoy bootstrap for transparent mode as YAML (`envoy-config --mode transparent`). */
export function renderTransparentBootstrap(opts: BootstrapOptions): string {
  const connectListener = {
    name: CAPTURE_CONNECT,
    internal_listener: {},
    filter_chains: [{ filters: [outerHcm(opts, CONNECT_HCM)] }],
  };
  return bootstrapYaml(
    'transparent',
    bootstrapDocument(
      opts,
      [captureListener(opts), connectListener, innerListener(opts)],
      [internalCluster(CAPTURE_CONNECT, CAPTURE_CONNECT)],
    ),
  );
}
