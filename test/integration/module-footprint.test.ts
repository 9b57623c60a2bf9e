/**
 * What a serving process carries: `authproxy serve` with header rules and a callback that is never called
 * loads none of the packages that only some configs or some moments need (the cloud SDKs, Redis, the admin
 * API's server, the callback HTTP client). Each is megabytes of heap that every garbage collection on the
 * request path walks (docs/benchmarks.md: the tail through Envoy follows the collector's pauses).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { eventually, tempDir } from '../helpers/fs.js';

/** Packages that must stay unloaded until a config or a call needs them. */
const LAZY = ['undici', '@aws-sdk/', '@smithy/', 'google-auth-library', 'gaxios', 'ioredis', 'fastify'];

const dir = tempDir('authproxy-footprint-');
afterAll(() => dir.cleanup());

/** A preload that writes the loaded CommonJS packages (require.cache) to `out` on the first SIGUSR2, whole (written aside, then renamed). */
function preload(out: string): string {
  return dir.file(
    'footprint.mjs',
    `import { createRequire } from 'node:module';
import { renameSync, writeFileSync } from 'node:fs';
const cache = createRequire(process.cwd() + '/').cache;
process.once('SIGUSR2', () => {
  writeFileSync(${JSON.stringify(`${out}.tmp`)}, JSON.stringify(Object.keys(cache)));
  renameSync(${JSON.stringify(`${out}.tmp`)}, ${JSON.stringify(out)});
});
`,
  );
}

describe('module footprint of authproxy serve', () => {
  it('loads no cloud SDK, Redis client, admin server or callback HTTP client until something needs them', async () => {
    const out = join(dir.path, 'loaded.json');
    const config = dir.file(
      'config.yaml',
      `rules:
  - name: api
    match_hosts: ["api.example.com"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer footprint-canary" }]
callbacks:
  - match_hosts: ["cb.example.com"]
    url: https://tokens.example.com/credentials
    ttl_seconds: 60
`,
    );
    const socket = join(dir.path, 'authproxy.sock');
    const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --import=${preload(out)}`.trim();
    const cli = startCli(
      ['serve', '--config', config, '--listen', `unix:${socket}`, '--sandbox-id', 'fp', '--log-level', 'warn'],
      { NODE_OPTIONS: nodeOptions },
    );
    try {
      await eventually(() => existsSync(socket), 15_000, 'authproxy to listen');
      cli.child.kill('SIGUSR2');
      await eventually(() => existsSync(out), 5_000, 'the module list');
      const loaded: string[] = JSON.parse(readFileSync(out, 'utf8'));
      // The list is real: grpc-js (the ext_proc transport) is in it.
      expect(loaded.some((f) => f.includes('/node_modules/@grpc/grpc-js/'))).toBe(true);
      const eager = LAZY.filter((pkg) => loaded.some((f) => f.includes(`/node_modules/${pkg}`)));
      expect(eager).toEqual([]);
      expect(cli.output()).not.toContain('footprint-canary');
    } finally {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  });
});
