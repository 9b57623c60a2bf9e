import { resolve } from 'node:path';
import { AuthProxyError } from '../errors.js';
import { formatEnv, sandboxEnv } from '../envoy/sandbox-env.js';
import { sandboxConfigFrom } from '../config/file.js';
import { runningInstance } from './instance.js';
import { ensureState, statePaths } from './state.js';

/** The forward proxy listens on loopback only: the sandbox runs on the same machine. */
export const PROXY_HOST = '127.0.0.1';

export const say = (line: string) => process.stderr.write(`authproxy up: ${line}\n`);

/** What decides the sandbox's environment: the config (and which sandbox of it) and the proxy port. */
export interface EnvSettings {
  readonly config: string;
  readonly sandboxId: string;
  readonly proxyPort: number;
}

/** The sandbox's environment as export lines: proxy variables, CA variables at `caBundle`, env_vars placeholders. */
export function envLines(s: EnvSettings, caBundle: string): string {
  const config = sandboxConfigFrom(s.config, s.sandboxId, '--sandbox-id');
  return formatEnv(sandboxEnv(config, { proxyUrl: `http://${PROXY_HOST}:${s.proxyPort}`, caFile: caBundle }), 'shell');
}

/** `up --print-env`'s flags, and which of them were given (flag or environment variable) rather than defaulted. */
export interface PrintEnvOptions {
  readonly config?: string;
  readonly stateDir: string;
  readonly proxyPort: number;
  readonly sandboxId: string;
  readonly given: { readonly proxyPort: boolean; readonly sandboxId: boolean };
}

/**
 * `authproxy up --print-env`: the export lines for the `up` running on `--state-dir`, whose proxy port,
 * config and sandbox id it reads from the state directory (`up.json`), so none of them needs repeating;
 * a flag given explicitly still wins (with a note when it disagrees with the running `up`). With no `up`
 * running, the flags and their defaults decide (the state directory is created if needed), and one line
 * on stderr says so; then `--config` is required.
 */
export async function upEnv(o: PrintEnvOptions): Promise<string> {
  const paths = statePaths(o.stateDir);
  const running = await runningInstance(paths);
  if (running) {
    const s = {
      config: o.config ?? running.config,
      sandboxId: o.given.sandboxId ? o.sandboxId : running.sandboxId,
      proxyPort: o.given.proxyPort ? o.proxyPort : running.proxyPort,
    };
    if (s.proxyPort !== running.proxyPort)
      say(
        `note: the authproxy up running on ${paths.dir} (pid ${running.pid}) listens on --proxy-port ${running.proxyPort}, not ${s.proxyPort} as given`,
      );
    if (s.config !== running.config && resolve(s.config) !== running.config)
      say(
        `note: the authproxy up running on ${paths.dir} (pid ${running.pid}) runs --config ${running.config}, not ${s.config} as given`,
      );
    return envLines(s, paths.caBundle);
  }
  if (!o.config)
    throw new AuthProxyError(
      'usage',
      `--config: required, since no authproxy up is running on ${paths.dir} to read it from (pass the --state-dir it runs on)`,
    );
  const state = await ensureState(o.stateDir);
  say(
    `no authproxy up is running on ${state.dir}: printed the environment for ${o.given.proxyPort ? '' : 'the default '}--proxy-port ${o.proxyPort}`,
  );
  return envLines({ config: o.config, sandboxId: o.sandboxId, proxyPort: o.proxyPort }, state.caBundle);
}
