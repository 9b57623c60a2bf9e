import * as grpc from '@grpc/grpc-js';
import { AuthProxyError } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import { streamSandboxId } from '../extproc/identity.js';
import {
  SecretDiscoveryServiceService,
  type SecretDiscoveryServiceServer,
} from '../gen/envoy/service/secret/v3/sds.js';
import type { Logger } from '../log.js';
import { deltaSecretsHandler } from './delta-stream.js';
import { SecretIssuer, type MintPolicy } from './issuer.js';
import type { LeafCache } from './leaf-cache.js';
import { streamSecretsHandler } from './sotw-stream.js';
import type { StreamContext, StreamState } from './stream-state.js';

export type { MintPolicy } from './issuer.js';

/** The fully qualified gRPC service name, for a health status next to ext_proc's. */
export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';

/** What the SDS service needs; the clock for renewal pushes is the leaf cache's. */
export interface SdsOptions {
  /** Mints and caches leaves; build it over a `CertificateAuthority`. */
  readonly leafCache: LeafCache;
  /** Which (sandbox, hostname) pairs may get a certificate; everything else is answered as removed. */
  readonly mayMint: MintPolicy;
  /** Used when a stream carries no `x-sandbox-id` metadata (sidecar mode). */
  readonly defaultSandboxId: string;
  /**
   * mTLS: the sandbox id must be vouched for by the client certificate (see src/extproc/identity.ts); leaves
   * are then cached per (sandbox, host), so no sandbox's sidecar is handed another sandbox's leaf or key.
   */
  readonly bindToClientCert?: boolean;
  readonly log: Logger;
}

/** Handle on a registered SDS service. */
export interface SdsService {
  /** SDS streams open now. */
  readonly openStreams: number;
  /**
   * Ends every open SDS stream (OK status) and cancels their renewal timers. Call it before the gRPC
   * server's tryShutdown: Envoy keeps SDS streams open for ever, so shutdown would otherwise wait.
   */
  close(): void;
}

/**
 * The sandbox a stream speaks for, by the same rule as ext_proc: no `x-sandbox-id` means the default
 * (sidecar mode); exactly one well-formed value means that sandbox; anything else (repeated, empty,
 * malformed, two ids joined by a comma) is ambiguous and returns undefined, so every name is refused.
 */
export function sandboxIdFrom(metadata: grpc.Metadata, defaultSandboxId: string): string | undefined {
  return streamSandboxId({ metadata }, { defaultSandboxId, bindToClientCert: false });
}

/**
 * Registers `envoy.service.secret.v3.SecretDiscoveryService` on a gRPC server, typically the one that
 * serves ext_proc (pass `(s) => addSdsService(s, opts)` as `startExtProcServer`'s `register`), so one
 * 0600 Unix socket carries both and only Envoy can ask for certificates. DeltaSecrets and StreamSecrets
 * are served; FetchSecrets (which Envoy never calls) answers UNIMPLEMENTED.
 */
export function addSdsService(server: grpc.Server, opts: SdsOptions): SdsService {
  if (!SANDBOX_ID.test(opts.defaultSandboxId)) {
    throw new AuthProxyError(
      'usage',
      `defaultSandboxId: "${opts.defaultSandboxId}" must be 1-128 characters of A-Z a-z 0-9 . _ : -`,
    );
  }
  const streams = new Set<StreamState>();
  const ctx: StreamContext = {
    // With proven sandbox ids, each sandbox gets leaves (and keys) of its own: one sidecar can't obtain or reuse another's.
    issuer: new SecretIssuer(opts.leafCache, opts.mayMint, opts.log, opts.bindToClientCert ?? false),
    clock: opts.leafCache.clock,
    log: opts.log,
    sandboxIdOf: (call) =>
      streamSandboxId(call, {
        defaultSandboxId: opts.defaultSandboxId,
        bindToClientCert: opts.bindToClientCert ?? false,
      }),
    track: (state) => streams.add(state),
    untrack: (state) => streams.delete(state),
  };
  const implementation: SecretDiscoveryServiceServer = {
    deltaSecrets: deltaSecretsHandler(ctx),
    streamSecrets: streamSecretsHandler(ctx),
    fetchSecrets: (_call, callback) =>
      callback({
        code: grpc.status.UNIMPLEMENTED,
        details: 'FetchSecrets is not served; use DeltaSecrets (DELTA_GRPC)',
      }),
  };
  server.addService(SecretDiscoveryServiceService, implementation);
  return {
    get openStreams() {
      return streams.size;
    },
    close() {
      for (const state of [...streams]) state.end();
    },
  };
}
