import { Command } from 'commander';
import { reportError } from './options.js';
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
    .configureOutput({ outputError: (str, write) => write(`${str.trimEnd()}\n`) });
  registerServeCommand(program);
  registerConfigCommands(program);
  registerKeyCommands(program);
  registerEnvoyCommands(program);
  registerCaCommand(program);
  registerNetCommand(program);
  registerUpCommand(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv's shape); failures set process.exitCode instead of throwing. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    reportError(err);
  }
}
