import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';

const rule = (host: string, secret = 'TOKEN') => `
rules:
  - name: r-${host}
    match_hosts: ["${host}"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {${secret}}" }]
`;

/** Writes a Kubernetes-style mount: DIR/..<version>/files, DIR/..data -> it, DIR/KEY -> ..data/KEY. */
function k8sMount(dir: string, version: string, files: Record<string, string>, first: boolean): void {
  const versioned = join(dir, `..${version}`);
  mkdirSync(versioned);
  for (const [k, v] of Object.entries(files)) writeFileSync(join(versioned, k), v);
  symlinkSync(`..${version}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (first) for (const k of Object.keys(files)) symlinkSync(join('..data', k), join(dir, k));
}

describe('hot reload of config and secrets', () => {
  let dir: TempDir;
  let service: Service;
  let client: grpc.Client;
  let logs: ReturnType<typeof captureLogs>;
  const authFor = async (host: string) =>
    setHeaders((await exchange(client, [requestHeaders(host, '/')])).responses[0]!).authorization;

  async function start(configPath: string, secretsDir: string) {
    logs = captureLogs('info');
    service = await startService(
      { config: configPath, secretsDir, listen: '127.0.0.1:0', sandboxId: 'default', pollMs: 200 },
      logs.log,
    );
    client = extProcClient(service.address);
  }

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    client?.close();
    await service?.close();
    dir.cleanup();
  });

  it('applies a rewritten config file without a restart', async () => {
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', 'one');
    const config = dir.file('config.yaml', rule('a.example.com'));
    await start(config, secrets);
    expect(await authFor('a.example.com')).toBe('Bearer one');
    writeFileSync(config, rule('b.example.com'));
    await eventually(async () => (await authFor('b.example.com')) === 'Bearer one', 5000, 'new rule');
    expect(await authFor('a.example.com')).toBeUndefined();
  });

  it('keeps the last good config on an invalid change and logs one line naming file and field', async () => {
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', 'one');
    const config = dir.file('config.yaml', rule('a.example.com'));
    await start(config, secrets);
    writeFileSync(config, rule('a.example.com').replace('match_hosts', 'match_host'));
    await eventually(() => logs.lines().some((l) => l.level === 50), 5000, 'error line');
    const errors = logs.lines().filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]!.msg)).toContain(`${config}: rules[0]`);
    expect(String(errors[0]!.msg)).toContain('match_host');
    expect(await authFor('a.example.com')).toBe('Bearer one');
  });

  it('rejects a change that references a missing secret and keeps serving the old value', async () => {
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', 'one');
    const config = dir.file('config.yaml', rule('a.example.com'));
    await start(config, secrets);
    writeFileSync(config, rule('a.example.com', 'MISSING_KEY'));
    await eventually(() => logs.text().includes('MISSING_KEY'), 5000, 'error line');
    expect(await authFor('a.example.com')).toBe('Bearer one');
  });

  it('picks up a changed secret file', async () => {
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', 'one');
    const config = dir.file('config.yaml', rule('a.example.com'));
    await start(config, secrets);
    writeFileSync(join(secrets, 'TOKEN'), 'two\n');
    await eventually(async () => (await authFor('a.example.com')) === 'Bearer two', 5000, 'new secret');
  });

  it("follows Kubernetes' ..data symlink swap for secrets and config", async () => {
    const secrets = dir.dir('secrets');
    const configDir = dir.dir('config');
    k8sMount(secrets, '2026_01_01', { TOKEN: 'one\n' }, true);
    k8sMount(configDir, '2026_01_01', { 'config.yaml': rule('a.example.com') }, true);
    await start(join(configDir, 'config.yaml'), secrets);
    expect(await authFor('a.example.com')).toBe('Bearer one');
    k8sMount(secrets, '2026_01_02', { TOKEN: 'two\n' }, false);
    await eventually(async () => (await authFor('a.example.com')) === 'Bearer two', 5000, 'swapped secret');
    k8sMount(configDir, '2026_01_02', { 'config.yaml': rule('c.example.com') }, false);
    await eventually(async () => (await authFor('c.example.com')) === 'Bearer two', 5000, 'swapped config');
  });

  it('a reload that first needs AWS support loads it, then applies and logs "config reloaded" once, after', async () => {
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', 'one');
    dir.file('secrets/AWS_KEY_ID', 'AKIAREALKEYEXAMPLE00');
    dir.file('secrets/AWS_SECRET', 'real-secret-canary-reload');
    const config = dir.file('config.yaml', rule('a.example.com'));
    await start(config, secrets);
    writeFileSync(
      config,
      `${rule('b.example.com')}
  - name: aws
    type: aws
    aws:
      access_key_id: { type: workspace_secret, value: "{AWS_KEY_ID}" }
      secret_access_key: { type: workspace_secret, value: "{AWS_SECRET}" }
`,
    );
    await eventually(
      async () => (await authFor('b.example.com')) === 'Bearer one',
      10_000,
      'the reload with the aws rule',
    );
    const lines = logs
      .text()
      .split('\n')
      .filter((l) => /config reload/.test(l));
    const waits = lines.findIndex((l) => l.includes('config reload waits for cloud provider support to load'));
    const applied = lines.map((l, i) => (l.includes('config reloaded') ? i : -1)).filter((i) => i >= 0);
    expect(waits).toBeGreaterThanOrEqual(0);
    expect(applied).toHaveLength(1);
    expect(applied[0]).toBeGreaterThan(waits);
    expect(logs.text()).not.toContain('real-secret-canary-reload');
  });
});
