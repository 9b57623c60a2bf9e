import type { Command } from 'commander';
import { AuthProxyError } from '../errors.js';
import { sandboxConfigFrom } from '../config/file.js';
import { renderBootstrap } from '../envoy/bootstrap.js';
import { renderTransparentBootstrap } from '../envoy/transparent.js';
import { formatEnv, sandboxEnv } from '../envoy/sandbox-env.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import { envOption, UPSTREAM_PROXY_HELP } from './options.js';
import { parseUpstreamProxy } from '../egress/upstream-proxy.js';

/** Parses a port flag (0..65535); anything else is a usage error naming the flag. */
export function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new AuthProxyError('usage', `${flag}: "${value}" must be a port number`);
  return n;
}

interface EnvoyFlags {
  proxyAddress: string;
  proxyPort: string;
  adminPort?: string;
  authproxy: string;
  authproxyTlsCert?: string;
  authproxyTlsKey?: string;
  authproxyTlsCa?: string;
  caBundle: string;
  sandboxId: string;
  dnsResolver?: string;
  messageTimeoutMs: string;
  credentialHeaders?: string;
  upstreamProxy?: string;
  mode: string;
}

/** `envoy-config` and `sandbox-env`: what the sidecar and the sandbox need to be wired to authproxy. */
export function registerEnvoyCommands(program: Command): void {
  program
    .command('envoy-config')
    .description("print the sidecar's Envoy bootstrap (forward proxy: intercept credentialed hosts, tunnel the rest)")
    .addOption(
      envOption(
        '--mode <mode>',
        'forward (HTTP(S)_PROXY) or transparent (egress redirected by `authproxy sandbox-net`)',
        'AUTHPROXY_ENVOY_MODE',
      ).default('forward'),
    )
    .addOption(
      envOption('--proxy-address <ip>', 'address the sandbox reaches the proxy on', 'AUTHPROXY_PROXY_ADDRESS').default(
        '127.0.0.1',
      ),
    )
    .addOption(
      envOption(
        '--proxy-port <port>',
        'forward proxy port (HTTP(S)_PROXY); in transparent mode the port redirected traffic arrives on',
        'AUTHPROXY_PROXY_PORT',
      ).default('10000'),
    )
    .addOption(
      envOption(
        '--admin-port <port>',
        'Envoy admin on 127.0.0.1 (off by default: sandbox code could reach it)',
        'AUTHPROXY_ENVOY_ADMIN_PORT',
      ),
    )
    .addOption(
      envOption(
        '--authproxy <addr>',
        'authproxy ext_proc/SDS address: unix:/path or host:port (mTLS)',
        'AUTHPROXY_ADDRESS',
      ).default('unix:/run/authproxy/authproxy.sock'),
    )
    .addOption(
      envOption('--authproxy-tls-cert <file>', 'client certificate for mTLS to authproxy', 'AUTHPROXY_TLS_CLIENT_CERT'),
    )
    .addOption(envOption('--authproxy-tls-key <file>', 'client key for mTLS to authproxy', 'AUTHPROXY_TLS_CLIENT_KEY'))
    .addOption(
      envOption(
        '--authproxy-tls-ca <file>',
        "CA that signed authproxy's server certificate",
        'AUTHPROXY_TLS_SERVER_CA',
      ),
    )
    .addOption(
      envOption(
        '--ca-bundle <file>',
        'roots that upstream servers are verified against',
        'AUTHPROXY_UPSTREAM_CA_BUNDLE',
      ).default('/etc/ssl/certs/ca-certificates.crt'),
    )
    .addOption(
      envOption('--sandbox-id <id>', 'identity sent to authproxy as x-sandbox-id', 'AUTHPROXY_SANDBOX_ID').default(
        'default',
      ),
    )
    .addOption(
      envOption(
        '--dns-resolver <host:port>',
        'DNS server for upstream names (default: /etc/resolv.conf)',
        'AUTHPROXY_DNS_RESOLVER',
      ),
    )
    .addOption(
      envOption(
        '--message-timeout-ms <ms>',
        'ext_proc message timeout; above the worst callback wait (lock deadline + callback timeout)',
        'AUTHPROXY_MESSAGE_TIMEOUT_MS',
      ).default('12000'),
    )
    .addOption(
      envOption(
        '--credential-headers <names>',
        'comma-separated strict allow-list of headers authproxy may set',
        'AUTHPROXY_CREDENTIAL_HEADERS',
      ),
    )
    .addOption(
      envOption(
        '--upstream-proxy <url>',
        `${UPSTREAM_PROXY_HELP} (give serve the same, with its --upstream-no-proxy)`,
        'AUTHPROXY_UPSTREAM_PROXY',
      ),
    )
    .action((f: EnvoyFlags) => {
      if (f.mode !== 'forward' && f.mode !== 'transparent')
        throw new AuthProxyError('usage', `--mode: "${f.mode}" must be forward or transparent`);
      const render = f.mode === 'transparent' ? renderTransparentBootstrap : renderBootstrap;
      if (!SANDBOX_ID.test(f.sandboxId))
        throw new AuthProxyError(
          'usage',
          `--sandbox-id: "${f.sandboxId}" must be 1-128 characters of A-Z a-z 0-9 . _ : -`,
        );
      const tlsParts = [f.authproxyTlsCert, f.authproxyTlsKey, f.authproxyTlsCa];
      if (tlsParts.some(Boolean) && !tlsParts.every(Boolean))
        throw new AuthProxyError(
          'usage',
          '--authproxy-tls-cert, --authproxy-tls-key and --authproxy-tls-ca go together',
        );
      const timeout = Number(f.messageTimeoutMs);
      if (!Number.isInteger(timeout) || timeout < 1000)
        throw new AuthProxyError('usage', '--message-timeout-ms: must be a whole number of at least 1000');
      try {
        process.stdout.write(
          render({
            proxyAddress: f.proxyAddress,
            proxyPort: port(f.proxyPort, '--proxy-port'),
            adminPort: f.adminPort === undefined ? undefined : port(f.adminPort, '--admin-port'),
            authproxy: f.authproxy,
            authproxyTls: f.authproxyTlsCert
              ? { cert: f.authproxyTlsCert, key: f.authproxyTlsKey!, ca: f.authproxyTlsCa! }
              : undefined,
            caBundle: f.caBundle,
            sandboxId: f.sandboxId,
            dnsResolver: f.dnsResolver,
            messageTimeoutMs: timeout,
            credentialHeaders: f.credentialHeaders
              ?.split(',')
              .map((h) => h.trim())
              .filter(Boolean),
            upstreamProxy: f.upstreamProxy ? parseUpstreamProxy(f.upstreamProxy) : undefined,
          }),
        );
      } catch (err) {
        if (err instanceof AuthProxyError) throw err;
        throw new AuthProxyError('usage', (err as Error).message);
      }
    });

  program
    .command('sandbox-env')
    .description('print the environment a sandbox needs: proxy, NO_PROXY, CA bundle variables, env_vars placeholders')
    .addOption(envOption('--config <file>', 'proxy_config file', 'AUTHPROXY_CONFIG').makeOptionMandatory())
    .addOption(
      envOption(
        '--proxy-url <url>',
        "the sidecar's forward proxy as the sandbox sees it",
        'AUTHPROXY_PROXY_URL',
      ).default('http://127.0.0.1:10000'),
    )
    .addOption(
      envOption(
        '--ca-file <file>',
        "CA bundle path inside the sandbox (system roots + authproxy's CA)",
        'AUTHPROXY_SANDBOX_CA_FILE',
      ).default('/etc/authproxy/ca-bundle.pem'),
    )
    .addOption(
      envOption('--sandbox <id>', 'which sandbox of a `sandboxes:` config file', 'AUTHPROXY_SANDBOX_ID').default(
        'default',
      ),
    )
    .option('--format <format>', 'shell (export lines), dotenv or json', 'shell')
    .action((f: { config: string; proxyUrl: string; caFile: string; format: string; sandbox: string }) => {
      if (!['shell', 'dotenv', 'json'].includes(f.format))
        throw new AuthProxyError('usage', '--format: must be shell, dotenv or json');
      const config = sandboxConfigFrom(f.config, f.sandbox);
      process.stdout.write(
        formatEnv(sandboxEnv(config, { proxyUrl: f.proxyUrl, caFile: f.caFile }), f.format as 'shell'),
      );
    });
}
