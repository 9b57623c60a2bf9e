import { z } from 'zod';
import type { Command } from 'commander';
import { proxyConfigSchema } from '../config/schema.js';
import { loadSources } from '../config/watch.js';
import { loadUnsealer } from '../serve/service.js';
import { SHAPE_ONLY_UNSEALER } from '../secrets/sealing.js';
import { explain } from './explain.js';
import { envOption } from './options.js';
import { AuthProxyError } from '../errors.js';
import type { CompiledPolicy } from '../policy/compiled.js';
import { parseGcpTokenUriAllow } from '../cloud/gcp/token-uri-allow.js';

function configOptions(cmd: Command): Command {
  return cmd
    .addOption(
      envOption('--config <file>', 'proxy_config file (YAML or JSON)', 'AUTHPROXY_CONFIG').makeOptionMandatory(),
    )
    .addOption(envOption('--secrets-dir <dir>', 'workspace secrets, one file per key', 'AUTHPROXY_SECRETS_DIR'))
    .addOption(
      envOption(
        '--sealing-key <file>',
        'private sealing key; without it sealed values are only checked for shape',
        'AUTHPROXY_SEALING_KEY',
      ),
    )
    .addOption(
      envOption(
        '--sandbox <id>',
        "sandbox the top-level config is checked for (serve's --sandbox-id): sealed values must be bound to it or to *",
        'AUTHPROXY_SANDBOX_ID',
      ).default('default'),
    )
    .addOption(
      envOption(
        '--allow-unbound-seals',
        'accept sealed values from before sandbox/host bindings, with a warning (as serve does with it)',
        'AUTHPROXY_ALLOW_UNBOUND_SEALS',
      ),
    )
    .addOption(
      envOption(
        '--gcp-token-uri-allow <list>',
        "token endpoints besides Google's that service-account keys may name (as serve takes them)",
        'AUTHPROXY_GCP_TOKEN_URI_ALLOW',
      ),
    );
}

interface ConfigFlags {
  config: string;
  secretsDir?: string;
  sealingKey?: string;
  sandbox: string;
  allowUnboundSeals?: boolean;
  gcpTokenUriAllow?: string;
}

/**
 * Loads a config file for validate/explain; without a sealing key, opaque values are checked for shape
 * (and binding) only. Unbound sealed values let through by --allow-unbound-seals are warned about on stderr.
 */
function load(flags: ConfigFlags) {
  const unsealer = loadUnsealer(flags.sealingKey);
  const { file } = loadSources({
    configPath: flags.config,
    secretsDir: flags.secretsDir,
    unsealer: unsealer ?? SHAPE_ONLY_UNSEALER,
    defaultSandboxId: flags.sandbox,
    allowUnboundSeals: flags.allowUnboundSeals ?? false,
    gcpTokenUriAllow: parseGcpTokenUriAllow(flags.gcpTokenUriAllow ?? ''),
  });
  const named: Array<[string, CompiledPolicy | undefined]> = [
    ['', file.default],
    ...[...file.sandboxes].map(([id, p]): [string, CompiledPolicy] => [`sandboxes.${id}.`, p]),
  ];
  for (const [prefix, policy] of named) {
    for (const field of policy?.unboundSeals ?? [])
      process.stderr.write(
        `authproxy: warning: ${flags.config}: ${prefix}${field}: sealed value is not bound to a sandbox and hosts (accepted by --allow-unbound-seals)\n`,
      );
  }
  return file;
}

/** `validate`, `explain` and `schema`: the commands that read a config without serving it. */
export function registerConfigCommands(program: Command): void {
  configOptions(program.command('validate').description('check a proxy_config; exit 0 when valid')).action(
    (flags: ConfigFlags) => {
      const file = load(flags);
      const all = [...(file.default ? [file.default] : []), ...file.sandboxes.values()];
      const rules = all.reduce((n, p) => n + p.source.rules.length, 0);
      const callbacks = all.reduce((n, p) => n + p.callbacks.length, 0);
      const sandboxes = file.sandboxes.size > 0 ? `${file.sandboxes.size} sandboxes, ` : '';
      process.stdout.write(`${flags.config}: valid (${sandboxes}${rules} rules, ${callbacks} callbacks)\n`);
    },
  );

  configOptions(program.command('explain').description('print the decision for one request as JSON, secrets redacted'))
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<url>', 'absolute URL, e.g. https://api.github.com/user')
    .option(
      '-H, --header <line>',
      'a request header "name: value" (repeatable), for match_headers',
      (line: string, all: string[]) => [...all, line],
      [] as string[],
    )
    .action((method: string, url: string, flags: ConfigFlags & { sandbox: string; header: string[] }) => {
      const file = load(flags);
      const policy = file.sandboxes.get(flags.sandbox) ?? file.default;
      if (!policy) throw new AuthProxyError('usage', `--sandbox: "${flags.sandbox}" has no config in ${flags.config}`);
      process.stdout.write(`${JSON.stringify(explain(policy, method, url, flags.sandbox, flags.header), null, 2)}\n`);
    });

  program
    .command('schema')
    .description('print the JSON Schema of proxy_config (for editors)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(proxyConfigJsonSchema(), null, 2)}\n`);
    });
}

/** The JSON Schema generated from the zod schema, so editors and the validator never disagree. */
export function proxyConfigJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(proxyConfigSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'authproxy proxy_config',
  };
}
