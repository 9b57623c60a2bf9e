import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigWatcher,
  loadSources,
  type ApplyOutcome,
  type ConfigSources,
  type LoadedSources,
} from '../../src/config/watch.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';

const rule = (host: string) =>
  `rules:\n  - name: r\n    match_hosts: ["${host}"]\n    headers: [{ name: X-Key, type: plaintext, value: "v" }]\n`;

describe('ConfigWatcher and the outcome of apply', () => {
  let dir: TempDir;
  afterEach(() => dir?.cleanup());

  function watcherWith(outcome: ApplyOutcome | undefined) {
    dir = tempDir();
    const src: ConfigSources = {
      configPath: dir.file('config.yaml', rule('a.example.com')),
      secretsDir: undefined,
      unsealer: undefined,
    };
    const applied: LoadedSources[] = [];
    const counted: string[] = [];
    const logs = captureLogs('info');
    const watcher = new ConfigWatcher(
      src,
      loadSources(src).fingerprint,
      (l) => {
        applied.push(l);
        return outcome;
      },
      logs.log,
      { onReload: (r) => counted.push(r) },
    );
    return { src, watcher, applied, counted, logs };
  }

  it('an apply done at once is counted and logged as reloaded', () => {
    const { src, watcher, applied, counted, logs } = watcherWith(undefined);
    writeFileSync(src.configPath, rule('b.example.com'));
    watcher.reload();
    expect(applied).toHaveLength(1);
    expect(counted).toEqual(['ok']);
    expect(logs.text()).toContain('config reloaded');
  });

  it('a deferred apply is neither counted nor logged by the watcher (its owner does both once it applies)', () => {
    const { src, watcher, applied, counted, logs } = watcherWith('deferred');
    writeFileSync(src.configPath, rule('b.example.com'));
    watcher.reload();
    expect(applied).toHaveLength(1);
    expect(counted).toEqual([]);
    expect(logs.text()).not.toContain('config reloaded');
  });
});
