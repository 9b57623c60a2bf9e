import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { onPath } from './envoy-binary.js';

/** How a supervised process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** "code 1" or "signal SIGKILL", for one-line messages. */
export function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** An Envoy started by `authproxy up`. */
export interface EnvoyProcess {
  readonly pid: number;
  /** Resolves when Envoy has exited, for whatever reason. */
  readonly exited: Promise<Exit>;
  /** The last line Envoy logged at error or critical level (why it could not start), if any. */
  lastError(): string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<Exit>;
  /** Sends SIGTERM at once, without waiting (for process exit handlers). */
  kill(): void;
}

/** Envoy's own error lines look like `[2026-...][12][critical][main] [source/...] message`. */
const ERROR_LINE = /\]\[(critical|error)\]\[/;

/** Past this size the access log is moved to `<file>.1` when `up` starts Envoy (one old file is kept). */
const ACCESS_LOG_ROTATE_BYTES = 64 * 1024 * 1024;

/** Opens the access log for appending (0600), first moving a large one aside; returns the descriptor. */
function openAccessLog(path: string): number {
  try {
    if (statSync(path).size > ACCESS_LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // none yet
  }
  return openSync(path, 'a', 0o600);
}

/**
 * Starts Envoy on `configPath` in a process group of its own, so a terminal's Ctrl-C reaches only
 * `authproxy up`, which then stops Envoy itself (and can tell an expected exit from a crash). Where
 * util-linux's `setpriv` is on PATH, Envoy is started through `setpriv --pdeathsig SIGTERM` (it execs
 * Envoy, same pid), so the kernel stops Envoy even when `up` is killed with SIGKILL. Envoy's stdout (its
 * access log, a line per request) is appended to `accessLog` by Envoy itself: nothing per request passes
 * through this process. Its stderr (its own log at warn level: start-up errors, rare warnings) is copied to
 * `out`, and the last error line kept for the exit message. Its pid is written to `pidFile` for
 * `removeLeftoverEnvoy` and removed again when it exits.
 */
export function startEnvoy(
  bin: string,
  configPath: string,
  pidFile: string,
  accessLog: string,
  out: NodeJS.WritableStream = process.stderr,
): EnvoyProcess {
  const args = ['-c', configPath, '--disable-hot-restart', '--log-level', 'warn'];
  const setpriv = onPath('setpriv');
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGTERM', '--', bin, ...args]] : [bin, args];
  const logFd = openAccessLog(accessLog);
  let child: ChildProcess;
  try {
    child = spawn(file, argv, { stdio: ['ignore', logFd, 'pipe'], detached: true });
  } finally {
    closeSync(logFd);
  }
  let lastError: string | undefined;
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    out.write(chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines)
      if (ERROR_LINE.test(line)) lastError = line.replace(/^(\[[^\]]*\])+\s*(\[[^\]]*\]\s*)?/, '').trim();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('error', (err) => {
      lastError = err.message;
      resolve({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      rmSync(pidFile, { force: true });
      resolve({ code, signal });
    });
  });
  if (child.pid !== undefined) writeFileSync(pidFile, `${child.pid}\n`, { mode: 0o600 });
  const kill = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  return {
    pid: child.pid ?? -1,
    exited,
    lastError: () => lastError,
    kill: () => kill('SIGTERM'),
    stop: async (graceMs = 10_000) => {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

/**
 * Stops an Envoy that an earlier `authproxy up` on the same state directory left running (that `up` was
 * killed with SIGKILL, so it could not stop it). Only a process whose command line names this state
 * directory's bootstrap is signalled, so a recycled pid never hits an unrelated process. Linux only
 * (/proc); elsewhere the pid file is ignored and a leftover Envoy shows up as a port already in use.
 */
export async function removeLeftoverEnvoy(pidFile: string, configPath: string): Promise<boolean> {
  let pid: number;
  let cmdline: string;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    rmSync(pidFile, { force: true });
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !cmdline.split('\0').includes(configPath)) return false;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(pidFile, { force: true });
      return true;
    }
  }
  process.kill(pid, 'SIGKILL');
  rmSync(pidFile, { force: true });
  return true;
}

/** Whether something accepts connections at `target` (a Unix socket path, or a TCP port on 127.0.0.1). */
export function accepts(target: string | { host: string; port: number }, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = typeof target === 'string' ? connect(target) : connect(target.port, target.host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Resolves true once Envoy's forward-proxy listener accepts connections, false if Envoy exits first;
 * rejects after `timeoutMs`.
 */
export async function waitUntilListening(
  envoy: EnvoyProcess,
  address: { host: string; port: number },
  timeoutMs = 30_000,
): Promise<boolean> {
  let gone = false;
  void envoy.exited.then(() => (gone = true));
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (gone) return false;
    if (await accepts(address)) return !gone;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Envoy did not open ${address.host}:${address.port} within ${timeoutMs / 1000} s`);
}
