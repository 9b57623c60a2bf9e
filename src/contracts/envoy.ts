/**
 * Names and limits that authproxy's code and the Envoy config it renders must agree on. A leaf: the ext_proc
 * adapter, the Envoy bootstrap renderer, the cloud handlers and the config loader all import it, none of them
 * each other for a constant.
 */

/** The gRPC metadata key in which each Envoy sidecar names its sandbox. */
export const SANDBOX_METADATA_KEY = 'x-sandbox-id';
/** What a sandbox id may look like; anything else (including two ids joined by a comma) is ambiguous. */
export const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * The gRPC metadata key that tells the forward proxy's two ext_proc filters apart: `connect` on the outer
 * listener (intercept-or-tunnel), `inject` (or absent) on requests whose credentials are decided, and
 * `capture` on transparent mode's copy of the outer listener (the original destination comes in headers).
 */
export const PHASE_METADATA_KEY = 'x-authproxy-phase';

/** The header the sidecar's outer route table matches on to intercept or tunnel a CONNECT. */
export const ROUTE_HEADER = 'x-authproxy-route';

/**
 * The dynamic metadata key (namespace `authproxy`) that sends a rewritten request to the intercepting
 * listener's plain-http route: another sandbox's service. Dynamic metadata only comes from authproxy's
 * answer; nothing the sandbox sends can set it.
 */
export const UPSTREAM_KEY = 'upstream';

/**
 * The checked address (and port) of the CONNECT target, as the intercepting listener inherits it. Not
 * inherited as `envoy.upstream.dynamic_host` itself: a connection-level copy of that key could not be
 * replaced per request, which a `type: rewrite` answer must do (dialPin).
 */
export const DIAL_HOST = 'authproxy.dial_host';
/** The port that goes with DIAL_HOST (filter state inherited by the intercepting listener). */
export const DIAL_PORT = 'authproxy.dial_port';

/**
 * The most of a request body authproxy is handed and hashes: the intercepting listener's per-connection
 * buffer limit (what BUFFERED_PARTIAL hands authproxy of a body) and the largest AWS body re-signed
 * (larger ones get 413). `full_request` snapshots still carry only their first 1 MiB (SNAPSHOT_BODY_LIMIT).
 */
export const BODY_LIMIT = 16 * 1024 * 1024;
/** The largest ext_proc message authproxy accepts: a request_body message with a whole BODY_LIMIT body, plus headers and framing. */
export const EXTPROC_MAX_MESSAGE = BODY_LIMIT + 1024 * 1024;
