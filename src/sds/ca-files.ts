import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthProxyError } from '../errors.js';

/** Where `ca init` wrote the CA. */
export interface CaFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * Writes a new interception CA: DIR/ca.crt (0644, to be trusted by sandboxes) and DIR/ca.key (0600,
 * for authproxy only). Refuses to replace either file without `force`: a new CA silently breaks every
 * sandbox that trusts the old one. Modes are set explicitly, also when an existing file is overwritten.
 */
export async function initCaFiles(
  dir: string,
  options: { force?: boolean; commonName?: string } = {},
): Promise<CaFiles> {
  const files = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const existing = [files.cert, files.key].find((f) => existsSync(f));
  if (existing && !options.force)
    throw new AuthProxyError('usage', `${existing}: already exists (use --force to overwrite)`);
  // The x509 stack loads only here, not with every CLI command.
  const { generateCa } = await import('./ca.js');
  const { certPem, keyPem } = await generateCa(options.commonName);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(files.key, keyPem, { mode: 0o600 });
    chmodSync(files.key, 0o600);
    writeFileSync(files.cert, certPem, { mode: 0o644 });
    chmodSync(files.cert, 0o644);
  } catch (err) {
    throw new AuthProxyError(
      'config_io',
      `${dir}: cannot write the CA (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return files;
}

/** The system roots `ca bundle` starts from by default (Debian/Ubuntu's bundle). */
export const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The sandbox's CA bundle: the system roots (for tunnelled hosts, which present real certificates) plus
 * the interception CA (for intercepted ones). Refuses a file that is not a PEM certificate or holds a key.
 */
export function caBundlePem(caCert: string, system: string = SYSTEM_ROOTS): string {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new AuthProxyError(
        'config_io',
        `${path}: cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  const ca = read(caCert, 'CA certificate');
  if (!ca.includes('-----BEGIN CERTIFICATE-----') || ca.includes('PRIVATE KEY')) {
    throw new AuthProxyError('key_invalid', `${caCert}: not a PEM certificate (and never pass the CA key here)`);
  }
  return `${read(system, 'system roots').trimEnd()}\n# authproxy interception CA\n${ca.trimEnd()}\n`;
}
