/**
 * The `type: azure` rule as a config: both static variants validate and compile (workspace and sealed
 * Secrets), every schema error has a fixture in test/fixtures/invalid/ (checked with its exact message by
 * validation.test.ts), the checks made when a config is applied (a base64 key, a SAS with a sig, a seal
 * bound to the azure provider) name the field and never a value, reads hide opaque Secrets, and
 * `sandbox-env` gives the sandbox placeholders, never the real key or token.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configView } from '../../src/admin/config-view.js';
import { compilePolicy, type CompileContext } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { AZURE_PLACEHOLDER_KEY, AZURE_PLACEHOLDER_SAS, envVarPlaceholders } from '../../src/envoy/sandbox-env.js';
import { decide } from '../../src/policy/decide.js';
import { generateSealingKeys, parsePrivateKey, parsePublicKey, seal, Unsealer } from '../../src/secrets/sealing.js';
import { thrown } from './support.js';

const KEY = Buffer.from('FAKE-canary-azure-key-0123456789abcdef').toString('base64');
const SAS = 'sv=2025-01-05&sp=r&se=2099-01-01&sig=FAKEcanary%2Bsig%3D';
const SECRETS = new Map([
  ['AZ_KEY', KEY],
  ['AZ_SAS', SAS],
]);
const keyRule = (extra: object = {}) => ({
  name: 'azure',
  type: 'azure',
  azure: { storage_account: 'acct1', account_key: { type: 'workspace_secret', value: '{AZ_KEY}' } },
  ...extra,
});
const sasRule = (value = '{AZ_SAS}') => ({
  name: 'azure',
  type: 'azure',
  azure: { storage_account: 'acct1', sas_token: { type: 'workspace_secret', value } },
});
const compile = (config: unknown, ctx: Partial<CompileContext> = {}) =>
  compilePolicy(validateConfig(JSON.parse(JSON.stringify(config)), 'SDK'), {
    secrets: SECRETS,
    unsealer: undefined,
    ...ctx,
  });

describe('type: azure configs', () => {
  it('an account key compiles to the decoded key; its hosts decide azure, others pass, http is refused', () => {
    const policy = compile({ rules: [keyRule()] });
    expect(policy.azure).toEqual({
      name: 'azure',
      position: 0,
      account: 'acct1',
      auth: { kind: 'shared_key', key: Buffer.from(KEY, 'base64') },
    });
    const at = (authority: string, scheme = 'https') =>
      decide(policy, { method: 'GET', scheme, authority, path: '/c' });
    expect(at('acct1.queue.core.windows.net')).toMatchObject({ outcome: 'azure', service: 'queue' });
    expect(at('ACCT1.blob.core.windows.net.')).toMatchObject({ outcome: 'azure', service: 'blob' });
    expect(at('acct2.blob.core.windows.net')).toMatchObject({ outcome: 'pass', reason: 'no_match' });
    expect(at('acct1.blob.core.windows.net', 'http')).toMatchObject({
      outcome: 'refuse',
      status: 403,
      reason: 'cleartext',
    });
  });

  it('a SAS token compiles to its query, without a leading ?', () => {
    expect(compile({ rules: [sasRule()] }).azure!.auth).toEqual({ kind: 'sas', query: SAS });
    expect(compile({ rules: [sasRule()] }, { secrets: new Map([['AZ_SAS', `?${SAS}`]]) }).azure!.auth).toEqual({
      kind: 'sas',
      query: SAS,
    });
  });

  it('a disabled rule still validates and resolves, and decides nothing', () => {
    const policy = compile({ rules: [keyRule({ enabled: false, env_vars: { AZURE_STORAGE_KEY: 'mine' } })] });
    expect(policy.azure).toBeUndefined();
    expect(thrown(() => compile({ rules: [keyRule({ enabled: false })] }, { secrets: new Map() })).problems).toEqual([
      'rules[0].azure.account_key: rule "azure": workspace secret "AZ_KEY" is not set',
    ]);
  });

  it.each([
    [
      'a key that is not base64',
      keyRule(),
      new Map([['AZ_KEY', 'FAKE not base64!']]),
      'rules[0].azure.account_key: rule "azure": resolved value is not a base64 storage account key',
    ],
    [
      'a key too short',
      keyRule(),
      new Map([['AZ_KEY', 'RkFLRQ==']]),
      'rules[0].azure.account_key: rule "azure": resolved value is too short for a storage account key',
    ],
    [
      'a SAS without sig',
      sasRule(),
      new Map([['AZ_SAS', 'sv=2025-01-05&sp=FAKE']]),
      'rules[0].azure.sas_token: rule "azure": resolved value is not a SAS token: it has no sig parameter',
    ],
    [
      'a SAS with spaces',
      sasRule(),
      new Map([['AZ_SAS', 'sv=1&sig=FAKE x']]),
      'rules[0].azure.sas_token: rule "azure": resolved value is not a SAS token (name=value pairs joined with &, URL-encoded)',
    ],
  ])('%s is refused when applied, naming the field, never the value', (_what, rule, secrets, problem) => {
    const problems = thrown(() => compile({ rules: [rule] }, { secrets })).problems;
    expect(problems).toEqual([problem]);
    expect(problems.join()).not.toContain('FAKE');
  });

  it('opaque Secrets open when sealed for the azure provider, and are refused when sealed for another', () => {
    const keys = generateSealingKeys();
    const pub = parsePublicKey(keys.publicPem, 'pub');
    const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'key'));
    const sealed = (provider: 'aws' | 'azure') => ({
      type: 'opaque',
      value: seal(SAS, pub, { sandbox: '*', target: { provider } }),
    });
    const rule = (provider: 'aws' | 'azure') => ({
      name: 'azure',
      type: 'azure',
      azure: { storage_account: 'acct1', sas_token: sealed(provider) },
    });
    expect(compile({ rules: [rule('azure')] }, { unsealer }).azure!.auth).toEqual({ kind: 'sas', query: SAS });
    expect(thrown(() => compile({ rules: [rule('aws')] }, { unsealer })).problems).toEqual([
      expect.stringMatching(
        /^rules\[0\]\.azure\.sas_token: rule "azure": sealed value is bound to provider aws, not to provider azure$/,
      ),
    ]);
    // Reads never show an opaque Secret's value, not even sealed.
    const view = configView(validateConfig({ rules: [rule('azure')] }, 'SDK'));
    expect(view.rules[0]).toMatchObject({
      azure: { storage_account: 'acct1', sas_token: { type: 'opaque', is_set: true } },
    });
    expect(JSON.stringify(view)).not.toContain('sealed:');
  });

  it('sandbox-env: the account, placeholders and a connection string, never the real key or token', () => {
    const key = envVarPlaceholders(
      validateConfig({ rules: [keyRule({ env_vars: { AZURE_REGION_HINT: 'westeurope' } })] }, 'SDK'),
    );
    expect(key).toEqual({
      AZURE_STORAGE_ACCOUNT: 'acct1',
      AZURE_STORAGE_KEY: AZURE_PLACEHOLDER_KEY,
      AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${AZURE_PLACEHOLDER_KEY};EndpointSuffix=core.windows.net`,
      AZURE_REGION_HINT: 'westeurope',
    });
    const sas = envVarPlaceholders(validateConfig({ rules: [sasRule()] }, 'SDK'));
    expect(sas).toMatchObject({ AZURE_STORAGE_ACCOUNT: 'acct1', AZURE_STORAGE_SAS_TOKEN: AZURE_PLACEHOLDER_SAS });
    expect(sas.AZURE_STORAGE_CONNECTION_STRING).toBe(
      `BlobEndpoint=https://acct1.blob.core.windows.net/;QueueEndpoint=https://acct1.queue.core.windows.net/;FileEndpoint=https://acct1.file.core.windows.net/;TableEndpoint=https://acct1.table.core.windows.net/;SharedAccessSignature=${AZURE_PLACEHOLDER_SAS}`,
    );
    expect(JSON.stringify([key, sas])).not.toMatch(/FAKE|\{AZ_/);
    // The placeholder key decodes, as the SDKs require.
    expect(Buffer.from(AZURE_PLACEHOLDER_KEY, 'base64').toString()).toBe('authproxy/placeholder/not/a/real/azure/key');
  });
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'invalid');

describe('schema errors of azure rules', () => {
  it.each([
    'provider-azure-workload-identity.yaml', // workload identity ... needs authproxy's OIDC issuer, not built yet
    'provider-azure-key-and-sas.yaml',
    'provider-azure-no-credential.yaml',
    'provider-azure-no-account.yaml',
    'provider-azure-account-name.yaml',
    'provider-azure-plaintext-secret.yaml',
    'provider-azure-match-hosts.yaml',
    'provider-azure-paths-headers.yaml',
    'provider-two-azure-rules.yaml', // the second one disabled: it counts
    'provider-managed-env-var-azure.yaml',
  ])('%s has a fixture (its exact message is checked by validation.test.ts)', (file) => {
    expect(existsSync(join(FIXTURES, file))).toBe(true);
  });
});
