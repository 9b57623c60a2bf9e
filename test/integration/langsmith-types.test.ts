/**
 * Configs written against langsmith 0.12.0's own `ProxyConfig` type (resources/sandboxes/sandboxes.d.ts),
 * so the compiler checks every shape here against the package: each variant of every rule type and field
 * goes through `authproxy validate` and `authproxy serve`. Every one either works or, where authproxy has
 * no counterpart yet (relay, the workload-identity variants, tag subject scopes), is refused with one
 * line saying what to use instead. Types win over prose: where the issue and the types differ, this
 * file follows the types.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyConfig } from 'langsmith/resources/sandboxes/sandboxes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';

const SA_KEY = JSON.stringify({
  type: 'service_account',
  client_email: 'agent@project.iam.gserviceaccount.com',
  private_key: generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString(),
  token_uri: 'https://oauth2.googleapis.com/token',
});
const SECRETS: Record<string, string> = {
  GITHUB_TOKEN: 'ghp_types_canary_0001',
  ACCOUNT_B: 'sk-types-account-b-canary',
  AWS_KEY_ID: 'AKIATYPESCANARY00001',
  AWS_SECRET: 'typesCanarySecret/0000000000000000000000',
  GCP_SA: SA_KEY,
  AZ_KEY: Buffer.from('types-canary-account-key-0000000000').toString('base64'),
  AZ_SAS: 'sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig=typesCanarySig%3D',
};

const headerRules: ProxyConfig = {
  description: 'GitHub for the agent, two OpenAI accounts',
  rules: [
    {
      name: 'github',
      description: 'read the org repos',
      enabled: true,
      match_hosts: ['api.github.com'],
      match_paths: ['/user', '/repos/*', '/orgs/**', '*/pulls', '*'],
      headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {GITHUB_TOKEN}' }],
      env_vars: { GH_TOKEN: 'proxy-injected' },
    },
    {
      name: 'openai-b',
      match_hosts: ['api.openai.com'],
      match_headers: ['authorization: Bearer account-b'],
      headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {ACCOUNT_B}' }],
    },
  ],
  callbacks: [
    {
      match_hosts: ['api.example.com'],
      url: 'https://tokens.internal.example/resolve',
      ttl_seconds: 300,
      full_request: false,
      request_headers: [{ name: 'X-Key', type: 'plaintext', value: 'k' }],
    },
  ],
  access_control: {
    allow_list: [
      '*.github.com',
      'api.openai.com',
      'api.example.com',
      'sts.amazonaws.com:443',
      '~^[a-z0-9-]+\\.googleapis\\.com$',
    ],
  },
  no_proxy: ['localhost', '127.0.0.1'],
};

const awsStatic: ProxyConfig = {
  rules: [
    {
      name: 'aws',
      type: 'aws',
      match_hosts: ['sts.amazonaws.com', 's3.us-east-1.amazonaws.com'],
      aws: {
        access_key_id: { type: 'workspace_secret', value: '{AWS_KEY_ID}' },
        secret_access_key: { type: 'workspace_secret', value: '{AWS_SECRET}' },
        role_arn: '',
      },
    },
  ],
};
const awsRole: ProxyConfig = {
  rules: [
    {
      name: 'aws',
      type: 'aws',
      aws: {
        role_arn: 'arn:aws:iam::123456789012:role/agents',
        session_tags: { team: 'agents', 'cost-center': 'rd-1' },
        subject_scope: 'workspace',
      },
    },
  ],
};
const gcpKey: ProxyConfig = {
  rules: [
    {
      name: 'gcp',
      type: 'gcp',
      match_hosts: ['bigquery.googleapis.com'],
      gcp: { service_account_json: { type: 'workspace_secret', value: '{GCP_SA}' } },
    },
  ],
};
const azureKey: ProxyConfig = {
  rules: [
    {
      name: 'azure',
      type: 'azure',
      azure: { storage_account: 'acct1', account_key: { type: 'workspace_secret', value: '{AZ_KEY}' } },
    },
  ],
};
const azureSas: ProxyConfig = {
  rules: [
    {
      name: 'azure',
      type: 'azure',
      azure: { storage_account: 'acct1', sas_token: { type: 'workspace_secret', value: '{AZ_SAS}' } },
    },
  ],
};
const rewriteHost: ProxyConfig = {
  rules: [
    {
      name: 'moved',
      type: 'rewrite',
      match_hosts: ['api.old.example'],
      match_paths: ['/v1/*'],
      match_headers: ['x-tenant: a'],
      rewrite: { host: 'api.new.example', port: 443, credentials: 'redact' },
    },
  ],
};

