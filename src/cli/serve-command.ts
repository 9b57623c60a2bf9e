import type { Command } from 'commander';
import { createLogger, LOG_FORMATS, type LogFormat } from '../log.js';
import { parseListenAddress } from '../sockets/listen.js';
import { loadUnsealer, startService } from '../serve/service.js';
import type { startAdminServer } from '../admin/server.js';
import { AdminTokens } from '../admin/tokens.js';
import { parseCallbackAllowList } from '../config/callback-policy.js';
import { startHttpPort } from '../serve/http-port.js';
import { metricsRoutes } from '../serve/metrics-routes.js';
import { envOption, UPSTREAM_NO_PROXY_HELP, UPSTREAM_PROXY_HELP } from './options.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import { AuthProxyError } from '../errors.js';
import { DEFAULT_TENANT_ID, identityFieldProblem } from '../contracts/identity.js';
import { DEFAULT_CALLBACK_ISSUER, normalizeIssuer } from '../callbacks/signer.js';
import { parseGcpTokenUriAllow } from '../cloud/gcp/token-uri-allow.js';
import { UpstreamRoute } from '../egress/upstream-proxy.js';

/** --log-format, checked (serve and up). */
export function logFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value))
    throw new AuthProxyError('usage', `--log-format: "${value.slice(0, 40)}" must be one of ${LOG_FORMATS.join(', ')}`);
  return value as LogFormat;
}

/** The values --log-level takes. */
export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

interface ServeFlags {
  config: string;
  listen: string;
  secretsDir?: string;
  sealingKey?: string;
  signingKey?: string;
  sandboxId: string;
  tenantId: string;
  organizationId?: string;
  callbackIssuer: string;
  metricsListen?: string;
  redis?: string;
  redisPrefix: string;
  cacheKey?: string;
  logLevel: string;
  logFormat: string;
  callbackTimeoutMs: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  insecureTcp?: boolean;
  bindSandboxToCert?: boolean;
  adminListen?: string;
  adminTokens?: string;
  callbackAllow?: string;
  caCert?: string;
  caKey?: string;
  egressAllowCidrs?: string;
  dnsResolver?: string;
  allowUnboundSeals?: boolean;
  awsStsEndpoint?: string;
  awsRegion?: string;
  gcpTokenUriAllow?: string;
  upstreamProxy?: string;
  upstreamNoProxy?: string;
}

/** --aws-sts-endpoint must be an https:// URL (it receives authproxy's own signed requests); --aws-region a region name. */
function awsChecks(flags: ServeFlags): void {
  if (flags.awsStsEndpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(flags.awsStsEndpoint);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || url.search || url.hash)
      throw new AuthProxyError(
        'usage',
        '--aws-sts-endpoint: must be an https:// URL without query, like https://sts.eu-west-1.amazonaws.com',
      );
  }
  if (flags.awsRegion !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(flags.awsRegion))
    throw new AuthProxyError(
      'usage',
      `--aws-region: "${flags.awsRegion.slice(0, 40)}" is not an AWS region like us-east-1`,
    );
}

/** The admin API's flags go together and need Redis, where configs are stored; returns the callback allow-list. */
function adminChecks(flags: ServeFlags): ReturnType<typeof parseCallbackAllowList> | undefined {
  if (Boolean(flags.adminListen) !== Boolean(flags.adminTokens))
    throw new AuthProxyError('usage', '--admin-listen and --admin-tokens go together');
  if (flags.adminListen) parseListenAddress(flags.adminListen, '--admin-listen');
  if (flags.adminListen && !flags.redis)
    throw new AuthProxyError('usage', '--admin-listen needs --redis (configs are stored in Redis)');
  return flags.callbackAllow ? parseCallbackAllowList(flags.callbackAllow) : undefined;
}

/** --tenant-id, --organization-id and --callback-issuer, checked; the issuer with trailing slashes removed. */
function identityChecks(flags: ServeFlags): { callbackIssuer: string } {
  for (const [flag, value] of [
    ['--tenant-id', flags.tenantId],
    ['--organization-id', flags.organizationId],
  ] as const) {
    const problem = value === undefined ? undefined : identityFieldProblem(value);
    if (problem) throw new AuthProxyError('usage', `${flag}: "${value}" ${problem}`);
  }
  const callbackIssuer = normalizeIssuer(flags.callbackIssuer);
  if (callbackIssuer === '' || /\s/.test(callbackIssuer))
    throw new AuthProxyError('usage', '--callback-issuer: must be a non-empty URL or name without spaces');
  return { callbackIssuer };
}

