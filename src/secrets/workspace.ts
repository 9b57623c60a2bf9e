import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AuthProxyError } from '../errors.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads workspace secrets from a directory with one file per key, the layout of a mounted Kubernetes
 * Secret (dot-prefixed entries such as `..data` are skipped; symlinks are followed). One trailing newline
 * is trimmed. Exists so that secrets never need to be written into the config itself.
 */
export function readSecretsDir(dir: string): Map<string, string> {
  const secrets = new Map<string, string>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new AuthProxyError(
      'config_io',
      `${dir}: cannot read secrets directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  for (const name of names.sort()) {
    if (name.startsWith('.') || !KEY.test(name)) continue;
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
      secrets.set(name, trimOneNewline(readFileSync(path, 'utf8')));
    } catch (err) {
      throw new AuthProxyError(
        'config_io',
        `${path}: cannot read secret (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return secrets;
}

/** Removes exactly one trailing `\n` (or `\r\n`), as `echo` and editors add one. */
export function trimOneNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/** Placeholder syntax of workspace_secret values: `{KEY}`. */
export const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
