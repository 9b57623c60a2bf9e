import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ExternalProcessorService } from '../gen/envoy/service/ext_proc/v3/external_processor.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Outcome } from '../contracts/engine.js';
import type { Engine } from '../engine/engine.js';
import { DEFAULT_REFUSAL_BODY, refusalBody } from '../contracts/reasons.js';
import { EXTPROC_MAX_MESSAGE, PHASE_METADATA_KEY } from '../contracts/envoy.js';
import { streamSandboxId, type IdentityOptions } from './identity.js';
import { toProcessingResponse, wirePolicyRequest } from './translate.js';
import { snapshotHeaders } from '../callbacks/snapshot.js';
import { wireCapturedFrom } from './capture.js';
import { encodedAnswer, encodedContinue, serializeAnswer, type Answer } from './answers.js';
import { readRequest, type WireRequest } from './wire.js';
import { bindPrivateSocket, type PrivateSocket } from '../sockets/unix-socket.js';

export { SANDBOX_ID, SANDBOX_METADATA_KEY } from './identity.js';
const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export { PHASE_METADATA_KEY } from '../contracts/envoy.js';
const NOTHING = encodedAnswer({ kind: 'continue', set: [], remove: ['proxy-authorization'] });
const BAD_CAPTURE = encodedAnswer({ kind: 'immediate', status: 403, body: DEFAULT_REFUSAL_BODY });
/** Inside an intercepted tunnel, a request whose target can't be read (a repeated pseudo-header) is misdirected. */
const MISDIRECTED = encodedAnswer({ kind: 'immediate', status: 421, body: refusalBody('misdirected') });

