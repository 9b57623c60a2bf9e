/**
 * `authproxy up` stops an Envoy that an earlier, SIGKILLed `up` left behind on the same state directory,
 * and only that: the pid file's process must name this state directory's bootstrap on its command line.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeLeftoverEnvoy } from '../../src/up/envoy-process.js';
import { tempDir } from '../helpers/fs.js';

const dir = tempDir('authproxy-leftover-');
afterAll(() => dir.cleanup());

/** A long-running process whose command line holds `arg`, standing in for `envoy -c <arg>`. */
function fakeEnvoy(arg: string) {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', arg], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, exited };
}

describe.skipIf(!existsSync('/proc/self/cmdline'))('removeLeftoverEnvoy', () => {
  const config = join(dir.path, 'envoy.yaml');
  const pidFile = join(dir.path, 'envoy.pid');

  it('stops the process the pid file names when its command line names this bootstrap', async () => {
    const leftover = fakeEnvoy(config);
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(pidFile, `${leftover.child.pid}\n`);
    expect(await removeLeftoverEnvoy(pidFile, config)).toBe(true);
    await leftover.exited;
    expect(leftover.child.signalCode).toBe('SIGTERM');
    expect(existsSync(pidFile)).toBe(false);
  });

  it('leaves any other process alone (a recycled pid), and forgets a pid that is gone', async () => {
    const other = fakeEnvoy(join(dir.path, 'elsewhere.yaml'));
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(pidFile, `${other.child.pid}\n`);
    expect(await removeLeftoverEnvoy(pidFile, config)).toBe(false);
    expect(other.child.exitCode === null && other.child.signalCode === null).toBe(true);
    other.child.kill('SIGKILL');
    await other.exited;
    expect(await removeLeftoverEnvoy(pidFile, config)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
  });
});
