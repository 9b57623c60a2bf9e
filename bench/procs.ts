/**
 * The processes of the external-load benchmarks: the Go load generator and null Go server (built from
 * bench/loadgen and bench/baselines/null-go into the git-ignored bench/.bin), the null grpc-js server,
 * and `authproxy serve`, each a child process whose pid the load generator reads CPU time from. With
 * BENCH_LOG_DIR set, each server's output (e.g. its --trace-gc lines) is saved there when it stops.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(BENCH, '..');
/** Where the Go binaries are built (git-ignored). */
export const BIN_DIR = join(BENCH, '.bin');
export const LOADGEN = join(BIN_DIR, 'loadgen');
const NULL_GO = join(BIN_DIR, 'null-go');

/** Builds the Go binaries (cached by Go); returns why the external benchmarks cannot run, or undefined. */
export function buildGo(): string | undefined {
  if (spawnSync('go', ['version']).status !== 0) return 'no Go toolchain on PATH (Go 1.26+ builds bench/loadgen)';
  for (const [dir, out] of [
    ['loadgen', LOADGEN],
    ['baselines/null-go', NULL_GO],
  ] as const) {
    const r = spawnSync('go', ['build', '-o', out, '.'], { cwd: join(BENCH, dir), encoding: 'utf8' });
    if (r.status !== 0) return `go build in bench/${dir} failed: ${r.stderr.slice(-500)}`;
  }
  return undefined;
}

/** A line to print when dist/ (what `bin/authproxy.js` runs) is older than some file under src/. */
export function staleBuildNote(): string {
  const built = join(REPO, 'dist/cli/main.js');
  if (!existsSync(built)) return '\n(dist/ missing: run `npm run build` first)';
  const since = statSync(built).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory()
        ? newer(join(dir, e.name))
        : e.name.endsWith('.ts') && statSync(join(dir, e.name)).mtimeMs > since,
    );
  return newer(join(REPO, 'src'))
    ? '\n(note: src/ is newer than dist/; authproxy ran from dist/: run `npm run build` to measure the current code)'
    : '';
}

