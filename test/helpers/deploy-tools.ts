/**
 * The tools of the deployment-artifact checks (Helm, promtool, deploy/validate), which
 * scripts/setup-deploy-tools.sh installs into .venv/bin. Running and testing authproxy needs none of them, so
 * without them those suites skip with one line saying why; in CI (CI=true) and under `npm run test:deploy`
 * (AUTHPROXY_DEPLOY_TESTS=required) nothing skips and a missing tool fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export const HELM = process.env.HELM_BIN ?? join(REPO, '.venv/bin/helm');
export const PROMTOOL = process.env.PROMTOOL_BIN ?? join(REPO, '.venv/bin/promtool');
export const VALIDATOR = join(REPO, '.venv/bin/k8s-validate');
/** Go, when there is one: helm.test.ts rebuilds the validator with it so that an edit of deploy/validate counts. */
export const GO = [
  process.env.GO_BIN,
  spawnSync('sh', ['-c', 'command -v go']).stdout?.toString().trim(),
  '/usr/local/go/bin/go',
].find((g): g is string => Boolean(g) && existsSync(g!));

const required = process.env.CI === 'true' || process.env.AUTHPROXY_DEPLOY_TESTS === 'required';

/**
 * Whether the suite `what` skips: true only when a tool is missing and nothing requires the checks; it then prints
 * the one line that says why. `missing` names the missing tools (empty when all are there).
 */
export function skipDeployChecks(what: string, missing: string[]): boolean {
  if (missing.length === 0 || required) return false;
  console.warn(
    `SKIPPED ${what}: no ${missing.join(', ')} (bash scripts/setup-deploy-tools.sh installs the tools; npm run test:deploy runs these checks)`,
  );
  return true;
}

/** The error a suite's beforeAll throws when a tool is missing where nothing may skip. */
export function missingToolsError(missing: string[]): Error {
  return new Error(`missing ${missing.join(', ')}: run bash scripts/setup-deploy-tools.sh`);
}
