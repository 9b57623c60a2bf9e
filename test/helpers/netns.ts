/**
 * Two network namespaces joined by a veth pair, for the transparent-mode test: `world` holds the fake
 * public servers (documentation addresses on its loopback, reached through 192.0.2.1) and `sandbox`
 * (192.0.2.2, default route to the world) holds Envoy, authproxy and the clients. Names are unique per
 * run; `destroy` kills every process started here, then deletes both namespaces (which takes the veth
 * pair and every iptables rule inside them along) and the per-namespace resolv.conf. Nothing touches the
 * host's own interfaces: the documentation addresses exist only inside these namespaces.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why namespaces can't be used here (not root, no `ip`, the kernel refuses), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  const name = `approbe-${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${(add.stderr || add.error?.message || '').trim()}`;
  const ipt = spawnSync('ip', ['netns', 'exec', name, 'iptables', '-w', '-t', 'nat', '-L', '-n'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', name]);
  return ipt.status === 0
    ? undefined
    : `iptables in a namespace failed: ${(ipt.stderr || ipt.error?.message || '').trim()}`;
}

/** The output of one finished command. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NetWorld {
  readonly sandbox: string;
  readonly world: string;
  /** Runs `argv` in a namespace and waits; never throws on a non-zero exit. */
  exec(
    ns: string,
    argv: readonly string[],
    opts?: { env?: Record<string, string>; timeoutMs?: number; input?: string },
  ): Promise<Ran>;
  /** Starts a long-running process in a namespace; it is killed by `destroy`. */
  spawn(ns: string, argv: readonly string[], env?: Record<string, string>): { child: ChildProcess; output(): string };
  destroy(): Promise<void>;
}

const must = async (argv: string[]) => {
  await run(argv[0]!, argv.slice(1)).catch((err: { stderr?: string }) => {
    throw new Error(`${argv.join(' ')} failed: ${err.stderr ?? err}`);
  });
};

/**
 * Creates the two namespaces; `worldAddresses` are added to the world's loopback, `resolver` becomes the
 * sandbox's /etc/resolv.conf (ip netns exec bind-mounts /etc/netns/NAME/resolv.conf).
 */
export async function createWorld(worldAddresses: readonly string[], resolver: string): Promise<NetWorld> {
  const id = randomBytes(3).toString('hex');
  const world = `apw-${id}`;
  const sandbox = `aps-${id}`;
  const etc = `/etc/netns/${sandbox}`;
  const children: ChildProcess[] = [];
  const running = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  /** Synchronous, so that it also runs from process 'exit' when a test run dies without its afterAll. */
  const teardown = () => {
    for (const c of running()) c.kill('SIGKILL');
    for (const ns of [sandbox, world]) {
      // Anything still inside our own namespaces was started by this test (a grandchild of a killed child).
      const pids =
        spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
      for (const pid of pids) spawnSync('kill', ['-9', pid]);
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(etc, { recursive: true, force: true });
    spawnSync('rmdir', ['/etc/netns']); // only if now empty
    process.off('exit', teardown);
  };
  process.on('exit', teardown);
  const destroy = async () => {
    const left = running();
    for (const c of left) c.kill('SIGKILL');
    await Promise.all(left.map((c) => new Promise((r) => c.once('exit', r))));
    teardown();
  };
  try {
    await must(['ip', 'netns', 'add', world]);
    await must(['ip', 'netns', 'add', sandbox]);
    await must([
      'ip',
      'link',
      'add',
      `apw${id}`,
      'netns',
      world,
      'type',
      'veth',
      'peer',
      'name',
      `aps${id}`,
      'netns',
      sandbox,
    ]);
    const inW = (...a: string[]) => must(['ip', '-n', world, ...a]);
    const inS = (...a: string[]) => must(['ip', '-n', sandbox, ...a]);
    await inW('link', 'set', 'lo', 'up');
    await inS('link', 'set', 'lo', 'up');
    await inW('addr', 'add', '192.0.2.1/24', 'dev', `apw${id}`);
    await inS('addr', 'add', '192.0.2.2/24', 'dev', `aps${id}`);
    await inW('link', 'set', `apw${id}`, 'up');
    await inS('link', 'set', `aps${id}`, 'up');
    await inS('route', 'add', 'default', 'via', '192.0.2.1');
    for (const a of worldAddresses) await inW('addr', 'add', `${a}/32`, 'dev', 'lo');
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/resolv.conf`, `nameserver ${resolver}\n`);
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    sandbox,
    world,
    exec: (ns, argv, opts = {}) =>
      new Promise<Ran>((resolve) => {
        const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
          env: opts.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        children.push(child);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        // A command that exits without reading its input (or fails to start) closes the pipe: EPIPE is not an error here.
        child.stdin!.on('error', () => {});
        child.stdin!.end(opts.input ?? '');
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      }),
    spawn: (ns, argv, env) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
        env: env ?? { ...process.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      return { child, output: () => out };
    },
    destroy,
  };
}

/** The uid and gid of the system user Envoy runs as in the test, created once if it does not exist. */
export function envoyUser(name = 'authproxy-envoy'): { uid: number; gid: number } {
  const id = () => spawnSync('id', ['-u', name], { encoding: 'utf8' });
  if (id().status !== 0) spawnSync('useradd', ['-r', '-M', '-s', '/usr/sbin/nologin', name]);
  const uid = Number(id().stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || uid <= 0) throw new Error(`could not create or find the system user ${name}`);
  return { uid, gid };
}
