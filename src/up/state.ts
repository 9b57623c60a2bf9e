import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AuthProxyError } from '../errors.js';
import { initKeyFiles, KEY_FILES } from '../serve/key-files.js';
import { caBundlePem, initCaFiles, SYSTEM_ROOTS } from '../sds/ca-files.js';

/** The default state directory of `authproxy up`, relative to the working directory. */
export const DEFAULT_STATE_DIR = '.authproxy';

/** What `authproxy up` keeps in its state directory (all absolute paths). */
export interface UpState {
  readonly dir: string;
  readonly sealingKey: string;
  readonly sealingPub: string;
  readonly signingKey: string;
  readonly caCert: string;
  readonly caKey: string;
  /** System roots + the interception CA: what the sandbox trusts (SSL_CERT_FILE and friends). */
  readonly caBundle: string;
  /** authproxy's ext_proc/SDS socket, 0600, which only Envoy (same user) connects to. */
  readonly socket: string;
  /** The rendered Envoy bootstrap and the pid of the Envoy started with it. */
  readonly envoyConfig: string;
  readonly envoyPid: string;
  /** Envoy's access log: Envoy's stdout goes straight to this file (appended), never through `up`. */
  readonly accessLog: string;
  /** The running `up`'s settings (instance.ts), read by `up --print-env`. */
  readonly instance: string;
}

/** sun_path holds 108 bytes with the NUL; the socket is first bound as `<dir>/.authprox-XXXXXX/s`. */
const MAX_SOCKET_DIR_BYTES = 107 - '/.authprox-XXXXXX/s'.length;

/** The state directory's file names, without touching the disk. */
export function statePaths(dir: string): UpState {
  const abs = resolve(dir);
  const at = (name: string) => join(abs, name);
  return {
    dir: abs,
    sealingKey: at(KEY_FILES[0]),
    sealingPub: at(KEY_FILES[1]),
    signingKey: at(KEY_FILES[2]),
    caCert: at('ca.crt'),
    caKey: at('ca.key'),
    caBundle: at('ca-bundle.pem'),
    socket: at('authproxy.sock'),
    envoyConfig: at('envoy.yaml'),
    envoyPid: at('envoy.pid'),
    accessLog: at('envoy-access.log'),
    instance: at('up.json'),
  };
}

/** All of `files` exist (true), none does (false), or some do: an error, since half a key set is not reusable. */
function complete(files: readonly string[], what: string): boolean {
  const present = files.filter((f) => existsSync(f));
  if (present.length === 0) return false;
  if (present.length === files.length) return true;
  const missing = files.find((f) => !existsSync(f));
  throw new AuthProxyError(
    'config_io',
    `${missing}: missing beside ${present[0]}; restore the ${what} or remove the state directory to start afresh`,
  );
}

/** Writes `content` to `path` atomically (a reader sees the old file or the new one, whole) with `mode`. */
export function writeAtomically(path: string, content: string, mode: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content, { mode });
  chmodSync(temp, mode);
  renameSync(temp, path);
}

/**
 * Creates `authproxy up`'s state directory (0700) on first use: the sealing and signing keys (`keys init`),
 * the interception CA (`ca init`) and a `.gitignore` that keeps it all out of git; later runs reuse them,
 * so sandboxes keep trusting the same CA and sealed values stay openable. The CA bundle is rewritten
 * every time from the system roots (which may have been updated) and the same CA.
 */
export async function ensureState(
  dir: string,
  systemRoots: string = SYSTEM_ROOTS,
): Promise<UpState & { created: string[] }> {
  const state = statePaths(dir);
  if (Buffer.byteLength(state.dir) > MAX_SOCKET_DIR_BYTES) {
    throw new AuthProxyError(
      'usage',
      `--state-dir: ${state.dir} is too long for a Unix socket path (at most ${MAX_SOCKET_DIR_BYTES} bytes); pass a shorter --state-dir`,
    );
  }
  const created: string[] = [];
  try {
    mkdirSync(state.dir, { recursive: true, mode: 0o700 });
    chmodSync(state.dir, 0o700);
    const ignore = join(state.dir, '.gitignore');
    if (!existsSync(ignore))
      writeFileSync(ignore, '# authproxy up: keys, CA and runtime files; never commit them\n*\n');
  } catch (err) {
    throw new AuthProxyError(
      'config_io',
      `${state.dir}: cannot create the state directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (!complete([state.sealingKey, state.sealingPub, state.signingKey], 'keys'))
    created.push(...initKeyFiles(state.dir));
  if (!complete([state.caCert, state.caKey], 'CA')) {
    const ca = await initCaFiles(state.dir, { commonName: 'authproxy up CA' });
    created.push(ca.cert, ca.key);
  }
  writeAtomically(state.caBundle, caBundlePem(state.caCert, systemRoots), 0o644);
  return { ...state, created };
}
