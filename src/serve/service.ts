import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { AuthProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { ConfigWatcher, loadSources } from '../config/watch.js';
import type { CredentialCache } from '../callbacks/cache.js';
import type { CacheHealth, CacheChoice } from '../callbacks/cache-setup.js';
import { MemoryCredentialCache } from '../callbacks/cache.js';
import { DEFAULT_CALLBACK_LIMITS } from '../callbacks/client.js';
import { CallbackResolver } from '../callbacks/resolver.js';
import { Metrics } from '../metrics/metrics.js';
import { CallbackSigner } from '../callbacks/signer.js';
import { parsePrivateKey, Unsealer } from '../secrets/sealing.js';
import { startExtProcServer, type RunningServer } from '../extproc/server.js';
import { Engine, type PolicySource } from '../engine/engine.js';
import type { SdsOptions, SdsService } from '../sds/server.js';
import { mayIntercept } from '../policy/connect.js';
import { PolicyRegistry } from '../sandboxes/registry.js';
import type { RedisSandboxStore } from '../sandboxes/store.js';
import { EgressGuard, parseEgressAllowList } from '../egress/guard.js';
import { CachingResolver, serverResolver, systemResolver } from '../egress/resolver.js';
import { UpstreamRoute } from '../egress/upstream-proxy.js';
import { DEFAULT_TENANT_ID, type SandboxIdentity } from '../contracts/identity.js';
import { createCallbackPolicy, parseCallbackAllowList } from '../config/callback-policy.js';
import {
  cloudAwareStore,
  cloudFactories,
  CloudModules,
  deferredFileApply,
  fileNeeds,
  type CloudSetups,
} from './cloud-loader.js';

/** Settings of `authproxy serve`, read once at start from flags and AUTHPROXY_* variables. */
export interface ServeSettings {
  readonly config: string;
  readonly listen: string;
  readonly secretsDir?: string;
  readonly sealingKey?: string;
  readonly signingKey?: string;
  readonly sandboxId: string;
  /** `--tenant-id` / `--organization-id`: the identity of sidecar mode and of sandboxes that name none. */
  readonly tenantId?: string;
  readonly organizationId?: string;
  /** `--callback-issuer`: the `iss` of callback signatures (default `authproxy`). */
  readonly callbackIssuer?: string;
  readonly callbackTimeoutMs?: number;
  readonly pollMs?: number;
  /** Shared-service callback cache (src/callbacks/cache-setup.ts): Redis URL, key prefix, 32-byte cache key file. */
  readonly redis?: string;
  readonly redisPrefix?: string;
  readonly cacheKey?: string;
  /** With `redis`: read per-sandbox configs stored through the admin API (default true). */
  readonly sandboxStore?: boolean;
  /** How often stored sandbox configs are fully resynced, in case a pub/sub announcement was missed. */
  readonly resyncMs?: number;
  /** mTLS for a TCP listener: server certificate and key, and the CA that signs sidecars' client certificates. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly clientCa: string };
  /** mTLS only: a stream's sandbox id must be one its client certificate names. */
  readonly bindSandboxToCert?: boolean;
  /** The interception CA: with it, authproxy also serves SDS and mints a leaf per intercepted host. */
  readonly ca?: { readonly cert: string; readonly key: string };
  /** `--egress-allow-cidrs`: private ranges that destinations and callback URLs may resolve to. */
  readonly egressAllowCidrs?: string;
  /** `--dns-resolver host:port`: where destinations are resolved (default: the system resolver). */
  readonly dnsResolver?: string;
  /** `--allow-unbound-seals`: accept sealed values from before bindings (no sandbox, no hosts), with warnings. */
  readonly allowUnboundSeals?: boolean;
  /** `--callback-allow`: where callback URLs of stored configs may point, checked again when a replica loads one. */
  readonly callbackAllow?: string;
  /** `--aws-sts-endpoint` / `--aws-region`: authproxy's own STS client for `aws: {role_arn}` rules. */
  readonly awsStsEndpoint?: string;
  readonly awsRegion?: string;
  /** `--gcp-token-uri-allow`, parsed: token endpoints besides Google's that service-account keys may name. */
  readonly gcpTokenUriAllow?: readonly string[];
  /** `--upstream-proxy URL` / `--upstream-no-proxy LIST`: egress through a forward proxy (src/egress/upstream-proxy.ts). */
  readonly upstreamProxy?: string;
  readonly upstreamNoProxy?: string;
}

/**
 * gRPC server credentials: insecure for a Unix socket (its 0600 mode is the access control), mutual TLS
 * with a required, verified client certificate when `tls` is given.
 */
export function serverCredentials(tls: ServeSettings['tls']): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const read = (path: string) => Buffer.from(readKeyFile(path));
  return grpc.ServerCredentials.createSsl(
    read(tls.clientCa),
    [{ cert_chain: read(tls.cert), private_key: read(tls.key) }],
    true,
  );
}