/** A running ext_proc server under test. */
export interface Server {
  readonly name: string;
  /** `unix:/path`. */
  readonly address: string;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

function startServer(name: string, socket: string, cmd: string, args: string[]): Promise<Server> {
  const child: ChildProcess = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const server: Server = {
    name,
    address: `unix:${socket}`,
    pid: child.pid!,
    output: () => out,
    // SIGTERM first, so that a server run with --cpu-prof writes its profile on the way out.
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      if (process.env.BENCH_LOG_DIR)
        writeFileSync(join(process.env.BENCH_LOG_DIR, `${name.replace(/\W+/g, '-')}-${child.pid}.log`), out);
    },
  };
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (child.exitCode !== null) {
        clearInterval(poll);
        reject(new Error(`${name} exited: ${out.slice(-1500)}`));
      } else if (existsSync(socket) && (out.includes('listening') || name === 'authproxy')) {
        clearInterval(poll);
        resolve(server);
      } else if (Date.now() - started > 20_000) {
        clearInterval(poll);
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start: ${out.slice(-1500)}`));
      }
    }, 20);
  });
}

/**
 * Extra Node.js flags for every authproxy and null grpc-js server the benchmarks start (BENCH_NODE_ARGS,
 * split on spaces), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--trace-gc`: how profiles are taken.
 */
export const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * The Node.js flags the Docker image runs authproxy with (the flags between `node` and the script in the
 * Dockerfile's ENTRYPOINT, read from there so the two can't drift): benchmarks run authproxy as deployed.
 */
export const DEPLOYED_NODE_ARGS: readonly string[] = (() => {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  const argv = m ? (JSON.parse(m[1]!) as string[]) : [];
  const script = argv.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  return argv.slice(1, script < 0 ? argv.length : script);
})();

/** authproxy's Node.js flags in a benchmark: the deployed ones, then BENCH_NODE_ARGS. */
export const AUTHPROXY_NODE_ARGS = [...DEPLOYED_NODE_ARGS, ...NODE_ARGS];

/**
 * Starts the command line of process `pid` again with `nodeArgs` after the executable, once `stop` (which
 * must end that process) has run: how the Envoy benchmark profiles the authproxy its rig started.
 */
export async function relaunch(
  pid: number,
  socket: string,
  nodeArgs: string[],
  stop: () => Promise<void>,
): Promise<Server> {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
  await stop();
  return startServer('authproxy', socket, argv[0]!, [...nodeArgs, ...argv.slice(1)]);
}

/** The null Go ext_proc server on `socket`. */
export const startNullGo = (socket: string) => startServer('null Go', socket, NULL_GO, ['-listen', `unix:${socket}`]);

/**
 * A Node.js null server from bench/baselines (`script`, then `extra` arguments) on `socket`, in the same
 * Node.js as the benchmark (tsx as a loader, so `pid` is the server); ready once it prints "listening".
 */
export const startNodeBaseline = (
  name: string,
  socket: string,
  script: string,
  extra: string[] = [],
  nodeArgs: string[] = NODE_ARGS,
) =>
  startServer(name, socket, process.execPath, [
    ...nodeArgs,
    '--import',
    'tsx',
    join(BENCH, 'baselines', script),
    `unix:${socket}`,
    ...extra,
  ]);

/** The null grpc-js ext_proc server (authproxy's server options) on `socket`. */
export const startNullGrpcJs = (socket: string, nodeArgs: string[] = NODE_ARGS) =>
  startNodeBaseline('null grpc-js', socket, 'null-grpcjs.ts', [], nodeArgs);

/** `authproxy serve` (bin/authproxy.js, over dist/) on `socket` with `config`, log level warn, sandbox id `bench`. */
export const startAuthproxy = (config: string, socket: string, nodeArgs: string[] = AUTHPROXY_NODE_ARGS) =>
  startServer('authproxy', socket, process.execPath, [
    ...nodeArgs,
    join(REPO, 'bin/authproxy.js'),
    'serve',
    '--config',
    config,
    '--listen',
    `unix:${socket}`,
    '--log-level',
    'warn',
    '--sandbox-id',
    'bench',
  ]);

/** What the load generator prints (see bench/loadgen/main.go). */
export interface LoadResult {
  readonly count: number;
  readonly errors: number;
  readonly first_error?: string;
  readonly per_s: number;
  readonly p50_us: number;
  readonly p90_us: number;
  readonly p99_us: number;
  readonly p999_us: number;
  readonly max_us: number;
  /** Open loop: how late the loader itself started operations (its own error; large when the machine is busy). */
  readonly send_lag_p99_us?: number;
  /** CPU µs per operation of each `-pid`, in order. */
  readonly cpu_us_per_op?: number[];
}

/**
 * Runs the load generator with `args` and returns its result (with BENCH_VERBOSE set, each result goes to
 * stderr too, under `label`). Asynchronous on purpose: the Envoy benchmark's upstream and DNS server live
 * in this process and must keep answering meanwhile.
 */
export function loadgen(args: string[], label = '', timeoutMs = 120_000): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(LOADGEN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`loadgen ${args.join(' ')} failed (${code}): ${err.slice(-800)}`));
      const result = JSON.parse(out) as LoadResult;
      if (result.errors > 0)
        process.stderr.write(`bench: ${result.errors} errors in loadgen ${args.join(' ')}: ${result.first_error}\n`);
      if (process.env.BENCH_VERBOSE)
        process.stderr.write(`${label}: ${JSON.stringify({ ...result, samples_us: undefined })}\n`);
      resolve(result);
    });
  });
}

/** The pid of the one process whose command line contains `needle` (e.g. a rig's unique socket path). */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(needle)) return Number(entry);
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

/** The median of `xs` (the middle value of an odd count, the mean of the two middle ones otherwise). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The medians over rounds of one server under one load (CPU of the first `-pid`), and the errors summed. */
export interface Summary {
  perS: number;
  p50: number;
  p99: number;
  p999: number;
  cpu: number;
  errors: number;
}

/** Summarises the rounds of one server under one load. */
export const summarize = (runs: LoadResult[]): Summary => ({
  perS: median(runs.map((r) => r.per_s)),
  p50: median(runs.map((r) => r.p50_us)),
  p99: median(runs.map((r) => r.p99_us)),
  p999: median(runs.map((r) => r.p999_us)),
  cpu: median(runs.map((r) => r.cpu_us_per_op![0]!)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
});
