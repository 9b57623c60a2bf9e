/**
 * Loads Envoy's own .proto files (shipped by @grpc/grpc-js-xds) with @grpc/proto-loader, so test clients
 * speak the wire format Envoy does, independently of our ts-proto generated code.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** The grpc package object for `files` (paths inside Envoy's API tree), decoded with snake_case fields. */
export function loadEnvoyProtos(files: string[], options: protoLoader.Options = {}): grpc.GrpcObject {
  const definition = protoLoader.loadSync(files, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
    ...options,
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d)),
  });
  return grpc.loadPackageDefinition(definition);
}
