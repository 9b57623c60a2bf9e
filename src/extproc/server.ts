import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import {
  ExternalProcessorService, type ProcessingRequest, type ProcessingResponse,
} from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import type { Logger } from '../log.js';
import { refusalBody, type Engine, type Outcome } from '../runtime/engine.js';
import { streamSandboxId, type IdentityOptions } from './identity.js';
import { continueResponse, toPolicyRequest, toProcessingResponse } from './translate.js';
import { snapshotHeaders } from '../callbacks/snapshot.js';
import { capturedFrom } from './capture.js';
import { bindPrivateSocket, type PrivateSocket } from '../runtime/unix-socket.js';

export { SANDBOX_ID, SANDBOX_METADATA_KEY } from './identity.js';
const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
/**
 * The gRPC metadata key that tells the forward proxy's two ext_proc filters apart: `connect` on the outer
 * listener (intercept-or-tunnel), `inject` (or absent) on requests whose credentials are decided, and
 * `capture` on transparent mode's copy of the outer listener (the original destination comes in headers).
 */
export const PHASE_METADATA_KEY = 'x-authproxy-phase';
const NOTHING: Outcome = { kind: 'continue', set: [], remove: ['proxy-authorization'] };
const BAD_CAPTURE: Outcome = { kind: 'immediate', status: 403, body: 'egress to this host is not allowed' };
/** Inside an intercepted tunnel, a request whose target can't be read (a repeated pseudo-header) is misdirected. */
const MISDIRECTED: Outcome = { kind: 'immediate', status: 421, body: refusalBody('misdirected') };

/** Settings of the ext_proc server. */
export interface ExtProcServerOptions {
  readonly engine: Engine;
  readonly log: Logger;
  /** How each stream's sandbox is identified (metadata, default id, optional client-certificate binding). */
  readonly identity: IdentityOptions;
}

/** A running gRPC server: ext_proc plus grpc.health.v1. */
export interface RunningServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  /** `host:port` with the real port, or `unix:/path`. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * The ext_proc stream handler: a thin shell around the Engine. One ProcessingResponse per
 * request_headers message, in order; a message we never asked for gets a plain CONTINUE; a message with
 * nothing set ends the stream with INVALID_ARGUMENT. Never throws into grpc-js.
 */