/** A running authproxy: the gRPC server, the config watcher and the pieces tests reach into. */
export interface Service {
  readonly address: string;
  readonly grpc: RunningServer;
  readonly policy: PolicyRegistry;
  readonly watcher: ConfigWatcher;
  readonly signer: CallbackSigner;
  /** Prometheus metrics of this process (served on /metrics of --metrics-listen). */
  readonly metrics: Metrics;
  /** `degraded` while Redis is configured but unusable (served on /status). */
  cacheHealth(): CacheHealth;
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
    throw new AuthProxyError(
      'config_io',
      `${path}: cannot read key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * The SDS service's settings: leaves minted by the CA, only for hosts the sandbox's policy intercepts.
 * The x509 stack is imported here, only when `--ca` is given.
 */
async function sdsFor(ca: { cert: string; key: string }, source: PolicySource, defaultSandboxId: string, log: Logger) {
  const [{ addSdsService }, { CertificateAuthority }, { LeafCache }] = await Promise.all([
    import('../sds/server.js'),
    import('../sds/ca.js'),
    import('../sds/leaf-cache.js'),
  ]);
  const authority = await CertificateAuthority.load(ca.cert, ca.key);
  const options: SdsOptions = {
    leafCache: new LeafCache(authority, { log }),
    mayMint: (sandboxId, hostname) => mayIntercept(source.policyFor(sandboxId), hostname),
    defaultSandboxId,
    log,
  };
  return { options, addSdsService };
}

/** The Redis sandbox store of shared-service mode; ioredis is imported only when `--redis` is given. */
async function redisStore(url: string, prefix: string, key: Buffer | undefined): Promise<RedisSandboxStore> {
  const [{ RedisSandboxStore }, { createRedisClient }] = await Promise.all([
    import('../sandboxes/store.js'),
    import('../callbacks/redis-url.js'),
  ]);
  return new RedisSandboxStore(createRedisClient(url), prefix, key);
}

/**
 * The callback cache: in memory without `--redis` (as createCredentialCache would build it); the shared
 * one, and ioredis with it, is imported only when `--redis` is given.
 */
async function callbackCache(
  settings: ServeSettings & { callbackTimeoutMs: number },
  log: Logger,
  metrics: Metrics,
): Promise<CacheChoice> {
  if (!settings.redis)
    return {
      cache: new MemoryCredentialCache(10_000, Date.now, metrics),
      health: () => ({ status: 'ok', redis: 'disabled' }),
    };
  return (await import('../callbacks/cache-setup.js')).createCredentialCache(settings, log, metrics);
}

/** The serve defaults of a sandbox's identity, from `--tenant-id` and `--organization-id`. */
export function defaultIdentity(settings: Pick<ServeSettings, 'tenantId' | 'organizationId'>): SandboxIdentity {
  const tenantId = settings.tenantId ?? DEFAULT_TENANT_ID;
  return settings.organizationId === undefined ? { tenantId } : { tenantId, organizationId: settings.organizationId };
}

/**
 * The private-destination guard of `serve`: always on, resolving with the system resolver or
 * `--dns-resolver`, answers remembered for 5 s. Flags are checked before anything starts.
 */
export function egressGuard(
  settings: Pick<ServeSettings, 'egressAllowCidrs' | 'dnsResolver' | 'upstreamProxy' | 'upstreamNoProxy'>,
): EgressGuard {
  const resolver = settings.dnsResolver ? serverResolver(settings.dnsResolver) : systemResolver;
  const upstream = UpstreamRoute.fromFlags(settings.upstreamProxy, settings.upstreamNoProxy);
  return new EgressGuard(
    new CachingResolver(resolver),
    parseEgressAllowList(settings.egressAllowCidrs ?? ''),
    upstream,
  );
}

/** Starts sidecar-mode authproxy; throws a one-line AuthProxyError when the first config is invalid. */
export async function startService(settings: ServeSettings, log: Logger, given?: CredentialCache): Promise<Service> {
  const egress = egressGuard(settings);
  if (egress.upstream?.proxy)
    log.info(
      { upstreamProxy: egress.upstream.proxy.url, noProxy: settings.upstreamNoProxy ?? '' },
      'egress goes through the upstream proxy',
    );
  const allowUnboundSeals = settings.allowUnboundSeals ?? false;
  if (allowUnboundSeals)
    log.warn(
      '--allow-unbound-seals: sealed values that name no sandbox and no hosts are accepted; any config may use them for any host. Seal them again with `authproxy seal --sandbox --hosts` and drop the flag',
    );
  const sources = {
    configPath: settings.config,
    secretsDir: settings.secretsDir,
    unsealer: loadUnsealer(settings.sealingKey),
    defaultSandboxId: settings.sandboxId,
    allowUnboundSeals,
    gcpTokenUriAllow: settings.gcpTokenUriAllow,
  };
  const initial = loadSources(sources);
  const storeKey = sources.unsealer?.deriveKey('authproxy sandbox store v1');
  const store =
    settings.redis && settings.sandboxStore !== false
      ? await redisStore(settings.redis, settings.redisPrefix ?? 'authproxy:', storeKey)
      : undefined;
  if (store && !storeKey)
    log.warn(
      'no --sealing-key: sandbox configs in Redis are not authenticated (anyone who can write to Redis could plant one)',
    );
  const callbackPolicy = settings.callbackAllow
    ? createCallbackPolicy(parseCallbackAllowList(settings.callbackAllow))
    : undefined;
  // The AWS and Google Cloud handlers (and their SDKs) load only when a config has a rule of their type.
  let setups: CloudSetups | undefined;
  const cloud = new CloudModules(cloudFactories(() => setups!));
  const policy = new PolicyRegistry(
    initial,
    sources.unsealer,
    log,
    store && cloudAwareStore(store, cloud),
    defaultIdentity(settings),
    {
      defaultSandboxId: settings.sandboxId,
      allowUnboundSeals,
      callbackPolicy,
      gcpTokenUriAllow: settings.gcpTokenUriAllow,
      linkStore: store?.linkStore(),
      allowLoopback: (address) => egress.allows(address),
    },
  );
  let cache: CredentialCache | undefined;
  try {
    const signerOptions = { issuer: settings.callbackIssuer };
    const signer = settings.signingKey
      ? await CallbackSigner.fromPem(readKeyFile(settings.signingKey), settings.signingKey, signerOptions)
      : await CallbackSigner.ephemeral(signerOptions);
    if (!settings.signingKey)
      log.info('no --signing-key: callback requests are signed with an ephemeral key (see `authproxy jwks`)');
    const limits = {
      ...DEFAULT_CALLBACK_LIMITS,
      timeoutMs: settings.callbackTimeoutMs ?? DEFAULT_CALLBACK_LIMITS.timeoutMs,
      egress,
    };
    const metrics = new Metrics({ defaultMetrics: true });
    const choice = given
      ? { cache: given, health: (): CacheHealth => ({ status: 'ok', redis: 'disabled' }) }
      : await callbackCache({ ...settings, callbackTimeoutMs: limits.timeoutMs }, log, metrics);
    cache = choice.cache;
    setups = {
      aws: {
        cache,
        identities: policy,
        egress,
        stsEndpoint: settings.awsStsEndpoint,
        region: settings.awsRegion,
        timeoutMs: limits.timeoutMs,
        log,
        metrics,
      },
      gcp: { cache, egress, timeoutMs: limits.timeoutMs, log, metrics },
      azure: { log, metrics },
    };
    // Before anything is served: the first config's providers, then the stored configs (each awaits its own).
    await cloud.ensure(fileNeeds(initial.file));
    await policy.start(settings.resyncMs);
    const engine = new Engine(policy, new CallbackResolver(cache, signer, limits, metrics, policy), log, {
      metrics,
      egress,
      cloud,
    });
    const identity = { defaultSandboxId: settings.sandboxId, bindToClientCert: settings.bindSandboxToCert ?? false };
    const sdsSetup = settings.ca ? await sdsFor(settings.ca, policy, settings.sandboxId, log) : undefined;
    let sds: SdsService | undefined;
    const server = await startExtProcServer(
      settings.listen,
      { engine, log, identity, metrics },
      serverCredentials(settings.tls),
      (s) => {
        if (sdsSetup)
          sds = sdsSetup.addSdsService(s, { ...sdsSetup.options, bindToClientCert: identity.bindToClientCert });
      },
    );
    const reloads = deferredFileApply(
      cloud,
      (loaded) => policy.applyFile(loaded),
      (result) => metrics.configReload(result),
      log,
    );
    const watcher = new ConfigWatcher(sources, initial.fingerprint, reloads.apply, log, {
      pollMs: settings.pollMs,
      onReload: (result) => metrics.configReload(result),
    }).start();
    log.info(
      { listen: server.address, rules: initial.file.default?.rules.length ?? 0, sandboxes: policy.size },
      'authproxy serving',
    );
    const running = cache;
    return {
      address: server.address,
      grpc: server,
      policy,
      watcher,
      signer,
      metrics,
      cacheHealth: choice.health,
      close: async () => {
        watcher.stop();
        sds?.close();
        await server.close();
        await policy.close();
        await store?.close();
        await running.close();
      },
    };
  } catch (err) {
    // Nothing half-started stays behind: Redis connections and timers would keep the process alive.
    await policy.close();
    await store?.close();
    await cache?.close();
    throw err;
  }
}
