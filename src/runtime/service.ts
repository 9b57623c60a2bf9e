import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { AuthProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { ConfigWatcher, loadSources } from '../config/watch.js';
import { MemoryCredentialCache, type CredentialCache } from '../callbacks/cache.js';
import { DEFAULT_CALLBACK_LIMITS } from '../callbacks/client.js';
import { CallbackResolver } from '../callbacks/resolver.js';
import { CallbackSigner } from '../callbacks/signer.js';
import { parsePrivateKey, Unsealer } from '../secrets/sealing.js';
import { startExtProcServer, type RunningServer } from '../extproc/server.js';
import { Engine } from './engine.js';
import { SidecarPolicy } from './sidecar-policy.js';

/** Settings of `authproxy serve`, read once at start from flags and AUTHPROXY_* variables. */
export interface ServeSettings {
  readonly config: string;
  readonly listen: string;
  readonly secretsDir?: string;
  readonly sealingKey?: string;
  readonly signingKey?: string;
  readonly sandboxId: string;
  readonly callbackTimeoutMs?: number;
  readonly pollMs?: number;
  /** mTLS for a TCP listener: server certificate and key, and the CA that signs sidecars' client certificates. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly clientCa: string };
}

/**
 * gRPC server credentials: insecure for a Unix socket (its 0600 mode is the access control), mutual TLS
 * with a required, verified client certificate when `tls` is given.
 */
export function serverCredentials(tls: ServeSettings['tls']): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const read = (path: string) => Buffer.from(readKeyFile(path));
  return grpc.ServerCredentials.createSsl(read(tls.clientCa), [{ cert_chain: read(tls.cert), private_key: read(tls.key) }], true);
}

/** A running authproxy: the gRPC server, the config watcher and the pieces tests reach into. */
export interface Service {
  readonly address: string;
  readonly grpc: RunningServer;
  readonly policy: SidecarPolicy;
  readonly watcher: ConfigWatcher;
  readonly signer: CallbackSigner;
  close(): Promise<void>;
}

/** Reads a key file into the sealing unsealer; errors name the file. */
export function loadUnsealer(path: string | undefined): Unsealer | undefined {
  if (!path) return undefined;
  return new Unsealer(parsePrivateKey(readKeyFile(path), path));
}

/** Reads a key file, turning I/O errors into one line naming it. */
export function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AuthProxyError('config_io', `${path}: cannot read key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Starts sidecar-mode authproxy; throws a one-line AuthProxyError when the first config is invalid. */
export async function startService(settings: ServeSettings, log: Logger, cache: CredentialCache = new MemoryCredentialCache()): Promise<Service> {
  const sources = { configPath: settings.config, secretsDir: settings.secretsDir, unsealer: loadUnsealer(settings.sealingKey) };
  const initial = loadSources(sources);
  const policy = new SidecarPolicy(initial.policy);
  const signer = settings.signingKey
    ? await CallbackSigner.fromPem(readKeyFile(settings.signingKey), settings.signingKey)
    : await CallbackSigner.ephemeral();
  if (!settings.signingKey) log.info('no --signing-key: callback requests are signed with an ephemeral key (see `authproxy jwks`)');
  const limits = { ...DEFAULT_CALLBACK_LIMITS, timeoutMs: settings.callbackTimeoutMs ?? DEFAULT_CALLBACK_LIMITS.timeoutMs };
  const engine = new Engine(policy, new CallbackResolver(cache, signer, limits), log);
  const server = await startExtProcServer(settings.listen, { engine, log, defaultSandboxId: settings.sandboxId }, serverCredentials(settings.tls));
  const watcher = new ConfigWatcher(sources, initial.fingerprint, (p) => policy.replace(p), log, { pollMs: settings.pollMs }).start();
  log.info({ listen: server.address, rules: initial.policy.rules.length, callbacks: initial.policy.callbacks.length }, 'authproxy serving');
  return {
    address: server.address,
    grpc: server,
    policy,
    watcher,
    signer,
    close: async () => {
      watcher.stop();
      await server.close();
      await cache.close();
    },
  };
}
