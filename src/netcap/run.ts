/**
 * Turns capture steps (see rules.ts) into a shell script to print, or runs them, optionally inside a named
 * network namespace (`ip netns exec`), so that `sandbox-net` prints exactly what `--apply` does.
 */
import { spawnSync } from 'node:child_process';
import type { RuleCommand, RuleStep } from './rules.js';

const shellWord = (w: string) => (/^[A-Za-z0-9_./:,=-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
const line = (c: RuleCommand) => [c.tool, ...c.args].map(shellWord).join(' ');

/** The steps as POSIX shell, one command a line, for an init container or a host's boot script. */
export function renderScript(steps: readonly RuleStep[], title: string): string {
  const out = ['#!/bin/sh', `# ${title}, rendered by \`authproxy sandbox-net\`. Idempotent.`, 'set -e'];
  for (const s of steps) {
    if (s.kind === 'ensure') out.push(`${line(s.check)} 2>/dev/null || ${line(s.command)}`);
    else if (s.kind === 'try') out.push(`${line(s.command)} 2>/dev/null || true`);
    else if (s.kind === 'repeat') out.push(`while ${line(s.command)} 2>/dev/null; do :; done`);
    else out.push(line(s.command));
  }
  return `${out.join('\n')}\n`;
}

/** Runs one command (in `netns` when given); returns whether it succeeded and its first error line. */
function exec(c: RuleCommand, netns: string | undefined): { ok: boolean; error: string } {
  const [bin, args] = netns ? ['ip', ['netns', 'exec', netns, c.tool, ...c.args]] : [c.tool, [...c.args]];
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });
  const error = r.error ? r.error.message : ((r.stderr || r.stdout).trim().split('\n')[0] ?? '');
  return { ok: r.status === 0, error };
}

/**
 * Runs the steps in order; the first `run` (or `ensure`) that fails stops with one error line naming
 * `flag` and the command. `repeat` is bounded, so a command that keeps succeeding cannot spin forever.
 */
export function runSteps(steps: readonly RuleStep[], netns: string | undefined, flag: string): void {
  const fail = (c: RuleCommand, error: string): never => {
    throw new Error(
      `${flag}: \`${line(c)}\`${netns ? ` in network namespace ${netns}` : ''} failed: ${error || 'no output'}`,
    );
  };
  for (const s of steps) {
    if (s.kind === 'try') exec(s.command, netns);
    else if (s.kind === 'repeat') for (let i = 0; i < 64 && exec(s.command, netns).ok; i++);
    else if (s.kind !== 'ensure' || !exec(s.check, netns).ok) {
      const r = exec(s.command, netns);
      if (!r.ok) fail(s.command, r.error);
    }
  }
}
