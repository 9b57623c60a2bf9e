/**
 * The null ext_proc server over a lean gRPC transport written on node:http2 for the one ext_proc method
 * (/envoy.service.ext_proc.v3.ExternalProcessor/Process, bidi streaming), with the ts-proto codec of
 * src/gen (read only) and exactly the behaviour of null-grpcjs.ts: the same answers (encoded per message,
 * as grpc-js does), the same phase handling (x-authproxy-phase: connect), OK right after the
 * request_headers answer. The transport: gRPC length-prefixed frames parsed across DATA frames (several
 * messages in one frame, one message split over many), 4 MiB receive limit (RESOURCE_EXHAUSTED), no
 * compression (a compressed message is UNIMPLEMENTED; grpc-accept-encoding says identity), any other path
 * UNIMPLEMENTED in a trailers-only answer, trailers `grpc-status: 0`, back-pressure passed on (reading
 * pauses while a write is buffered, so HTTP/2 flow control holds the peer), and a reset stream simply
 * dropped. Usage: `tsx bench/baselines/null-h2.ts unix:/path | host:port`; prints "listening" when ready.
 */
import { rmSync } from 'node:fs';
import http2 from 'node:http2';
import {
  ExternalProcessorService,
  ProcessingRequest,
  ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor.js';
import { HeaderValueOption_HeaderAppendAction } from '../../src/gen/envoy/config/core/v3/base.js';

// ---- the answers: a copy of null-grpcjs.ts (kept identical; bench/transports.ts compares the bytes) ----

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

// ---- the transport ----

const PATH = ExternalProcessorService.process.path;
const MAX_RECEIVE = 4 * 1024 * 1024;
const Status = { OK: 0, INTERNAL: 13, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12 } as const;
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity',
};

/** One gRPC message in its 5-byte length prefix (flag 0: not compressed). */
function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

/**
 * Splits a stream of DATA chunks into gRPC messages: zero-copy while a message lies in one chunk, one
 * concatenation when it spans several (never quadratic: the body is gathered only once it is complete).
 */
export class Deframer {
  private parts: Buffer[] = [];
  private have = 0;
  /** The body length of the message whose prefix was read, or -1 while waiting for a prefix. */
  private need = -1;
  private compressed = false;

  constructor(private readonly maxLength: number) {}

  /** Takes `n` ≤ this.have bytes off the front. */
  private take(n: number): Buffer {
    const first = this.parts[0]!;
    this.have -= n;
    if (first.length > n) {
      this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.parts.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - at);
      p.copy(out, at, 0, k);
      at += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    return out;
  }

  /** Feeds a chunk; returns the complete messages in it, or an error (a gRPC status) to end the stream with. */
  push(chunk: Buffer): { messages: Buffer[]; error?: { code: number; message: string } } {
    this.parts.push(chunk);
    this.have += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.have < 5) break;
        const prefix = this.take(5);
        this.compressed = prefix[0] !== 0;
        this.need = prefix.readUInt32BE(1);
        if (this.compressed)
          return {
            messages,
            error: {
              code: Status.UNIMPLEMENTED,
              message: 'compressed messages are not supported (grpc-accept-encoding: identity)',
            },
          };
        if (this.need > this.maxLength)
          return {
            messages,
            error: {
              code: Status.RESOURCE_EXHAUSTED,
              message: `received message larger than max (${this.need} vs. ${this.maxLength})`,
            },
          };
      }
      if (this.have < this.need) break;
      messages.push(this.need === 0 ? Buffer.alloc(0) : this.take(this.need));
      this.need = -1;
    }
    return { messages };
  }

  /** Whether a message was left incomplete (at the client's half-close: a protocol error). */
  get partial(): boolean {
    return this.have > 0 || this.need >= 0;
  }
}

function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on('error', () => {});
  if (headers[':method'] !== 'POST' || headers[':path'] !== PATH) {
    stream.respond(
      {
        ...RESPONSE_HEADERS,
        'grpc-status': String(Status.UNIMPLEMENTED),
        'grpc-message': encodeURI(`unknown method ${headers[':path']}`),
      },
      { endStream: true },
    );
    return;
  }
  const connect = headers['x-authproxy-phase'] === 'connect';
  const deframer = new Deframer(MAX_RECEIVE);
  let responded = false;
  let finished = false;

  /** Ends the call with `code`: trailers after the messages, or a trailers-only answer when none went out. */
  const finish = (code: number, message = '') => {
    if (finished) return;
    finished = true;
    stream.removeListener('data', onData);
    if (stream.destroyed || stream.closed) return;
    const status = { 'grpc-status': String(code), 'grpc-message': encodeURI(message) };
    if (!responded) stream.respond({ ...RESPONSE_HEADERS, ...status }, { endStream: true });
    else {
      stream.once('wantTrailers', () => stream.sendTrailers(status));
      stream.end();
    }
    // No RST_STREAM after the trailers even if the peer has not half-closed: grpc-js sends none either
    // (the stream stays half-closed until the peer ends it; whatever it still sends is read and dropped).
  };

  const send = (resp: ProcessingResponse) => {
    if (!responded) {
      responded = true;
      stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    }
    // Back-pressure: stop reading (and so stop granting the peer window) until the write has drained.
    if (!stream.write(frame(ProcessingResponse.encode(resp).finish()))) {
      stream.pause();
      stream.once('drain', () => stream.resume());
    }
  };

  function onData(chunk: Buffer) {
    const { messages, error } = deframer.push(chunk);
    for (const body of messages) {
      if (finished) return;
      let req: ProcessingRequest;
      try {
        req = ProcessingRequest.decode(body);
      } catch (err) {
        return finish(Status.INTERNAL, `error parsing request: ${(err as Error).message}`);
      }
      if (req.request?.$case !== 'requestHeaders') {
        send(CONTINUE);
        continue;
      }
      send(connect ? routeResponse(req.request.value) : INJECT);
      return finish(Status.OK);
    }
    if (error) finish(error.code, error.message);
  }

  stream.on('data', onData);
  stream.on('end', () =>
    deframer.partial ? finish(Status.INTERNAL, 'incomplete message at end of stream') : finish(Status.OK),
  );
  // A reset (RST_STREAM from the peer, or the session going away): nothing more to send.
  stream.on('aborted', () => (finished = true));
  stream.on('close', () => (finished = true));
}

/** The lean server: h2c, the same session limits as grpc-js's defaults (no session memory cap). */
export function createLeanServer(): http2.Http2Server {
  const server = http2.createServer({
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  });
  server.on('session', (session) => session.on('error', () => {}));
  server.on('stream', onStream);
  return server;
}

if (process.argv[1]?.endsWith('null-h2.ts')) {
  const listen = process.argv[2];
  if (!listen) throw new Error('usage: null-h2.ts unix:/path | host:port');
  const server = createLeanServer();
  const onListening = () => console.log('listening', listen);
  if (listen.startsWith('unix:')) {
    const path = listen.slice('unix:'.length);
    rmSync(path, { force: true });
    server.listen(path, onListening);
  } else {
    const colon = listen.lastIndexOf(':');
    server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon) || '127.0.0.1', onListening);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}
