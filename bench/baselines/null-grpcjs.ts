/**
 * The null @grpc/grpc-js ext_proc server: the same transport, generated types (src/gen, read only) and
 * server options as authproxy (channelz off, as src/extproc/server.ts sets it), doing none of its work.
 * Each stream's request_headers message gets one header mutation (`authorization: Bearer x`, raw_value,
 * OVERWRITE_IF_EXISTS_OR_ADD) and the stream ends with OK right after, as authproxy answers a static rule.
 * A `connect`-phase stream (the sidecar's outer listener) gets authproxy's intercept answer:
 * `x-authproxy-route: intercept`, a route cache clear, and the target from :authority as dynamic metadata.
 * `--defaults` runs grpc-js out of the box (channelz on); `--tuned` adds an explicit
 * `grpc.max_concurrent_streams`, server keepalive pings and `grpc-node.max_session_memory` (Nagle/noDelay
 * has no grpc-js server option and means nothing on a Unix socket). Usage:
 * `tsx bench/baselines/null-grpcjs.ts unix:/path [--defaults|--tuned]`; prints "listening" when ready.
 */
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  ExternalProcessorService,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor.js';
import { HeaderValueOption_HeaderAppendAction } from '../../src/gen/envoy/config/core/v3/base.js';

const setHeader = (key: string, value: string) => ({
  header: { key, value: '', rawValue: Buffer.from(value) },
  appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  keepEmptyValue: false,
});

function continueWith(
  set: ReturnType<typeof setHeader>,
  clearRouteCache: boolean,
  dynamicMetadata?: ProcessingResponse['dynamicMetadata'],
): ProcessingResponse {
  return {
    response: {
      $case: 'requestHeaders',
      value: {
        response: {
          status: 0,
          headerMutation: { setHeaders: [set], removeHeaders: [] },
          bodyMutation: undefined,
          trailers: undefined,
          clearRouteCache,
        },
      },
    },
    dynamicMetadata,
    modeOverride: undefined,
    overrideMessageTimeout: undefined,
  };
}

const INJECT = continueWith(setHeader('authorization', 'Bearer x'), false);
const CONTINUE: ProcessingResponse = {
  response: undefined,
  modeOverride: undefined,
  overrideMessageTimeout: undefined,
};

/** The connect-phase answer: intercept, towards the host and port of the CONNECT's :authority. */
function routeResponse(
  req: Extract<ProcessingRequest['request'], { $case: 'requestHeaders' }>['value'],
): ProcessingResponse {
  const authority = req.headers?.headers.find((h) => h.key === ':authority');
  const value = authority ? (authority.rawValue.length ? authority.rawValue.toString('latin1') : authority.value) : '';
  const colon = value.lastIndexOf(':');
  const [host, port] = colon > 0 ? [value.slice(0, colon), value.slice(colon + 1)] : [value, '443'];
  return continueWith(setHeader('x-authproxy-route', 'intercept'), true, {
    authproxy: { target_host: host, target_port: port },
  });
}

const handler: grpc.handleBidiStreamingCall<ProcessingRequest, ProcessingResponse> = (call) => {
  const connect = call.metadata.get('x-authproxy-phase')[0] === 'connect';
  call.on('data', (req: ProcessingRequest) => {
    if (call.writableEnded) return;
    if (req.request?.$case !== 'requestHeaders') return void call.write(CONTINUE);
    call.write(connect ? routeResponse(req.request.value) : INJECT);
    call.end();
  });
  call.on('end', () => !call.writableEnded && call.end());
  call.on('error', () => {});
};

const listen = process.argv[2];
if (!listen) throw new Error('usage: null-grpcjs.ts unix:/path | host:port');
if (listen.startsWith('unix:')) rmSync(listen.slice('unix:'.length), { force: true });
const variant = process.argv[3];
const options: grpc.ServerOptions = { 'grpc.max_receive_message_length': 4 * 1024 * 1024 };
if (variant !== '--defaults') options['grpc.enable_channelz'] = 0;
if (variant === '--tuned') {
  Object.assign(options, {
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc-node.max_session_memory': Number.MAX_SAFE_INTEGER,
  });
}
const server = new grpc.Server(options);
server.addService(ExternalProcessorService, { process: handler });
server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log('listening', listen);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    server.forceShutdown();
    process.exit(0);
  });