/** Settings of the ext_proc server. */
export interface ExtProcServerOptions {
  readonly engine: Engine;
  readonly log: Logger;
  /** How each stream's sandbox is identified (metadata, default id, optional client-certificate binding). */
  readonly identity: IdentityOptions;
  /** Counts streams ended with a gRPC error (`authproxy_extproc_errors_total`). */
  readonly metrics?: Pick<Metrics, 'extProcError' | 'decision'>;
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
 * The ext_proc service as authproxy serves it: requests read by the wire reader (only what a decision
 * reads is decoded), answers written as bytes when they are already encoded (see answers.ts). Same
 * method path and wire format as the generated ExternalProcessorService.
 */
export const EXT_PROC_WIRE_SERVICE = {
  process: { ...ExternalProcessorService.process, requestDeserialize: readRequest, responseSerialize: serializeAnswer },
} satisfies grpc.ServiceDefinition;

/**
 * The ext_proc stream handler: a thin shell around the Engine. One ProcessingResponse per
 * request_headers message, in order; a message we never asked for gets a plain CONTINUE; a message with
 * nothing set ends the stream with INVALID_ARGUMENT. Never throws into grpc-js. A decision that is ready
 * at once is written at once; only answers that wait (a callback, a body) go through a promise queue.
 */
export function extProcHandler(opts: ExtProcServerOptions): grpc.handleBidiStreamingCall<WireRequest, Answer> {
  return (call) => {
    const sandboxId = streamSandboxId(call, opts.identity);
    const phase = call.metadata.get(PHASE_METADATA_KEY)[0];
    // Answers still waiting, in order; undefined while none is (then an answer ready at once is written at once).
    let queue: Promise<void> | undefined;
    let waiting = 0;
    // Set while a request is held for its body (a `full_request` callback): decides on the request_body message.
    let awaitingBody: Extract<Outcome, { kind: 'awaitBody' }>['resume'] | undefined;
    const write = (answer: Answer, last: boolean) => {
      if (call.writableEnded || call.destroyed) return;
      call.write(answer);
      if (last) call.end();
    };
    const failed = (err: unknown) => {
      opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'ext_proc handler failed');
      opts.metrics?.extProcError('handler_failed');
      call.emit('error', { code: grpc.status.INTERNAL, details: 'authproxy internal error' });
    };
    // After the request_headers answer nothing else is asked for (every other phase is SKIP, unless a
    // full_request callback asked for the body: then the request_body answer comes first), so the
    // stream is closed with OK right away. Left open, Envoy resets every stream itself, and Node's HTTP/2
    // rapid-reset guard then sends GOAWAY after ~1,000 resets, refusing the streams in flight (seen: 503s).
    const send = (answer: Answer | Promise<Answer>, last = false) => {
      if (waiting === 0 && !(answer instanceof Promise)) return write(answer, last);
      waiting++;
      queue = (queue ?? Promise.resolve())
        .then(() => answer)
        .then(
          (resolved) => {
            waiting--;
            write(resolved, last);
          },
          (err: unknown) => {
            waiting--;
            failed(err);
          },
        );
    };
    const answered = (outcome: Outcome | Promise<Outcome>) =>
      outcome instanceof Promise ? outcome.then(encodedAnswer) : encodedAnswer(outcome);
    call.on('data', (req: WireRequest) => {
      try {
        const kind = req.kind;
        if (!kind) {
          opts.metrics?.extProcError('invalid_message');
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'ProcessingRequest has no request set' });
          return;
        }
        if (kind === 'requestBody' && awaitingBody) {
          const resume = awaitingBody;
          awaitingBody = undefined;
          const { body, endOfStream } = req.body();
          const outcome = resume(body, endOfStream);
          // Not ended here: after a body round trip Envoy half-closes the stream itself once it is done, and
          // ending first made it reset the stream (one RST per full_request call, seen in tx_reset).
          send(Promise.resolve(outcome).then((o) => toProcessingResponse(o, 'requestBody')));
          return;
        }
        if (kind !== 'requestHeaders') {
          send(encodedContinue(kind));
          return;
        }
        const request = wirePolicyRequest(req, phase === 'inject');
        const original = phase === 'capture' ? wireCapturedFrom(req) : undefined;
        if (phase === 'capture' && !original) {
          opts.metrics?.decision('refuse', 'bad_capture');
          send(BAD_CAPTURE, true);
          return;
        }
        if (request && (phase === 'connect' || phase === 'capture')) {
          send(answered(opts.engine.route(request.method, request.authority, sandboxId, original)), true);
          return;
        }
        if (!request && phase === 'inject') {
          opts.log.debug(
            { sandbox: sandboxId ?? '(ambiguous)', outcome: 'refuse', reason: 'ambiguous_request', status: 421 },
            'decision',
          );
          opts.metrics?.decision('refuse', 'ambiguous_request');
          send(MISDIRECTED, true);
          return;
        }
        if (!request || sandboxId === undefined) {
          opts.log.debug(
            { sandbox: sandboxId ?? '(ambiguous)', outcome: 'pass', reason: 'ambiguous_request' },
            'decision',
          );
          opts.metrics?.decision('pass', 'ambiguous_request');
          send(NOTHING, true);
          return;
        }
        const outcome = opts.engine.handle(request, sandboxId, {
          endOfStream: req.endOfStream,
          headers: () => snapshotHeaders(req.headerList()),
        });
        if (!(outcome instanceof Promise) && outcome.kind === 'awaitBody') {
          awaitingBody = outcome.resume;
          send(encodedAnswer(outcome));
          return;
        }
        send(answered(outcome), true);
      } catch (err) {
        failed(err);
      }
    });
    call.on('end', () => {
      if (!queue) return void (!call.writableEnded && call.end());
      queue.then(() => !call.writableEnded && call.end());
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
  // Room for a request_body message carrying a whole BODY_LIMIT body plus headers and framing.
  // Channelz off: nothing reads it, and with it on grpc-js builds a call tracker (closures, Date.now) per stream.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': EXTPROC_MAX_MESSAGE, 'grpc.enable_channelz': 0 });
  server.addService(EXT_PROC_WIRE_SERVICE, { process: extProcHandler(opts) });
  register?.(server);
  const health = new HealthImplementation({ '': 'SERVING', [EXT_PROC_SERVICE]: 'SERVING' });
  health.addToServer(server);
  const socketPath = listen.startsWith('unix:') ? listen.slice('unix:'.length) : undefined;
  const bind = (addr: string) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(addr, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
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
