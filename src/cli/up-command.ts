import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { AuthProxyError } from '../errors.js';
import { SANDBOX_ID } from '../contracts/envoy.js';
import { parseListenAddress } from '../sockets/listen.js';
import { DEFAULT_STATE_DIR } from '../up/state.js';
import { runUp, type UpOptions } from '../up/run.js';
import { upEnv } from '../up/print-env.js';
import { port } from './envoy-commands.js';
import { LEVELS, logFormat } from './serve-command.js';
import { envOption, reportError, UPSTREAM_NO_PROXY_HELP, UPSTREAM_PROXY_HELP } from './options.js';
import { UpstreamRoute } from '../egress/upstream-proxy.js';

interface UpFlags {
  config?: string;
  secretsDir?: string;
  stateDir: string;
  proxyPort: string;
  sandboxId: string;
  envoy?: string;
  printEnv?: boolean;
  writeEnv?: string;
  logLevel: string;
  logFormat: string;
  dnsResolver?: string;
  upstreamCa?: string;
  egressAllowCidrs?: string;
  upstreamProxy?: string;
  upstreamNoProxy?: string;
}

/** Checks the flags that can be checked without touching anything. */
function upOptions(f: UpFlags & { config: string }): UpOptions {
  const proxyPort = port(f.proxyPort, '--proxy-port');
  if (proxyPort === 0)
    throw new AuthProxyError('usage', '--proxy-port: must be 1..65535 (the sandbox needs to know it)');
  if (!SANDBOX_ID.test(f.sandboxId))
    throw new AuthProxyError('usage', `--sandbox-id: "${f.sandboxId}" must be 1-128 characters of A-Z a-z 0-9 . _ : -`);
  if (!LEVELS.includes(f.logLevel))
    throw new AuthProxyError('usage', `--log-level: must be one of ${LEVELS.join(', ')}`);
  if (f.dnsResolver && parseListenAddress(f.dnsResolver, '--dns-resolver').kind !== 'tcp')
    throw new AuthProxyError('usage', '--dns-resolver: must be host:port');
  UpstreamRoute.fromFlags(f.upstreamProxy, f.upstreamNoProxy);
  return {
    ...f,
    envFile: f.writeEnv,
    proxyPort,
    logLevel: f.logLevel as LevelWithSilent,
    logFormat: logFormat(f.logFormat),
  };
}

/**
 * `authproxy up`: the whole sidecar for local use and single-VM deployments — keys and CA in a state
 * directory, authproxy, and Envoy, supervised together (src/up/run.ts). `--print-env` only prints the
 * sandbox's environment, for `eval "$(authproxy up --print-env)"`: the running `up`'s settings come from
 * its state directory (src/up/print-env.ts).
 */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'run authproxy and an Envoy sidecar together (keys and CA created in --state-dir on first run); Ctrl-C stops both',
    )
    .addOption(
      envOption(
        '--config <file>',
        "proxy_config file (YAML or JSON), watched for changes (--print-env: default the running up's)",
        'AUTHPROXY_CONFIG',
      ),
    )
    .addOption(
      envOption('--secrets-dir <dir>', 'workspace secrets, one file per key, watched', 'AUTHPROXY_SECRETS_DIR'),
    )
    .addOption(
      envOption(
        '--state-dir <dir>',
        'keys, CA, CA bundle, socket and Envoy bootstrap (0700; created on first run, reused after)',
        'AUTHPROXY_STATE_DIR',
      ).default(DEFAULT_STATE_DIR),
    )
    .addOption(
      envOption(
        '--proxy-port <port>',
        "Envoy's forward proxy on 127.0.0.1 (the sandbox's HTTP(S)_PROXY)",
        'AUTHPROXY_PROXY_PORT',
      ).default('10000'),
    )
    .addOption(
      envOption(
        '--sandbox-id <id>',
        'which sandbox of a `sandboxes:` config file (default: the top-level config)',
        'AUTHPROXY_SANDBOX_ID',
      ).default('default'),
    )
    .option('--envoy <path>', 'Envoy binary (default: ENVOY_BIN, then .venv/bin/envoy of this package, then PATH)')
    .option(
      '--print-env',
      "print the sandbox's environment as export lines for the up running on --state-dir (its port and config) and exit; starts nothing",
    )
    // Not --env-file: Node itself claims every argument starting with --env-file, even after the script
    // name, and exits when that file does not exist yet (nodejs/node#54232).
    .addOption(
      envOption(
        '--write-env <file>',
        "also write the sandbox's environment (export lines) to FILE once ready",
        'AUTHPROXY_WRITE_ENV',
      ),
    )
    .addOption(
      envOption(
        '--log-level <level>',
        'fatal, error, warn, info, debug or silent (logs go to stderr)',
        'AUTHPROXY_LOG_LEVEL',
      ).default('info'),
    )
    .addOption(
      envOption(
        '--log-format <format>',
        'json (pino JSON lines) or pretty (for a terminal)',
        'AUTHPROXY_LOG_FORMAT',
      ).default('json'),
    )
    .addOption(
      envOption(
        '--dns-resolver <addr>',
        'DNS server (host:port) for authproxy and Envoy (default: the system resolver)',
        'AUTHPROXY_DNS_RESOLVER',
      ),
    )
    .addOption(
      envOption(
        '--upstream-ca <file>',
        'roots Envoy verifies upstream servers against (default: the system roots)',
        'AUTHPROXY_UPSTREAM_CA_BUNDLE',
      ),
    )
    .addOption(
      envOption(
        '--egress-allow-cidrs <list>',
        'private CIDRs destinations may resolve to (as serve); never 127.0.0.0/8 in production',
        'AUTHPROXY_EGRESS_ALLOW_CIDRS',
      ),
    )
    .addOption(envOption('--upstream-proxy <url>', UPSTREAM_PROXY_HELP, 'AUTHPROXY_UPSTREAM_PROXY'))
    .addOption(envOption('--upstream-no-proxy <list>', UPSTREAM_NO_PROXY_HELP, 'AUTHPROXY_UPSTREAM_NO_PROXY'))
    .action(async (f: UpFlags, cmd: Command) => {
      const given = (name: string) => cmd.getOptionValueSource(name) !== 'default';
      if (f.printEnv) {
        const o = upOptions({ ...f, config: f.config ?? '' });
        const env = await upEnv({
          ...o,
          config: f.config,
          given: { proxyPort: given('proxyPort'), sandboxId: given('sandboxId') },
        });
        return void process.stdout.write(env);
      }
      if (!f.config) throw new AuthProxyError('usage', '--config: required (the proxy_config file up runs)');
      const opts = upOptions({ ...f, config: f.config });
      let code: number;
      try {
        code = await runUp(opts);
      } catch (err) {
        reportError(err);
        code = typeof process.exitCode === 'number' ? process.exitCode : 1;
      }
      // Nothing else may keep the process alive (or let it exit 0) once both are stopped.
      process.exit(code);
    });
}
