import { Command, Option } from 'commander';
import { AuthProxyError, errorLine } from '../errors.js';
import { registerConfigCommands } from './config-commands.js';
import { registerKeyCommands } from './key-commands.js';
import { registerServeCommand } from './serve-command.js';
import { registerEnvoyCommands } from './envoy-commands.js';
import { registerCaCommand } from './ca-command.js';
import { registerNetCommand } from './net-command.js';
import { registerUpCommand } from './up-command.js';

/**
 * The `authproxy` command line. Every failure prints one line per problem (file and field named) to
 * stderr and exits non-zero; no stack trace ever reaches the terminal.
 */
export function buildProgram(): Command {
  const program = new Command('authproxy')
    .description('Credential-injecting egress proxy for AI-agent sandboxes (Envoy ext_proc service)')
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str, write) => write(str.trimEnd() + '\n') });
  registerServeCommand(program);
  registerConfigCommands(program);
  registerKeyCommands(program);
  registerEnvoyCommands(program);
  registerCaCommand(program);
  registerNetCommand(program);
  registerUpCommand(program);
  return program;
}

/** Option with its AUTHPROXY_* environment twin. */
export function envOption(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** Prints an error as one line per problem and sets a non-zero exit code. */
export function reportError(err: unknown): void {
  const problems = err instanceof AuthProxyError ? err.problems : [errorLine(err)];
  for (const p of problems) process.stderr.write(`authproxy: ${p}\n`);
  process.exitCode = err instanceof AuthProxyError && err.code === 'usage' ? 2 : 1;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    reportError(err);
  }
}