const ACCEPTED: Array<[string, ProxyConfig]> = [
  [
    'header rules: every match_paths form, match_headers, descriptions, callbacks, access_control, no_proxy',
    headerRules,
  ],
  ['aws static keys (empty role_arn, as the type allows) narrowed by match_hosts', awsStatic],
  ['aws role with session_tags and subject_scope workspace', awsRole],
  ['gcp service account without scopes (cloud-platform) narrowed by match_hosts', gcpKey],
  ['azure storage account key', azureKey],
  ['azure SAS token', azureSas],
  ['rewrite to another https host', rewriteHost],
];

const REFUSED: Array<[string, ProxyConfig, string]> = [
  [
    'relay',
    { rules: [{ name: 'corp', type: 'relay', relay_id: 'r-1', match_hosts: ['10.0.0.0/8'] }] },
    'rules[0].type: relay rules send traffic through a LangSmith Cloud relay',
  ],
  [
    'gcp workload identity',
    {
      rules: [
        {
          name: 'gcp',
          type: 'gcp',
          gcp: {
            workload_identity_provider:
              '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x',
            subject_scope: 'workspace',
          },
        },
      ],
    },
    'rules[0].gcp.workload_identity_provider: workload identity federation',
  ],
  [
    'azure workload identity',
    {
      rules: [
        {
          name: 'azure',
          type: 'azure',
          azure: {
            tenant_id: '11111111-1111-4111-8111-111111111111',
            client_id: '22222222-2222-4222-8222-222222222222',
          },
        },
      ],
    },
    'rules[0].azure',
  ],
  [
    'aws tag subject scope',
    {
      rules: [
        {
          name: 'aws',
          type: 'aws',
          aws: {
            role_arn: 'arn:aws:iam::123456789012:role/agents',
            subject_scope: 'tag:0f8e3c1a-1111-4222-8333-444455556666',
          },
        },
      ],
    },
    'rules[0].aws.subject_scope: a "tag:" subject scope needs',
  ],
  [
    'rewrite to a sandbox in sidecar mode',
    {
      rules: [
        { name: 'peer', type: 'rewrite', match_hosts: ['api.peer.example'], rewrite: { sandbox: 'other', port: 8080 } },
      ],
    },
    'rules[0].rewrite.sandbox',
  ],
];

describe("langsmith 0.12.0's ProxyConfig shapes through validate and serve", () => {
  let dir: TempDir;
  let secrets: string;
  const write = (name: string, config: ProxyConfig) => {
    const file = join(dir.path, `${name.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(config));
    return file;
  };

  beforeAll(() => {
    dir = tempDir();
    secrets = join(dir.path, 'secrets');
    mkdirSync(secrets);
    for (const [k, v] of Object.entries(SECRETS)) writeFileSync(join(secrets, k), v);
  });
  afterAll(() => dir.cleanup());

  it.each(ACCEPTED)('%s: validate accepts it and serve applies it', async (name, config) => {
    const file = write(name, config);
    const v = runCli(['validate', '--config', file, '--secrets-dir', secrets]);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    const serve = startCli(
      [
        'serve',
        '--config',
        file,
        '--secrets-dir',
        secrets,
        '--listen',
        `unix:${join(dir.path, `${name.length}.sock`)}`,
      ],
      {
        AWS_ACCESS_KEY_ID: 'AKIABASEFORROLES0001',
        AWS_SECRET_ACCESS_KEY: 'base/secret',
      },
    );
    try {
      await eventually(() => serve.output().includes('authproxy serving'), 20_000, `serve applies ${name}`);
      for (const secret of Object.values(SECRETS)) expect(serve.output()).not.toContain(secret);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  });

  it.each(REFUSED)('%s: refused with one line saying why', async (name, config, message) => {
    const file = write(name, config);
    const v = runCli(['validate', '--config', file, '--secrets-dir', secrets]);
    expect(v.status).not.toBe(0);
    expect(v.stderr).toContain(message);
    expect(v.stderr).not.toMatch(/\n\s+at /);
    const serve = runCli([
      'serve',
      '--config',
      file,
      '--secrets-dir',
      secrets,
      '--listen',
      `unix:${join(dir.path, 'refused.sock')}`,
    ]);
    expect(serve.status).not.toBe(0);
    expect(serve.stderr).toContain(message);
  });
});
