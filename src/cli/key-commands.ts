import type { Command } from 'commander';
import { AuthProxyError } from '../errors.js';
import { parsePublicKey, seal } from '../secrets/sealing.js';
import { sealBindingFromFlags, type SealFlags } from './seal-flags.js';
import { trimOneNewline } from '../secrets/workspace.js';
import { CallbackSigner } from '../callbacks/signer.js';
import { readKeyFile } from '../serve/service.js';
import { envOption } from './options.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

import { initKeyFiles } from '../serve/key-files.js';

export { initKeyFiles, KEY_FILES } from '../serve/key-files.js';

/** `keys init`, `seal` and `jwks`: key material and what is derived from it. */
export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('manage authproxy keys');
  keys
    .command('init')
    .description('write DIR/sealing.key (0600), DIR/sealing.pub and DIR/signing.key (0600)')
    .addOption(envOption('--dir <dir>', 'where to write the keys', 'AUTHPROXY_KEYS_DIR').makeOptionMandatory())
    .option('--force', 'overwrite existing keys')
    .action((flags: { dir: string; force?: boolean }) => {
      const files = initKeyFiles(flags.dir, { force: flags.force });
      process.stdout.write(`wrote ${files.join(', ')}\n`);
    });

  program
    .command('seal')
    .description('read a secret on stdin, print its sealed value (one trailing newline is trimmed)')
    .addOption(
      envOption(
        '--public-key <file>',
        "the proxy's public sealing key (sealing.pub)",
        'AUTHPROXY_PUBLIC_KEY',
      ).makeOptionMandatory(),
    )
    .option('--sandbox <id>', "the only sandbox whose config may use the value, or '*' for any sandbox")
    .option(
      '--hosts <list>',
      "a header rule's host patterns (comma-separated): the rule using the value must stay within them",
    )
    .option('--provider <name>', 'aws, gcp or azure: a Secret of that provider rule')
    .option('--callback-url <url>', "a callback's request header: the callback URL (its origin is bound)")
    .action(async (flags: SealFlags & { publicKey: string }) => {
      const binding = sealBindingFromFlags(flags);
      const key = parsePublicKey(readKeyFile(flags.publicKey), flags.publicKey);
      const secret = trimOneNewline(await readStdin());
      if (secret.length === 0) throw new AuthProxyError('usage', 'stdin: nothing to seal');
      process.stdout.write(`${seal(secret, key, binding)}\n`);
    });

  program
    .command('jwks')
    .description('print the JWKS that callback endpoints use to verify authproxy signatures')
    .addOption(
      envOption(
        '--signing-key <file>',
        'Ed25519 signing key (signing.key)',
        'AUTHPROXY_SIGNING_KEY',
      ).makeOptionMandatory(),
    )
    .action(async (flags: { signingKey: string }) => {
      const signer = await CallbackSigner.fromPem(readKeyFile(flags.signingKey), flags.signingKey);
      process.stdout.write(`${JSON.stringify(signer.jwks(), null, 2)}\n`);
    });
}
