import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { AuthProxyError, errorLine } from '../errors.js';
import { createLogger, type LogFormat } from '../log.js';
import { startService, type Service } from '../serve/service.js';
import { renderBootstrap } from '../envoy/bootstrap.js';
import { parseUpstreamProxy } from '../egress/upstream-proxy.js';
import { SYSTEM_ROOTS } from '../sds/ca-files.js';
import { findEnvoy } from './envoy-binary.js';
import { ensureState, statePaths, writeAtomically, type UpState } from './state.js';
import { envLines, PROXY_HOST, say } from './print-env.js';
import { removeInstance, writeInstance } from './instance.js';
import {
  accepts,
  describeExit,
  removeLeftoverEnvoy,
  startEnvoy,
  waitUntilListening,
  type EnvoyProcess,
} from './envoy-process.js';

/** The settings of `authproxy up`, from its flags. */
export interface UpOptions {
  readonly config: string;
  readonly secretsDir?: string;
  readonly stateDir: string;
  readonly proxyPort: number;
  readonly sandboxId: string;
  readonly envoy?: string;
  readonly envFile?: string;
  readonly logLevel: LevelWithSilent;
  /** `--log-format`: json (default) or pretty. */
  readonly logFormat?: LogFormat;
  /** Pass-throughs: a DNS server for both authproxy and Envoy, Envoy's upstream roots, authproxy's egress allowance. */
  readonly dnsResolver?: string;
  readonly upstreamCa?: string;
  readonly egressAllowCidrs?: string;
  /** `--upstream-proxy` / `--upstream-no-proxy`, as serve and envoy-config take them (checked by the command). */
  readonly upstreamProxy?: string;
  readonly upstreamNoProxy?: string;
}

/** ext_proc message timeout, as `envoy-config`'s default: above the worst callback wait. */
const MESSAGE_TIMEOUT_MS = 12_000;

/** Resolves with the first SIGINT or SIGTERM; SIGHUP reloads the config, a second SIGINT/SIGTERM gives up waiting. */
function signals(onHup: () => void, onSecond: () => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const handler = (signal: NodeJS.Signals) => {
      if (seen) return onSecond();
      seen = true;
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    process.on('SIGHUP', onHup);
  });
}

/** Refuses to start beside another `up` on the same state directory, or on a proxy port in use. */
async function preflight(opts: UpOptions, state: UpState): Promise<void> {
  if (await accepts(state.socket))
    throw new AuthProxyError('usage', `${state.socket}: another authproxy up is running on this state directory`);
  if (await removeLeftoverEnvoy(state.envoyPid, state.envoyConfig))
    say('stopped an Envoy left running by an earlier authproxy up');
  if (await accepts({ host: PROXY_HOST, port: opts.proxyPort }))
    throw new AuthProxyError('usage', `--proxy-port: ${PROXY_HOST}:${opts.proxyPort} is already in use`);
}

/**
 * `authproxy up`: authproxy (in this process, on a 0600 Unix socket in the state directory) and an Envoy
 * forward-proxy sidecar (a child), supervised together. Prints the sandbox's environment once Envoy
 * listens. Envoy dying stops authproxy and resolves 1; SIGINT/SIGTERM stops Envoy, then authproxy, and
 * resolves 0. authproxy dying (this process failing) takes Envoy with it through the exit handler.
 * Errors before anything runs are thrown as one-line AuthProxyErrors.
 */
export async function runUp(opts: UpOptions): Promise<number> {
  const bin = findEnvoy({ flag: opts.envoy, envBin: process.env.ENVOY_BIN || undefined });
  await preflight(opts, statePaths(opts.stateDir));
  const state = await ensureState(opts.stateDir);
  if (state.created.length > 0) say(`created ${state.created.join(', ')}`);
  const config = resolve(opts.config);
  const env = envLines({ ...opts, config }, state.caBundle);
  const log = createLogger(opts.logLevel, process.stderr, opts.logFormat);
  let service: Service | undefined;
  let envoy: EnvoyProcess | undefined;
  const signal = signals(
    () => service?.watcher.reload(),
    () => {
      say('second signal: killing Envoy');
      envoy?.kill();
      process.exit(1);
    },
  );
  // Whatever ends this process (an authproxy failure included), Envoy goes with it.
  process.on('exit', () => envoy?.kill());
  process.on('uncaughtException', (err) => {
    say(`authproxy failed (${errorLine(err)}); stopping Envoy`);
    envoy?.kill();
    process.exit(1);
  });
  service = await startService(
    {
      config: opts.config,
      listen: `unix:${state.socket}`,
      secretsDir: opts.secretsDir,
      sealingKey: state.sealingKey,
      signingKey: state.signingKey,
      sandboxId: opts.sandboxId,
      ca: { cert: state.caCert, key: state.caKey },
      egressAllowCidrs: opts.egressAllowCidrs,
      dnsResolver: opts.dnsResolver,
      upstreamProxy: opts.upstreamProxy,
      upstreamNoProxy: opts.upstreamNoProxy,
    },
    log,
  );
  try {
    writeFileSync(
      state.envoyConfig,
      renderBootstrap({
        proxyAddress: PROXY_HOST,
        proxyPort: opts.proxyPort,
        authproxy: `unix:${state.socket}`,
        caBundle: opts.upstreamCa ?? SYSTEM_ROOTS,
        sandboxId: opts.sandboxId,
        dnsResolver: opts.dnsResolver,
        messageTimeoutMs: MESSAGE_TIMEOUT_MS,
        upstreamProxy: opts.upstreamProxy ? parseUpstreamProxy(opts.upstreamProxy) : undefined,
      }),
      { mode: 0o600 },
    );
    envoy = startEnvoy(bin, state.envoyConfig, state.envoyPid, state.accessLog);
    const started = await Promise.race([
      waitUntilListening(envoy, { host: PROXY_HOST, port: opts.proxyPort }),
      signal.then(() => 'signal' as const),
    ]);
    if (started === false) return await envoyDied(envoy, service, 'could not start');
    if (started === true) {
      writeInstance(state, {
        pid: process.pid,
        proxyPort: opts.proxyPort,
        config,
        sandboxId: opts.sandboxId,
        accessLog: state.accessLog,
      });
      process.stdout.write(env);
      if (opts.envFile) writeAtomically(opts.envFile, env, 0o644);
      say(
        `ready: Envoy (pid ${envoy.pid}) on http://${PROXY_HOST}:${opts.proxyPort}, authproxy (pid ${process.pid}) on unix:${state.socket}; ` +
          `the sandbox's environment is above (stdout)${opts.envFile ? ` and in ${opts.envFile}` : ''}; Envoy's access log is ${state.accessLog}; Ctrl-C stops both`,
      );
    }
    const outcome = await Promise.race([envoy.exited.then(() => 'envoy' as const), signal]);
    if (outcome === 'envoy') return await envoyDied(envoy, service, 'exited unexpectedly');
    say(`${outcome}: stopping Envoy and authproxy`);
    await envoy.stop();
    await service.close();
    say('stopped');
    return 0;
  } catch (err) {
    await envoy?.stop();
    await service.close();
    throw err;
  } finally {
    removeInstance(state);
  }
}

/** Envoy is gone: say why in one line, stop authproxy, exit non-zero. */
async function envoyDied(envoy: EnvoyProcess, service: Service, what: string): Promise<number> {
  const exit = await envoy.exited;
  const reason = envoy.lastError();
  say(`Envoy ${what} (${describeExit(exit)}${reason ? `: ${reason.slice(0, 300)}` : ''}); stopping authproxy`);
  await service.close();
  return 1;
}
