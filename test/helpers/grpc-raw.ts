/**
 * gRPC below the client library: an HTTP/2 session (node:http2) to a gRPC server on `host:port` or
 * `unix:/path`, and streams whose bytes the test chooses (length-prefixed frames or not, compressed flag
 * set or not, lies about the length, never ending). For fuzzing what grpc-js must survive.
 */
import http2 from 'node:http2';
import { connect } from 'node:net';

/** A session to `address` (the form grpc-js takes: `host:port` or `unix:/path`). */
export function rawSession(address: string): http2.ClientHttp2Session {
  const session = address.startsWith('unix:')
    ? http2.connect('http://localhost', { createConnection: () => connect(address.slice('unix:'.length)) })
    : http2.connect(`http://${address}`);
  session.on('error', () => {
    /* a GOAWAY or reset surfaces on the streams */
  });
  return session;
}

/** One gRPC message frame: compressed flag, 4-byte big-endian length, message (the length may lie). */
export function grpcFrame(message: Uint8Array, opts: { compressed?: boolean; declaredLength?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head[0] = opts.compressed ? 1 : 0;
  head.writeUInt32BE(opts.declaredLength ?? message.length, 1);
  return Buffer.concat([head, message]);
}

/** How a raw stream ended. */
export interface RawOutcome {
  /** The HTTP :status of the response headers, if any came. */
  readonly httpStatus?: number;
  /** grpc-status from the trailers (or a trailers-only response), if any. */
  readonly grpcStatus?: number;
  /** Response bytes received. */
  readonly data: Buffer;
  /** The RST_STREAM code when the stream was reset (0 = NO_ERROR). */
  readonly rstCode: number;
  /** True when nothing ended the stream within the wait. */
  readonly timedOut: boolean;
}

/**
 * Opens one stream on `session` (POST `path`, gRPC headers plus `headers`), writes `chunks`, half-closes
 * when `end`, and resolves when the stream closes or after `waitMs` (then it is cancelled, `timedOut` set).
 */
export function rawStream(
  session: http2.ClientHttp2Session,
  path: string,
  chunks: readonly Uint8Array[],
  opts: { end?: boolean; headers?: http2.OutgoingHttpHeaders; waitMs?: number } = {},
): { done: Promise<RawOutcome>; stream: http2.ClientHttp2Stream } {
  const stream = session.request(
    { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...opts.headers },
    { endStream: false },
  );
  const data: Buffer[] = [];
  let httpStatus: number | undefined;
  let grpcStatus: number | undefined;
  const readStatus = (h: http2.IncomingHttpHeaders) => {
    const s = h['grpc-status'];
    if (s !== undefined) grpcStatus = Number(s);
  };
  stream.on('response', (h) => {
    httpStatus = Number(h[':status']);
    readStatus(h);
  });
  stream.on('trailers', readStatus);
  stream.on('data', (c: Buffer) => data.push(c));
  stream.on('error', () => {
    /* reported as rstCode */
  });
  const done = new Promise<RawOutcome>((resolve) => {
    const timer = setTimeout(() => {
      resolve({ httpStatus, grpcStatus, data: Buffer.concat(data), rstCode: -1, timedOut: true });
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, opts.waitMs ?? 10_000);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ httpStatus, grpcStatus, data: Buffer.concat(data), rstCode: stream.rstCode ?? 0, timedOut: false });
    });
  });
  for (const chunk of chunks) if (!stream.destroyed) stream.write(chunk);
  if (opts.end !== false && !stream.destroyed) stream.end();
  return { done, stream };
}
