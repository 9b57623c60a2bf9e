/**
 * The null ext_proc server on @connectrpc/connect-node (gRPC protocol only, over node:http2 h2c), with
 * exactly the behaviour of null-grpcjs.ts: the same answers, the same phase handling, OK right after the
 * request_headers answer. Connect v2 has no hook for a foreign codec (its router serializes with
 * @bufbuild/protobuf from a message descriptor), so this server uses protobuf-es' own types: the
 * descriptors come from a FileDescriptorSet that `buf build` makes from the same Envoy protos as src/gen
 * (bench/transports.ts builds it into the git-ignored bench/.bin; path in argv[3]), loaded into a file
 * registry. That is the same runtime as protoc-gen-es v2 output (which only embeds the descriptors), so no
 * second codegen is committed. bench/transports.ts checks the answer bytes equal null-grpcjs.ts's.
 * Usage: `tsx bench/baselines/null-connect.ts unix:/path DESCRIPTOR_SET`; prints "listening" when ready.
 */
import { readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import {
  create,
  createFileRegistry,
  fromBinary,
  type DescMessage,
  type DescMethodBiDiStreaming,
  type Message,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';

const [listen, descriptorSet] = process.argv.slice(2);
if (!listen || !descriptorSet) throw new Error('usage: null-connect.ts unix:/path | host:port DESCRIPTOR_SET');

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet)));
const service = registry.getService('envoy.service.ext_proc.v3.ExternalProcessor');
const method = service?.methods.find((m) => m.name === 'Process');
if (method?.methodKind !== 'bidi_streaming') throw new Error('ExternalProcessor.Process not in the descriptor set');
const PROCESS = method as DescMethodBiDiStreaming;
const ProcessingResponseDesc: DescMessage = method.output;

/** The fields of a ProcessingRequest this server reads (protobuf-es shape, registry-typed as Message). */
interface HeaderValue {
  key: string;
  value: string;
  rawValue: Uint8Array;
}
interface Request {
  request: { case: 'requestHeaders'; value: { headers?: { headers: HeaderValue[] } } } | { case: string | undefined };
}

const APPEND_OVERWRITE_IF_EXISTS_OR_ADD = 2; // envoy.config.core.v3.HeaderValueOption.HeaderAppendAction

const setHeader = (key: string, value: string) => ({
  header: { key, value: '', rawValue: Buffer.from(value) },
  appendAction: APPEND_OVERWRITE_IF_EXISTS_OR_ADD,
  keepEmptyValue: false,
});

/** Built per answer, as null-grpcjs.ts's grpc-js encodes its object per write. */
function continueWith(
  set: ReturnType<typeof setHeader>,
  clearRouteCache: boolean,
  dynamicMetadata?: Record<string, Record<string, string>>,
): Message {
  return create(ProcessingResponseDesc, {
    response: {
      case: 'requestHeaders',
      value: { response: { status: 0, headerMutation: { setHeaders: [set], removeHeaders: [] }, clearRouteCache } },
    },
    // protobuf-es v2 holds a google.protobuf.Struct field as a plain JSON object.
    dynamicMetadata,
  } as never);
}

const INJECT = continueWith(setHeader('authorization', 'Bearer x'), false);
const CONTINUE = create(ProcessingResponseDesc);

/** The connect-phase answer: intercept, towards the host and port of the CONNECT's :authority. */
function routeResponse(req: { headers?: { headers: HeaderValue[] } }): Message {
  const authority = req.headers?.headers.find((h) => h.key === ':authority');
  const value = authority
    ? authority.rawValue.length
      ? Buffer.from(authority.rawValue).toString('latin1')
      : authority.value
    : '';
  const colon = value.lastIndexOf(':');
  const [host, port] = colon > 0 ? [value.slice(0, colon), value.slice(colon + 1)] : [value, '443'];
  return continueWith(setHeader('x-authproxy-route', 'intercept'), true, {
    authproxy: { target_host: host, target_port: port },
  });
}

function routes(router: ConnectRouter) {
  router.rpc(PROCESS, async function* process(requests, ctx) {
    const connect = ctx.requestHeader.get('x-authproxy-phase') === 'connect';
    for await (const message of requests) {
      const req = message as unknown as Request;
      if (req.request.case !== 'requestHeaders') {
        yield CONTINUE;
        continue;
      }
      // Returning ends the stream with OK straight after the answer.
      yield connect
        ? routeResponse((req.request as Extract<Request['request'], { case: 'requestHeaders' }>).value)
        : INJECT;
      return;
    }
  });
}

const handler = connectNodeAdapter({
  routes,
  grpc: true,
  connect: false,
  grpcWeb: false,
  readMaxBytes: 4 * 1024 * 1024,
});
// The same session limits as grpc-js (and the lean server): no session memory cap.
const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER }, handler);
server.on('session', (session) => session.on('error', () => {}));
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
