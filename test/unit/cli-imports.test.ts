import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../src/cli', import.meta.url));

/** The relative modules a source file imports (static imports and re-exports). */
function localImports(file: string): string[] {
  const text = readFileSync(join(CLI, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]!);
}

describe('CLI module graph', () => {
  const files = readdirSync(CLI).filter((f) => f.endsWith('.ts'));

  it('has a program module and command modules to check', () => {
    expect(files).toContain('main.ts');
    expect(files.length).toBeGreaterThan(5);
  });

  it('no command module imports the program that registers it (no cli/main.ts cycle)', () => {
    const importers = files.filter((f) => f !== 'main.ts' && localImports(f).some((i) => i === './main.js'));
    expect(importers).toEqual([]);
  });

  it('commands take envOption and reportError from options.ts', () => {
    const users = files.filter((f) => localImports(f).includes('./options.js'));
    expect(users).toEqual(
      expect.arrayContaining(['main.ts', 'serve-command.ts', 'up-command.ts', 'config-commands.ts']),
    );
  });
});
