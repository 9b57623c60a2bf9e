import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!hasCompose)
  console.warn('SKIPPED docker-compose syntax check: docker-compose not installed (scripts/setup-deps.sh installs it)');

describe('docker-compose.yml (no Docker engine here: parsed and checked, not run)', () => {
  it.skipIf(!hasCompose)('passes `docker-compose config`', () => {
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: REPO, encoding: 'utf8' });
    expect(parse(out).services.envoy.image).toBe('envoyproxy/envoy:v1.40.0');
  });

  it('never gives the sandbox the keys volume, and shares the socket only between authproxy and Envoy', () => {
    const doc = parse(readFileSync(`${REPO}/docker-compose.yml`, 'utf8'));
    const volumesOf = (svc: string): string[] => (doc.services[svc].volumes ?? []).map((v: string) => v.split(':')[0]);
    expect(volumesOf('sandbox')).not.toContain('authproxy-keys');
    expect(volumesOf('sandbox')).not.toContain('authproxy-run');
    expect(doc.services.sandbox.network_mode).toBe('service:envoy');
    expect(doc.services.envoy.user).toBe(doc.services.authproxy.user);
  });
});
