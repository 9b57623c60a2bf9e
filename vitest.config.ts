import { availableParallelism } from 'node:os';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** One tier: a folder of test/, run with `npm run test:NAME` (`vitest run --project NAME`). */
const tier = (name: string): TestProjectInlineConfiguration => ({ extends: true, test: { name, include: [`test/${name}/**/*.test.ts`] } });

export default defineConfig({
  test: {
    projects: ['unit', 'integration', 'e2e', 'fuzz', 'soak', 'docs'].map(tier),
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