/** --bind-sandbox-to-cert needs client certificates, so it needs mTLS. */
function bindToCert(flags: ServeFlags, tls: unknown): boolean {
  if (flags.bindSandboxToCert && !tls)
    throw new AuthProxyError('usage', '--bind-sandbox-to-cert: needs mTLS (--tls-cert, --tls-key, --tls-client-ca)');
  return Boolean(flags.bindSandboxToCert);
}

/** The interception CA from flags: both files or neither. */
function caSettings(flags: ServeFlags): { cert: string; key: string } | undefined {
  if (Boolean(flags.caCert) !== Boolean(flags.caKey))
    throw new AuthProxyError('usage', '--ca-cert and --ca-key go together');
  return flags.caCert ? { cert: flags.caCert, key: flags.caKey! } : undefined;
}

/** mTLS settings from flags; a TCP listener without them needs an explicit --insecure-tcp. */
function tlsSettings(flags: ServeFlags): { cert: string; key: string; clientCa: string } | undefined {
  const parts = [flags.tlsCert, flags.tlsKey, flags.tlsClientCa];
  if (parts.some(Boolean) && !parts.every(Boolean))
    throw new AuthProxyError('usage', '--tls-cert, --tls-key and --tls-client-ca go together');
  const tls = flags.tlsCert ? { cert: flags.tlsCert, key: flags.tlsKey!, clientCa: flags.tlsClientCa! } : undefined;
  if (parseListenAddress(flags.listen, '--listen').kind === 'tcp' && !tls && !flags.insecureTcp) {
    throw new AuthProxyError(
      'usage',
      '--listen: a TCP listener needs mTLS (--tls-cert, --tls-key, --tls-client-ca), because decisions contain secrets; use unix:/path, or --insecure-tcp for local experiments',
    );
  }
  return tls;
}

