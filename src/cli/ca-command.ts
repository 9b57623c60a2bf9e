import type { Command } from 'commander';
import { envOption } from './options.js';

import { caBundlePem, initCaFiles, SYSTEM_ROOTS } from '../sds/ca-files.js';

export { caBundlePem, initCaFiles, SYSTEM_ROOTS, type CaFiles } from '../sds/ca-files.js';

/** `authproxy ca init`: the CA whose leaves Envoy serves for intercepted hosts. */
export function registerCaCommand(program: Command): void {
  const ca = program.command('ca').description('manage the CA that signs interception certificates');
  ca.command('init')
    .description('write DIR/ca.crt (0644, trusted by sandboxes) and DIR/ca.key (0600, for authproxy only)')
    .addOption(envOption('--dir <dir>', 'where to write the CA', 'AUTHPROXY_CA_DIR').makeOptionMandatory())
    .option('--common-name <name>', 'subject CN of the CA certificate', 'authproxy CA')
    .option('--force', 'overwrite an existing CA')
    .action(async (flags: { dir: string; force?: boolean; commonName: string }) => {
      const files = await initCaFiles(flags.dir, { force: flags.force, commonName: flags.commonName });
      process.stdout.write(`wrote ${files.cert}, ${files.key}\n`);
    });
  ca.command('bundle')
    .description(
      "print the sandbox's CA bundle: the system roots (for tunnelled hosts) plus authproxy's CA (for intercepted ones)",
    )
    .addOption(
      envOption('--ca-cert <file>', "authproxy's CA certificate (ca.crt)", 'AUTHPROXY_CA_CERT').makeOptionMandatory(),
    )
    .option('--system <file>', 'system roots', SYSTEM_ROOTS)
    .action((flags: { caCert: string; system: string }) => {
      process.stdout.write(caBundlePem(flags.caCert, flags.system));
    });
}