export function extProcHandler(opts: ExtProcServerOptions): grpc.handleBidiStreamingCall<ProcessingRequest, ProcessingResponse> {
  return (call) => {
    const sandboxId = streamSandboxId(call, opts.identity);
    const phase = call.metadata.get(PHASE_METADATA_KEY)[0];
    let queue: Promise<void> = Promise.resolve();
    // Set while a request is held for its body (a `full_request` callback): decides on the request_body message.
    let awaitingBody: Extract<Outcome, { kind: 'awaitBody' }>['resume'] | undefined;
    // After the request_headers answer nothing else is asked for (every other phase is SKIP, unless a
    // full_request callback asked for the body: then the request_body answer comes first), so the
    // stream is closed with OK right away. Left open, Envoy resets every stream itself, and Node's HTTP/2
    // rapid-reset guard then sends GOAWAY after ~1,000 resets, refusing the streams in flight (seen: 503s).
    const send = (response: ProcessingResponse | Promise<ProcessingResponse>, last = false) => {
      queue = queue.then(async () => {
        const resolved = await response;
        if (call.writableEnded || call.destroyed) return;
        call.write(resolved);
        if (last) call.end();
      });
    };
    call.on('data', (req: ProcessingRequest) => {
      try {
        const message = req.request;
        if (!message) {
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'ProcessingRequest has no request set' });
          return;
        }
        if (message.$case === 'requestBody' && awaitingBody) {
          const resume = awaitingBody;
          awaitingBody = undefined;
          const outcome = resume(message.value.body, message.value.endOfStream);
          // Not ended here: after a body round trip Envoy half-closes the stream itself once it is done, and
          // ending first made it reset the stream (one RST per full_request call, seen in tx_reset).
          send(Promise.resolve(outcome).then((o) => toProcessingResponse(o, 'requestBody')));
          return;
        }
        if (message.$case !== 'requestHeaders') {
          send(continueResponse(message.$case));
          return;
        }
        const request = toPolicyRequest(message.value, req.attributes, phase === 'inject');
        const original = phase === 'capture' ? capturedFrom(message.value) : undefined;
        if (phase === 'capture' && !original) {
          send(toProcessingResponse(BAD_CAPTURE), true);
          return;
        }
        if (request && (phase === 'connect' || phase === 'capture')) {
          const routed = opts.engine.route(request.method, request.authority, sandboxId, original);
          send(routed instanceof Promise ? routed.then((o) => toProcessingResponse(o)) : toProcessingResponse(routed), true);
          return;
        }
        if (!request && phase === 'inject') {
          opts.log.debug({ sandbox: sandboxId ?? '(ambiguous)', outcome: 'refuse', reason: 'ambiguous_request', status: 421 }, 'decision');
          send(toProcessingResponse(MISDIRECTED), true);
          return;
        }
        if (!request || sandboxId === undefined) {
          opts.log.debug({ sandbox: sandboxId ?? '(ambiguous)', outcome: 'pass', reason: 'ambiguous_request' }, 'decision');
          send(toProcessingResponse(NOTHING), true);
          return;
        }
        const headers = message.value;
        const outcome = opts.engine.handle(request, sandboxId, { endOfStream: headers.endOfStream, headers: () => snapshotHeaders(headers.headers?.headers ?? []) });
        if (!(outcome instanceof Promise) && outcome.kind === 'awaitBody') {
          awaitingBody = outcome.resume;
          send(toProcessingResponse(outcome));
          return;
        }
        send(outcome instanceof Promise ? outcome.then((o) => toProcessingResponse(o)) : toProcessingResponse(outcome), true);
      } catch (err) {
        opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'ext_proc handler failed');
        call.emit('error', { code: grpc.status.INTERNAL, details: 'authproxy internal error' });
      }
    });
    call.on('end', () => {
      queue.then(() => !call.writableEnded && call.end(), () => !call.writableEnded && call.end());
    });
    call.on('error', () => {
      /* the client went away; nothing to clean up */
    });
  };
}

/**
 * Starts the ext_proc gRPC server on `listen` (`host:port`, or `unix:/path` whose socket file is 0600 from
 * the moment it can be reached, so that only its owner, Envoy's user, can ask for decisions).
 */
export async function startExtProcServer(
  listen: string,
  opts: ExtProcServerOptions,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  register?: (server: grpc.Server) => void,
): Promise<RunningServer> {
  // Room for a request_body message carrying a whole 16 MiB body (INTERCEPT_BUFFER_LIMIT of src/envoy/
  // bootstrap.ts, not imported: that module imports this one) plus headers and framing.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 17 * 1024 * 1024 });
  server.addService(ExternalProcessorService, { process: extProcHandler(opts) });
  register?.(server);
  const health = new HealthImplementation({ '': 'SERVING', [EXT_PROC_SERVICE]: 'SERVING' });
  health.addToServer(server);
  const socketPath = listen.startsWith('unix:') ? listen.slice('unix:'.length) : undefined;
  const bind = (addr: string) => new Promise<number>((resolve, reject) => server.bindAsync(addr, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  let port = 0;
  let socket: PrivateSocket | undefined;
  try {
    // A Unix socket is bound where nobody else can reach it and moved into place already 0600.
    if (socketPath) socket = await bindPrivateSocket(socketPath, async (temp) => void (await bind(`unix:${temp}`)));
    else port = await bind(listen);
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  const address = socketPath ? listen : `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
  return {
    server,
    health,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(EXT_PROC_SERVICE, 'NOT_SERVING');
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          socket?.remove();
          resolve();
        });
      }),
  };
}