/** `authproxy serve`: the ext_proc service, with hot reload, until SIGTERM/SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve Envoy ext_proc decisions for a proxy_config')
    .addOption(
      envOption(
        '--config <file>',
        'proxy_config file (YAML or JSON), watched for changes',
        'AUTHPROXY_CONFIG',
      ).makeOptionMandatory(),
    )
    .addOption(
      envOption(
        '--listen <addr>',
        'ext_proc gRPC address: host:port or unix:/path',
        'AUTHPROXY_LISTEN',
      ).makeOptionMandatory(),
    )
    .addOption(
      envOption('--secrets-dir <dir>', 'workspace secrets, one file per key, watched', 'AUTHPROXY_SECRETS_DIR'),
    )
    .addOption(envOption('--sealing-key <file>', 'private key that opens opaque values', 'AUTHPROXY_SEALING_KEY'))
    .addOption(envOption('--signing-key <file>', 'Ed25519 key that signs callback requests', 'AUTHPROXY_SIGNING_KEY'))
    .addOption(
      envOption('--sandbox-id <id>', 'sandbox id when Envoy sends no x-sandbox-id', 'AUTHPROXY_SANDBOX_ID').default(
        'default',
      ),
    )
    .addOption(
      envOption(
        '--tenant-id <id>',
        'tenant (workspace) sent in callback identities: sidecar mode, and sandboxes that name none',
        'AUTHPROXY_TENANT_ID',
      ).default(DEFAULT_TENANT_ID),
    )
    .addOption(
      envOption(
        '--organization-id <id>',
        'organization sent in callback identities of sandboxes that name none (default: omitted)',
        'AUTHPROXY_ORGANIZATION_ID',
      ),
    )
    .addOption(
      envOption(
        '--callback-issuer <url>',
        'the iss claim of callback signatures (trailing slashes removed)',
        'AUTHPROXY_CALLBACK_ISSUER',
      ).default(DEFAULT_CALLBACK_ISSUER),
    )
    .addOption(
      envOption(
        '--metrics-listen <addr>',
        'HTTP address for /healthz, /status, /metrics and /.well-known/jwks.json',
        'AUTHPROXY_METRICS_LISTEN',
      ),
    )
    .addOption(
      envOption(
        '--redis <url>',
        'share callback results across replicas: redis://, rediss://, redis+sentinel://, redis+cluster:// (REDIS_URL also read)',
        'AUTHPROXY_REDIS',
      ),
    )
    .addOption(
      envOption('--redis-prefix <prefix>', 'prefix of every Redis key and channel', 'AUTHPROXY_REDIS_PREFIX').default(
        'authproxy:',
      ),
    )
    .addOption(
      envOption(
        '--cache-key <file>',
        '32-byte key that encrypts cached credentials in Redis (default: derived from --sealing-key)',
        'AUTHPROXY_CACHE_KEY',
      ),
    )
    .addOption(
      envOption(
        '--ca-cert <file>',
        'interception CA certificate (authproxy ca init); enables SDS',
        'AUTHPROXY_CA_CERT',
      ),
    )
    .addOption(envOption('--ca-key <file>', 'interception CA private key', 'AUTHPROXY_CA_KEY'))
    .addOption(envOption('--tls-cert <file>', 'server certificate for mTLS on a TCP --listen', 'AUTHPROXY_TLS_CERT'))
    .addOption(envOption('--tls-key <file>', 'server key for mTLS on a TCP --listen', 'AUTHPROXY_TLS_KEY'))
    .addOption(
      envOption('--tls-client-ca <file>', "CA that signs the sidecars' client certificates", 'AUTHPROXY_TLS_CLIENT_CA'),
    )
    .addOption(
      envOption(
        '--bind-sandbox-to-cert',
        "mTLS: a stream's x-sandbox-id must be named by its client certificate (URI SAN .../sandbox/ID or CN)",
        'AUTHPROXY_BIND_SANDBOX_TO_CERT',
      ),
    )
    .addOption(
      envOption(
        '--insecure-tcp',
        'allow a TCP --listen without mTLS (local experiments only)',
        'AUTHPROXY_INSECURE_TCP',
      ),
    )
    .addOption(
      envOption(
        '--admin-listen <addr>',
        'admin HTTP API address (host:port or unix:/path); needs --admin-tokens and --redis',
        'AUTHPROXY_ADMIN_LISTEN',
      ),
    )
    .addOption(
      envOption(
        '--admin-tokens <file>',
        'admin API bearer tokens, one per line: TOKEN [id,prefix*,...]; re-read when it changes',
        'AUTHPROXY_ADMIN_TOKENS',
      ),
    )
    .addOption(
      envOption(
        '--callback-allow <list>',
        'hosts, *.domains, IPs or CIDRs that callback URLs stored through the admin API may use',
        'AUTHPROXY_CALLBACK_ALLOW',
      ),
    )
    .addOption(
      envOption(
        '--egress-allow-cidrs <list>',
        'private CIDRs that destinations and callbacks may resolve to (loopback and metadata only when named); never 127.0.0.0/8 in production',
        'AUTHPROXY_EGRESS_ALLOW_CIDRS',
      ),
    )
    .addOption(
      envOption(
        '--dns-resolver <addr>',
        'DNS server (host:port) for resolving destinations before they are checked (default: the system resolver)',
        'AUTHPROXY_DNS_RESOLVER',
      ),
    )
    .addOption(envOption('--upstream-proxy <url>', UPSTREAM_PROXY_HELP, 'AUTHPROXY_UPSTREAM_PROXY'))
    .addOption(envOption('--upstream-no-proxy <list>', UPSTREAM_NO_PROXY_HELP, 'AUTHPROXY_UPSTREAM_NO_PROXY'))
    .addOption(
      envOption(
        '--aws-sts-endpoint <url>',
        "STS endpoint for AWS role rules' AssumeRole (default: the --aws-region STS endpoint)",
        'AUTHPROXY_AWS_STS_ENDPOINT',
      ),
    )
    .addOption(
      envOption(
        '--aws-region <region>',
        "region of authproxy's STS client (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)",
        'AUTHPROXY_AWS_REGION',
      ),
    )
    .addOption(
      envOption(
        '--gcp-token-uri-allow <list>',
        "token endpoints besides Google's that service-account keys may name: exact https URLs or https://host prefixes, comma-separated (tests, private endpoints)",
        'AUTHPROXY_GCP_TOKEN_URI_ALLOW',
      ),
    )
    .addOption(
      envOption(
        '--allow-unbound-seals',
        'accept sealed values from before sandbox/host bindings (warns; seal them again instead)',
        'AUTHPROXY_ALLOW_UNBOUND_SEALS',
      ),
    )
    .addOption(
      envOption('--log-level <level>', 'fatal, error, warn, info, debug or silent', 'AUTHPROXY_LOG_LEVEL').default(
        'info',
      ),
    )
    .addOption(
      envOption(
        '--log-format <format>',
        'json (pino JSON lines, for log pipelines) or pretty (for a terminal)',
        'AUTHPROXY_LOG_FORMAT',
      ).default('json'),
    )
    .addOption(
      envOption('--callback-timeout-ms <ms>', 'callback request timeout', 'AUTHPROXY_CALLBACK_TIMEOUT_MS').default(
        '5000',
      ),
    )
    .action(async (flags: ServeFlags) => {
      const tls = tlsSettings(flags);
      if (flags.metricsListen) parseListenAddress(flags.metricsListen, '--metrics-listen');
      const timeout = Number(flags.callbackTimeoutMs);
      if (!Number.isInteger(timeout) || timeout < 1 || timeout > 60_000) {
        throw new AuthProxyError(
          'usage',
          `--callback-timeout-ms: "${flags.callbackTimeoutMs}" must be a whole number of milliseconds, 1..60000`,
        );
      }
      if (!SANDBOX_ID.test(flags.sandboxId))
        throw new AuthProxyError(
          'usage',
          `--sandbox-id: "${flags.sandboxId}" must be 1-128 characters of A-Z a-z 0-9 . _ : -`,
        );
      const { callbackIssuer } = identityChecks(flags);
      awsChecks(flags);
      UpstreamRoute.fromFlags(flags.upstreamProxy, flags.upstreamNoProxy);
      const gcpTokenUriAllow = parseGcpTokenUriAllow(flags.gcpTokenUriAllow ?? '');
      if (!LEVELS.includes(flags.logLevel))
        throw new AuthProxyError('usage', `--log-level: must be one of ${LEVELS.join(', ')}`);
      const log = createLogger(flags.logLevel as 'info', undefined, logFormat(flags.logFormat));
      flags.redis ??= process.env.REDIS_URL || undefined;
      const callbackAllow = adminChecks(flags);
      // Everything that can fail on a flag is read before anything starts listening.
      const tokens = flags.adminListen ? await AdminTokens.fromFile(flags.adminTokens!, log) : undefined;
      const service = await startService(
        {
          ...flags,
          callbackIssuer,
          gcpTokenUriAllow,
          callbackTimeoutMs: timeout,
          tls,
          ca: caSettings(flags),
          bindSandboxToCert: bindToCert(flags, tls),
        },
        log,
      );
      let admin: Awaited<ReturnType<typeof startAdminServer>> | undefined;
      let side: Awaited<ReturnType<typeof startHttpPort>> | undefined;
      let closing = false;
      try {
        // fastify and the admin routes load only when --admin-listen asks for them.
        admin = tokens
          ? await (await import('../admin/server.js')).startAdminServer({
              listen: flags.adminListen!,
              tokens,
              store: service.policy.store!,
              registry: service.policy,
              defaultIdentity: service.policy.defaultIdentity,
              sealPublicKey: loadUnsealer(flags.sealingKey)?.publicKey(),
              log,
              callbackPolicy: callbackAllow ? { allow: callbackAllow } : undefined,
            })
          : undefined;
        side = flags.metricsListen
          ? await startHttpPort(flags.metricsListen, {
              signer: service.signer,
              ready: () => !closing,
              extraRoutes: metricsRoutes(service.metrics, service.cacheHealth),
            })
          : undefined;
      } catch (err) {
        // No half-started service: a port that could not open stops everything that did.
        await admin?.close();
        await service.close();
        throw err;
      }
      if (admin) log.info({ listen: admin.address }, 'admin API serving');
      if (side)
        log.info({ listen: side.address }, 'http port serving /healthz, /status, /metrics and /.well-known/jwks.json');
      const stop = async (signal: string) => {
        if (closing) return;
        closing = true;
        log.info({ signal }, 'shutting down');
        side?.server.close();
        await admin?.close();
        await service.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGHUP', () => service.watcher.reload());
    });
}
