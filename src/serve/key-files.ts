import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthProxyError } from '../errors.js';
import { generateSealingKeys } from '../secrets/sealing.js';
import { generateSigningKey } from '../callbacks/signer.js';

/** The files `keys init` writes into its directory, in order: sealing.key, sealing.pub, signing.key. */
export const KEY_FILES = ['sealing.key', 'sealing.pub', 'signing.key'] as const;

/**
 * Writes DIR/sealing.key (0600), DIR/sealing.pub (0644) and DIR/signing.key (0600); refuses to replace
 * any of them without `force`. Returns the three paths in KEY_FILES order.
 */
export function initKeyFiles(dir: string, options: { force?: boolean } = {}): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = KEY_FILES.map((f) => join(dir, f));
  const existing = files.filter((f) => existsSync(f));
  if (existing.length > 0 && !options.force) {
    throw new AuthProxyError('usage', `${existing[0]}: already exists (use --force to overwrite)`);
  }
  const { privatePem, publicPem } = generateSealingKeys();
  writeFileSync(files[0]!, privatePem, { mode: 0o600 });
  writeFileSync(files[1]!, publicPem, { mode: 0o644 });
  writeFileSync(files[2]!, generateSigningKey(), { mode: 0o600 });
  return files;
}
