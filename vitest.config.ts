import { availableParallelism } from 'node:os';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** One tier: a folder of test/, run with `npm run test:NAME` (`vitest run --project NAME`). */
const tier = (name: string): TestProjectInlineConfiguration => ({
  extends: true,
  test: { name, include: [`test/${name}/**/*.test.ts`] },
});

/**
 * The e2e tier runs after the others, one file at a time: each file drives a real Envoy, real SDKs and
 * timing-sensitive refusals (an upload refused while its body still streams), and two of them side by side on
 * a loaded 2-core machine made curl connections fail (status 0) that pass alone.
 */
const e2e: TestProjectInlineConfiguration = {
  extends: true,
  test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
};

export default defineConfig({
  test: {
    projects: [...['unit', 'integration', 'fuzz', 'soak', 'docs'].map(tier), e2e],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // A process per test file: tests start servers, change process.env and spawn Envoy, redis-server and the
    // CLI, and a file that leaks a handle or a child must not take the next one down with it.
    pool: 'forks',
    // Vitest's default keeps one core free (one worker on a 2-core machine); the test files wait on child
    // processes and sockets most of the time, so one worker per core. Each file still has its own ports,
    // temporary directories and network namespaces (test/helpers), so files can run side by side.
    maxWorkers: availableParallelism(),
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-results.json' },
  },
});
