/** Temporary directories and files for tests; removed by the returned cleanup. */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  file(name: string, content: string): string;
  dir(name: string): string;
  cleanup(): void;
}

export function tempDir(prefix = 'authproxy-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file(name, content) {
      const p = join(path, name);
      writeFileSync(p, content);
      return p;
    },
    dir(name) {
      const p = join(path, name);
      mkdirSync(p, { recursive: true });
      return p;
    },
    cleanup() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Resolves when `check` returns true, polling every 20 ms; rejects after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
