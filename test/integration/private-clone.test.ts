/**
 * A checkout under a private directory (mode 0700, as root's home and `mktemp -d` are): processes of
 * another uid (Envoy and authproxy in the transparent suite, the foreign client of caller-auth) cannot
 * load a file of it, and the stage of test/helpers/other-user.ts is what lets them. The checkout here is
 * a hard-linked copy of this one (bin/, dist/, package.json, node_modules and the Node binary) inside a
 * fresh 0700 directory. `scripts/test-private-clone.sh` runs the whole transparent suite from a real clone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageForOtherUsers, untraversable } from '../helpers/other-user.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('SKIPPED private-clone test: needs root to run a process as another user (CI runs as root)');
const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe.skipIf(!isRoot)('a checkout under a 0700 directory, used by another uid', () => {
  let priv: string;
  let clone: string;
  let node: string;
  beforeAll(() => {
    priv = mkdtempSync(join(tmpdir(), 'authproxy-private-'));
    expect(statSync(priv).mode & 0o777).toBe(0o700);
    clone = join(priv, 'clone');
    node = join(priv, 'node');
    execFileSync('mkdir', [clone]);
    // Hard links where the file system allows them (fast), a copy otherwise.
    const copy = (from: string, to: string) => {
      if (spawnSync('cp', ['-al', from, to]).status !== 0) execFileSync('cp', ['-a', from, to]);
    };
    for (const part of ['bin', 'dist', 'package.json', 'node_modules']) copy(join(REPO, part), join(clone, part));
    copy(realpathSync(process.execPath), node);
  }, 120_000);
  afterAll(() => {
    if (priv) rmSync(priv, { recursive: true, force: true });
  });

  it('without the stage, another uid cannot load the CLI', () => {
    expect(untraversable(join(clone, 'bin/authproxy.js'))).toBe(priv);
    const r = spawnSync(asNobody[0]!, [...asNobody.slice(1), node, join(clone, 'bin/authproxy.js'), '--version'], {
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });

  it('through the stage, another uid runs the CLI from the private checkout', () => {
    const stage = stageForOtherUsers({ repo: clone, node });
    try {
      expect(untraversable(join(stage.repo, 'x'))).toBeUndefined();
      const [cmd, ...args] = stage.wrap([
        ...asNobody,
        stage.node,
        stage.bin,
        'envoy-config',
        '--mode',
        'transparent',
        '--proxy-port',
        '15001',
      ]);
      const r = spawnSync(cmd!, args, { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('envoy.filters.listener.original_dst');
    } finally {
      stage.cleanup();
    }
  });
});
