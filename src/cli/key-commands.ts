import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AuthProxyError } from '../errors.js';
import { generateSealingKeys, parsePublicKey, seal } from '../secrets/sealing.js';
import { trimOneNewline } from '../secrets/workspace.js';
import { CallbackSigner, generateSigningKey } from '../callbacks/signer.js';
import { readKeyFile } from '../runtime/service.js';
import { envOption } from './main.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `keys init`, `seal` and `jwks`: key material and what is derived from it. */
export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('manage authproxy keys');
  keys
    .command('init')
    .description('write DIR/sealing.key (0600), DIR/sealing.pub and DIR/signing.key (0600)')
    .addOption(envOption('--dir <dir>', 'where to write the keys', 'AUTHPROXY_KEYS_DIR').makeOptionMandatory())
    .option('--force', 'overwrite existing keys')
    .action((flags: { dir: string; force?: boolean }) => {
      mkdirSync(flags.dir, { recursive: true, mode: 0o700 });
      const files = ['sealing.key', 'sealing.pub', 'signing.key'].map((f) => join(flags.dir, f));
      const existing = files.filter((f) => existsSync(f));
      if (existing.length > 0 && !flags.force) {
        throw new AuthProxyError('usage', `${existing[0]}: already exists (use --force to overwrite)`);
      }
      const { privatePem, publicPem } = generateSealingKeys();
      writeFileSync(files[0]!, privatePem, { mode: 0o600 });
      writeFileSync(files[1]!, publicPem, { mode: 0o644 });
      writeFileSync(files[2]!, generateSigningKey(), { mode: 0o600 });
      process.stdout.write(`wrote ${files.join(', ')}\n`);
    });

  program
    .command('seal')
    .description('read a secret on stdin, print its sealed value (one trailing newline is trimmed)')
    .addOption(envOption('--public-key <file>', 'the proxy\'s public sealing key (sealing.pub)', 'AUTHPROXY_PUBLIC_KEY').makeOptionMandatory())
    .action(async (flags: { publicKey: string }) => {
      const key = parsePublicKey(readKeyFile(flags.publicKey), flags.publicKey);
      const secret = trimOneNewline(await readStdin());
      if (secret.length === 0) throw new AuthProxyError('usage', 'stdin: nothing to seal');
      process.stdout.write(seal(secret, key) + '\n');
    });

  program
    .command('jwks')
    .description('print the JWKS that callback endpoints use to verify authproxy signatures')
    .addOption(envOption('--signing-key <file>', 'Ed25519 signing key (signing.key)', 'AUTHPROXY_SIGNING_KEY').makeOptionMandatory())
    .action(async (flags: { signingKey: string }) => {
      const signer = await CallbackSigner.fromPem(readKeyFile(flags.signingKey), flags.signingKey);
      process.stdout.write(JSON.stringify(signer.jwks(), null, 2) + '\n');
    });
}
