import { chmodSync, lstatSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AuthProxyError } from '../errors.js';

/** A Unix socket bound by `bindPrivateSocket`. */
export interface PrivateSocket {
  /** Removes the socket file, if it is still the one bound here (the server closes itself first). */
  remove(): void;
}

/**
 * Binds a Unix socket at `path` with its final mode 0600 from the first instant it can be reached, so no
 * other user can ever connect (a decision response holds secrets). `bind` creates the socket inside a
 * fresh private directory next to `path` (mode 0700, so nobody else can reach anything in it); the socket
 * is made 0600 there and only then renamed onto `path`, which is atomic. Chosen over setting the umask
 * around the bind: the umask is process-wide and the bind is asynchronous, so other code would run with it.
 * A stale file at `path` is replaced.
 */
export async function bindPrivateSocket(
  path: string,
  bind: (tempPath: string) => Promise<void>,
  flag = '--listen',
): Promise<PrivateSocket> {
  const dir = privateDir(path, flag);
  const temp = join(dir, 's');
  try {
    await bind(temp);
    chmodSync(temp, 0o600);
    renameSync(temp, path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ino = lstatSync(path).ino;
  return {
    remove() {
      try {
        if (lstatSync(path).ino === ino) rmSync(path, { force: true });
      } catch {
        /* already gone */
      }
    },
  };
}

/**
 * The private directory next to `path`. A missing or unwritable socket directory is the operator's to
 * create (its owner and mode decide who may reach the socket, so authproxy does not guess them): one line
 * naming the flag and the directory, instead of mkdtemp's ENOENT on a temporary name.
 */
function privateDir(path: string, flag: string): string {
  const parent = dirname(path);
  try {
    return mkdtempSync(join(parent, `.${basename(path).slice(0, 8)}-`));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const uid = process.getuid?.();
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new AuthProxyError(
        'usage',
        `${flag}: the socket's directory ${parent} does not exist: create it, owned by the user authproxy runs as${uid === undefined ? '' : ` (uid ${uid})`} and closed to others (install -d -m 0750 -o USER ${parent})`,
      );
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw new AuthProxyError(
        'usage',
        `${flag}: cannot create the socket in ${parent}: the directory is not writable by the user authproxy runs as${uid === undefined ? '' : ` (uid ${uid})`}`,
      );
    throw err;
  }
}
