/**
 * The image's runtime choices that the benchmarks and docs depend on: Node.js 24, and the V8 young-generation
 * cap that keeps garbage-collection pauses out of the request tail (docs/benchmarks.md). The benchmarks read
 * the same ENTRYPOINT to run authproxy as deployed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEPLOYED_NODE_ARGS } from '../../bench/procs.js';

const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');

describe('Dockerfile', () => {
  it('builds and runs on Node.js 24', () => {
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(base).toMatch(/^node:24[.-]/);
  });

  it('runs authproxy with the young generation capped at 8 MiB, and the benchmarks run it the same way', () => {
    const entry = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)![1]!) as string[];
    expect(entry).toEqual(['node', '--max-semi-space-size=8', '/app/bin/authproxy.js']);
    expect(DEPLOYED_NODE_ARGS).toEqual(['--max-semi-space-size=8']);
  });
});
