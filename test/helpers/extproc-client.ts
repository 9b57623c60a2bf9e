/**
 * An Envoy-like ext_proc client built from Envoy's own protos (shipped by @grpc/grpc-js-xds) with
 * @grpc/proto-loader, independent of our generated code, so tests check the wire format Envoy sees.
 */
import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from './envoy-protos.js';

const loaded = loadEnvoyProtos(['envoy/service/ext_proc/v3/external_processor.proto']) as unknown as {
  envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
};

/** A header as Envoy 1.40 sends it: raw_value only. */
export function headerMap(headers: Record<string, string>) {
  return { headers: Object.entries(headers).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) };
}

/** The ProcessingResponse fields tests look at, as decoded by proto-loader (snake_case). */
export interface WireResponse {
  request_headers?: {
    response?: {
      status?: string;
      header_mutation?: {
        set_headers?: Array<{
          header: { key: string; value?: string; raw_value?: Buffer };
          append_action?: string;
          append?: unknown;
        }>;
        remove_headers?: string[];
      };
    };
  };
  immediate_response?: { status: { code: string }; body: Buffer; headers?: unknown };
  response_headers?: unknown;
  request_body?: unknown;
}

/** Creates a client for `address` (host:port or unix:/path). */
export function extProcClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): grpc.Client {
  return new loaded.envoy.service.ext_proc.v3.ExternalProcessor(address, credentials, options);
}

/**
 * Opens one stream, sends `messages` (ProcessingRequest objects, snake_case), half-closes, and returns
 * every response plus the final status.
 */
export function exchange(
  client: grpc.Client,
  messages: object[],
  metadata: Record<string, string | string[]> = {},
): Promise<{ responses: WireResponse[]; status: grpc.StatusObject }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) for (const one of [v].flat()) md.add(k, one);
  const call = (
    client as unknown as { process(md: grpc.Metadata): grpc.ClientDuplexStream<object, WireResponse> }
  ).process(md);
  const responses: WireResponse[] = [];
  return new Promise((resolve, reject) => {
    // Cleared on the status: a pending timer would keep this closure (and `messages`) alive for 15 s.
    const timer = setTimeout(() => reject(new Error('no status within 15 s')), 15_000).unref();
    call.on('data', (r: WireResponse) => responses.push(r));
    call.on('status', (status: grpc.StatusObject) => {
      clearTimeout(timer);
      resolve({ responses, status });
    });
    call.on('error', () => {
      /* surfaced through 'status' */
    });
    for (const m of messages) call.write(m);
    call.end();
  });
}

/** One request_headers message for an HTTPS request. */
export function requestHeaders(
  authority: string,
  path = '/',
  extra: Record<string, string> = {},
  scheme = 'https',
  method = 'GET',
) {
  return {
    request_headers: {
      headers: headerMap({ ':method': method, ':scheme': scheme, ':authority': authority, ':path': path, ...extra }),
      end_of_stream: true,
    },
  };
}

/** Flattens a response's header mutation to `{name: value}` (from raw_value). */
export function setHeaders(r: WireResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of r.request_headers?.response?.header_mutation?.set_headers ?? []) {
    out[h.header.key] = Buffer.from(h.header.raw_value ?? []).toString();
  }
  return out;
}
