/** Runs the built `authproxy` command (bin/authproxy.js over dist/) as a user would. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/authproxy.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long-running command; output is collected for later assertions. */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/** Where `authproxy seal` binds a value: a header rule's hosts, a provider, or a callback URL; any sandbox unless named. */
export interface SealTo {
  readonly sandbox?: string;
  readonly hosts?: readonly string[];
  readonly provider?: 'aws' | 'gcp' | 'azure';
  readonly callbackUrl?: string;
}

/** Runs `authproxy seal` with the public key and binding flags for `to`; returns the sealed value. */
export function sealWithCli(publicKey: string, plaintext: string, to: SealTo): string {
  const flags = ['--sandbox', to.sandbox ?? '*'];
  if (to.hosts) flags.push('--hosts', to.hosts.join(','));
  if (to.provider) flags.push('--provider', to.provider);
  if (to.callbackUrl) flags.push('--callback-url', to.callbackUrl);
  const r = runCli(['seal', '--public-key', publicKey, ...flags], { input: plaintext });
  if (r.status !== 0) throw new Error(`authproxy seal failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}
