/**
 * `type: azure` as a user meets it outside the request path: the CLI over dist/ (`seal --provider azure`,
 * `validate` with its one-line errors, `sandbox-env`, `explain` with the credential redacted) and the admin
 * API (opaque Secrets sealed at rest, read back as `{type: opaque, is_set: true}`, kept by a PATCH sent
 * without a value; the env read gives placeholders). The real key and SAS never appear in any output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURE_PLACEHOLDER_KEY, AZURE_PLACEHOLDER_SAS } from '../../src/envoy/sandbox-env.js';
import { startAdminRig, type AdminRig } from '../helpers/admin.js';
import { runCli, sealWithCli } from '../helpers/cli.js';
import { tempDir, type TempDir } from '../helpers/fs.js';

const KEY = Buffer.from('canary-azure-cli-account-key-0123456789abcdef').toString('base64');
const SAS = 'sv=2025-01-05&sp=r&sig=canaryCliSas%2B0%3D';

describe('authproxy CLI with a type: azure rule', () => {
  let dir: TempDir;
  let keyConfig: string;
  const noSecret = (text: string) => {
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('canary');
  };

  beforeAll(() => {
    dir = tempDir();
    expect(runCli(['keys', 'init', '--dir', `${dir.path}/keys`]).status).toBe(0);
    const sealed = sealWithCli(`${dir.path}/keys/sealing.pub`, KEY, { provider: 'azure' });
    keyConfig = dir.file(
      'key.yaml',
      `rules:\n  - name: blobs\n    type: azure\n    azure: { storage_account: acct1, account_key: { type: opaque, value: "${sealed}" } }\n`,
    );
  });
  afterAll(() => dir?.cleanup());

  it('validate opens a Secret sealed for the azure provider; explain shows the rule, the service and no key', () => {
    const args = ['--config', keyConfig, '--sealing-key', `${dir.path}/keys/sealing.key`];
    const ok = runCli(['validate', ...args]);
    expect(ok.status, ok.stderr).toBe(0);
    const r = runCli(['explain', ...args, 'PUT', 'https://acct1.blob.core.windows.net/c/b.txt']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      rule: 'blobs',
      azure: { storage_account: 'acct1', service: 'blob', auth: 'shared_key' },
      set_headers: [{ name: 'Authorization', value: '[SharedKey, re-signed]' }],
    });
    const other = JSON.parse(runCli(['explain', ...args, 'GET', 'https://acct2.blob.core.windows.net/c']).stdout);
    expect(other.rule).toBeUndefined();
    noSecret(ok.stdout + ok.stderr + r.stdout + r.stderr);
  });

  it('explain with a SAS rule: the Authorization is removed and the token redacted', () => {
    dir.dir('secrets');
    dir.file('secrets/AZ_SAS', SAS);
    const file = dir.file(
      'sas.yaml',
      'rules:\n  - name: sas\n    type: azure\n    azure: { storage_account: acct1, sas_token: { type: workspace_secret, value: "{AZ_SAS}" } }\n',
    );
    const r = runCli([
      'explain',
      '--config',
      file,
      '--secrets-dir',
      `${dir.path}/secrets`,
      'GET',
      'https://acct1.dfs.core.windows.net/fs/x?sig=mine',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      rule: 'sas',
      azure: { service: 'dfs', auth: 'sas' },
      remove_headers: ['authorization', 'proxy-authorization'],
    });
    noSecret(r.stdout + r.stderr);
  });

  it('validate refuses workload identity with a one-line message naming the missing feature', () => {
    const file = dir.file(
      'wi.yaml',
      'rules:\n  - name: az\n    type: azure\n    azure: { tenant_id: "t", client_id: "c" }\n',
    );
    const r = runCli(['validate', '--config', file]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe(
      `authproxy: ${file}: rules[0].azure: workload identity (tenant_id/client_id) needs authproxy's OIDC issuer, not built yet; use storage_account with account_key or sas_token`,
    );
  });

  it('sandbox-env prints the account and placeholders, never the real key', () => {
    const r = runCli(['sandbox-env', '--config', keyConfig, '--ca-file', '/etc/ca.pem']);
    expect(r.status, r.stderr).toBe(0);
    for (const line of [
      "export AZURE_STORAGE_ACCOUNT='acct1'",
      `export AZURE_STORAGE_KEY='${AZURE_PLACEHOLDER_KEY}'`,
      "export REQUESTS_CA_BUNDLE='/etc/ca.pem'",
      "export NODE_EXTRA_CA_CERTS='/etc/ca.pem'",
    ]) {
      expect(r.stdout).toContain(line);
    }
    noSecret(r.stdout);
  });
});

describe('admin API with a type: azure rule', () => {
  let rig: AdminRig;
  const path = '/v1/sandboxes/sb-azure/proxy-config';
  const config = () => ({
    rules: [
      { name: 'azure', type: 'azure', azure: { storage_account: 'acct1', sas_token: { type: 'opaque', value: SAS } } },
    ],
  });

  beforeAll(async () => {
    rig = await startAdminRig({});
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('PUT seals the SAS; reads hide it; a PATCH without a value keeps it; env gives placeholders', async () => {
    expect((await rig.call('PUT', path, { body: config() })).status).toBe(201);
    const read = await rig.call('GET', path);
    expect(read.json.proxy_config.rules[0].azure).toEqual({
      storage_account: 'acct1',
      sas_token: { type: 'opaque', is_set: true },
    });
    const stored = () =>
      (rig.store.get('sb-azure') as Promise<{ config: { rules: Array<Record<string, any>> } }>).then(
        (s) => s.config.rules[0]!.azure.sas_token.value as string,
      );
    const sealed = await stored();
    expect(rig.unsealer.unseal(sealed)).toBe(SAS);
    const body = read.json.proxy_config;
    body.rules[0].description = 'blob storage';
    const patched = await rig.call('PATCH', path, { body });
    expect(patched.status).toBe(200);
    expect(await stored()).toBe(sealed);
    const env = await rig.call('GET', '/v1/sandboxes/sb-azure/env');
    expect(env.json.env_vars).toMatchObject({
      AZURE_STORAGE_ACCOUNT: 'acct1',
      AZURE_STORAGE_SAS_TOKEN: AZURE_PLACEHOLDER_SAS,
    });
    for (const text of [read.text, patched.text, env.text, await rig.rawStored('sb-azure')])
      expect(text).not.toContain('canary');
  });

  it('a PATCH that points the rule at another storage account cannot keep the stored SAS', async () => {
    const read = await rig.call('GET', path);
    const body = read.json.proxy_config;
    body.rules[0].azure.storage_account = 'attackeracct';
    const moved = await rig.call('PATCH', path, { body });
    expect(moved.status).toBe(422);
    expect(moved.text).toContain('no stored value to keep');
    expect((await rig.call('GET', path)).json.proxy_config.rules[0].azure.storage_account).toBe('acct1');
  });
});
