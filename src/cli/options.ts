import { Option } from 'commander';
import { AuthProxyError, errorLine } from '../errors.js';

/**
 * What every command module shares: options with their environment twins and the one-line error
 * report. It lives apart from main.ts so that the commands don't import the program that registers
 * them (no import cycle between cli/main.ts and the commands).
 */

/** Option with its AUTHPROXY_* environment twin. */
export function envOption(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** Prints an error as one line per problem and sets a non-zero exit code (2 for usage errors). */
export function reportError(err: unknown): void {
  const problems = err instanceof AuthProxyError ? err.problems : [errorLine(err)];
  for (const p of problems) process.stderr.write(`authproxy: ${p}\n`);
  process.exitCode = err instanceof AuthProxyError && err.code === 'usage' ? 2 : 1;
}

/** Help of `--upstream-proxy` (serve, up, envoy-config). */
export const UPSTREAM_PROXY_HELP =
  'forward proxy all egress goes through: http://host:port or https://host:port, no credentials';
/** Help of `--upstream-no-proxy` (serve, up). */
export const UPSTREAM_NO_PROXY_HELP =
  'destinations dialled directly, NO_PROXY style: host (and subdomains), .domain, host:port, IP, CIDR or *, comma-separated';
