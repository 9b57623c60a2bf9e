/**
 * The `type: aws` and `type: gcp` rules as configs: what the real `langsmith` SDK helpers build validates
 * and compiles unchanged (static keys, a role with session tags, gcp with scopes, inside proxyConfig
 * with accessControl; workspace and opaque Secrets); every schema error has a fixture in
 * test/fixtures/invalid/ (checked with its exact message by validation.test.ts); and the checks made
 * when a config is applied (the service-account key, token_uri, --gcp-token-uri-allow, missing
 * secrets) name the field and never a value.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awsAuth, gcpAuth, opaqueSecret, proxyConfig, workspaceSecret } from 'langsmith/sandbox';
import { describe, expect, it } from 'vitest';
import { compilePolicy, type CompileContext } from '../../src/config/compile.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { generateSealingKeys, parsePrivateKey, parsePublicKey, seal, Unsealer } from '../../src/secrets/sealing.js';
import { makeServiceAccount } from '../helpers/gcp-fake.js';
import { thrown } from './support.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const ROLE = 'arn:aws:iam::123456789012:role/sandbox-agents';
const KEY_ID = 'AKIAFAKECANARY000001';
const SECRET = 'FAKE/secret/canary+0000000000000000000000';
const SA = makeServiceAccount('https://oauth2.googleapis.com/token');
const SECRETS = new Map([
  ['AWS_KEY_ID', KEY_ID],
  ['AWS_SECRET', SECRET],
  ['GCP_SA', SA.json],
]);
const compile = (config: unknown, ctx: Partial<CompileContext> = {}) =>
  compilePolicy(validateConfig(JSON.parse(JSON.stringify(config)), 'SDK'), {
    secrets: SECRETS,
    unsealer: undefined,
    ...ctx,
  });

describe('langsmith/sandbox helpers build configs authproxy takes unchanged', () => {
  it('awsAuth with static keys (workspace secrets) validates and compiles to the real keys', () => {
    const rule = awsAuth({
      accessKeyId: workspaceSecret('AWS_KEY_ID'),
      secretAccessKey: workspaceSecret('{AWS_SECRET}'),
    });
    const policy = compile({ rules: [rule] });
    expect(policy.aws).toEqual({
      name: 'aws',
      position: 0,
      auth: { kind: 'static', accessKeyId: KEY_ID, secretAccessKey: SECRET },
    });
    expect(policy.source.rules[0]).toMatchObject({ type: 'aws', enabled: true });
  });

  it('awsAuth with a role and session tags, and a role alone', () => {
    const tagged = compile({
      rules: [
        awsAuth({
          roleArn: ROLE,
          sessionTags: { team: 'agents', 'cost-center': '42' },
          envVars: { AWS_REGION: 'eu-west-1' },
        }),
      ],
    });
    expect(tagged.aws!.auth).toEqual({
      kind: 'role',
      roleArn: ROLE,
      sessionTags: { team: 'agents', 'cost-center': '42' },
    });
    expect(tagged.source.rules[0]!.env_vars).toEqual({ AWS_REGION: 'eu-west-1' });
    expect(compile({ rules: [awsAuth({ roleArn: ROLE, name: 'role-only' })] }).aws!.auth).toEqual({
      kind: 'role',
      roleArn: ROLE,
      sessionTags: {},
    });
  });

  it('gcpAuth with scopes validates and compiles the checked service-account key', () => {
    const policy = compile({ rules: [gcpAuth({ serviceAccountJson: workspaceSecret('GCP_SA'), scopes: [SCOPE] })] });
    expect(policy.gcp).toMatchObject({
      name: 'gcp',
      clientEmail: SA.clientEmail,
      tokenUri: 'https://oauth2.googleapis.com/token',
      scopes: [SCOPE],
    });
    expect(policy.gcp!.id).toMatch(/^[\w-]{16}$/);
  });

  it('proxyConfig with both provider rules, a header rule and accessControl', () => {
    const config = proxyConfig({
      rules: [
        {
          name: 'openai',
          match_hosts: ['api.openai.com'],
          headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {AWS_KEY_ID}' }],
        },
        awsAuth({ roleArn: ROLE, sessionTags: { team: 'agents' } }),
        gcpAuth({
          serviceAccountJson: workspaceSecret('GCP_SA'),
          scopes: [SCOPE, 'https://www.googleapis.com/auth/devstorage.read_only'],
          name: 'google',
        }),
      ],
      // `*.googleapis.com` is refused (googleapis.com is on the public suffix list): name hosts or use a regex.
      accessControl: {
        allow_list: ['*.amazonaws.com', 'storage.googleapis.com', '~\\.googleapis\\.com$', 'api.openai.com'],
      },
    });
    const policy = compile(config);
    expect([policy.rules.map((r) => r.name), policy.aws?.name, policy.gcp?.name]).toEqual([
      ['openai'],
      'aws',
      'google',
    ]);
    expect(policy.access?.mode).toBe('allow');
  });

  it('opaque Secrets (opaqueSecret with sealed values) open with the sealing key', () => {
    const keys = generateSealingKeys();
    const pub = parsePublicKey(keys.publicPem, 'pub');
    const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'key'));
    const sealedFor = (value: string, provider: 'aws' | 'gcp') =>
      opaqueSecret(seal(value, pub, { sandbox: '*', target: { provider } }));
    const config = proxyConfig({
      rules: [
        awsAuth({ accessKeyId: sealedFor(KEY_ID, 'aws'), secretAccessKey: sealedFor(SECRET, 'aws') }),
        gcpAuth({ serviceAccountJson: sealedFor(SA.json, 'gcp'), scopes: [SCOPE] }),
      ],
    });
    const policy = compile(config, { unsealer });
    expect(policy.aws!.auth).toEqual({ kind: 'static', accessKeyId: KEY_ID, secretAccessKey: SECRET });
    expect(policy.gcp!.clientEmail).toBe(SA.clientEmail);
    // A value sealed for the other provider is refused.
    const swapped = proxyConfig({
      rules: [gcpAuth({ serviceAccountJson: sealedFor(SA.json, 'aws'), scopes: [SCOPE] })],
    });
    expect(thrown(() => compile(swapped, { unsealer })).problems).toEqual([
      expect.stringMatching(/^rules\[0\]\.gcp\.service_account_json: rule "gcp": sealed value is bound to .*aws.*gcp/),
    ]);
  });

  it('a disabled provider rule still validates, and then its managed names are free to use', () => {
    const config = proxyConfig({
      rules: [
        awsAuth({ roleArn: ROLE, enabled: false, envVars: { AWS_ACCESS_KEY_ID: 'mine', AWS_REGION: 'us-east-1' } }),
      ],
    });
    const policy = compile(config);
    expect(policy.aws).toBeUndefined();
    expect(policy.source.rules[0]!.env_vars.AWS_ACCESS_KEY_ID).toBe('mine');
  });
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'invalid');

describe('schema errors of provider rules', () => {
  it.each([
    'provider-aws-role-extra-keys.yaml', // AWS role auth must contain only role_arn and session_tags
    'provider-aws-no-credentials.yaml', // AWS auth requires role_arn or both static credentials
    'provider-aws-role-arn-bad.yaml',
    'provider-aws-session-tags-without-role.yaml',
    'provider-aws-plaintext-secret.yaml',
    'provider-gcp-plaintext-secret.yaml',
    'provider-match-hosts.yaml',
    'provider-match-paths.yaml',
    'provider-headers.yaml',
    'provider-two-aws-rules.yaml', // the second one disabled: it counts
    'provider-two-gcp-rules.yaml',
    'provider-managed-env-var.yaml',
    'provider-managed-env-var-gcp.yaml',
    'provider-gcp-scopes-empty.yaml',
    'provider-gcp-scope-not-url.yaml',
    'provider-gcp-unknown-field.yaml',
    'provider-description-too-long.yaml',
    'rule-type-unknown.yaml',
  ])('%s has a fixture (its exact message is checked by validation.test.ts)', (file) => {
    expect(existsSync(join(FIXTURES, file))).toBe(true);
  });

  it("LangChain's messages, as langsmith's own helpers word them", () => {
    expect(() => awsAuth({ roleArn: ROLE, accessKeyId: workspaceSecret('K') } as never)).toThrow(
      'AWS role auth must contain only role_arn and session_tags',
    );
    expect(() => awsAuth({ accessKeyId: workspaceSecret('K') } as never)).toThrow(
      'AWS auth requires roleArn or both static credentials',
    );
    const role = thrown(() =>
      parseConfigText(
        `rules: [{name: a, type: aws, aws: {role_arn: "${ROLE}", secret_access_key: {type: opaque, value: "sealed:x"}}}]`,
        'F',
      ),
    );
    // langsmith's helper words it for the fields it knows; its types add subject_scope, which authproxy accepts too.
    expect(role.problems).toEqual([
      'F: rules[0].aws: AWS role auth must contain only role_arn, session_tags and subject_scope',
    ]);
  });
});

describe('checks made when a gcp config is applied', () => {
  const gcpWith = (json: string, ctx: Partial<CompileContext> = {}) =>
    thrown(() =>
      compile(
        { rules: [gcpAuth({ serviceAccountJson: workspaceSecret('KEY'), scopes: [SCOPE] })] },
        { secrets: new Map([['KEY', json]]), ...ctx },
      ),
    ).problems;
  const key = (patch: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(SA.json), ...patch });
  const at = 'rules[0].gcp.service_account_json: rule "gcp"';

  it.each([
    ['not JSON', 'FAKE-not-json {', 'is not JSON (a service-account key file)'],
    ['not an object', '["FAKE"]', 'is not a JSON object'],
    [
      'another credential type',
      key({ type: 'authorized_user' }),
      'is not a service-account key ("type" must be "service_account")',
    ],
    ['no client_email', key({ client_email: undefined }), 'has no valid "client_email"'],
    ['no private_key', key({ private_key: undefined }), 'has no "private_key"'],
    [
      'a private_key that is not PEM',
      key({ private_key: 'FAKE-----BEGIN PRIVATE KEY-----' }),
      '"private_key" is not a PEM private key',
    ],
    [
      'an http token_uri',
      key({ token_uri: 'http://oauth2.googleapis.com/token' }),
      '"token_uri" must be an https:// URL',
    ],
    [
      'a non-Google token_uri',
      key({ token_uri: 'https://oauth2.example.test/token' }),
      `"token_uri" is not Google's token endpoint (allow others with --gcp-token-uri-allow)`,
    ],
  ])('%s', (_what, json, problem) => {
    const problems = gcpWith(json);
    expect(problems).toEqual([`${at}: ${problem}`]);
    expect(problems.join()).not.toMatch(/FAKE|PRIVATE KEY/);
  });

  it('an Ed25519 private_key is not an RSA key', () => {
    const ed = generateSealingKeys().privatePem;
    expect(gcpWith(key({ private_key: ed }))).toEqual([`${at}: "private_key" is not an RSA key`]);
  });

  it('--gcp-token-uri-allow lets a named endpoint or origin through, and nothing else', () => {
    const json = key({ token_uri: 'https://oauth2.example.test:8443/token' });
    const ok = (allow: string[]) =>
      compile(
        { rules: [gcpAuth({ serviceAccountJson: workspaceSecret('KEY'), scopes: [SCOPE] })] },
        { secrets: new Map([['KEY', json]]), gcpTokenUriAllow: allow },
      ).gcp!.tokenUri;
    expect(ok(['https://oauth2.example.test:8443/token'])).toBe('https://oauth2.example.test:8443/token');
    expect(ok(['https://oauth2.example.test:8443'])).toBe('https://oauth2.example.test:8443/token');
    for (const allow of [
      ['https://oauth2.example.test'],
      ['https://oauth2.example.test:8443/tok'],
      ['https://oauth2.example.test:84'],
    ]) {
      expect(gcpWith(json, { gcpTokenUriAllow: allow }), allow[0]).toEqual([
        `${at}: "token_uri" is not Google's token endpoint (allow others with --gcp-token-uri-allow)`,
      ]);
    }
  });

  it("Google's token endpoints need no flag", () => {
    for (const uri of [
      'https://oauth2.googleapis.com/token',
      'https://accounts.google.com/o/oauth2/token',
      'https://www.googleapis.com/oauth2/v4/token',
    ]) {
      expect(
        compile(
          { rules: [gcpAuth({ serviceAccountJson: workspaceSecret('KEY'), scopes: [SCOPE] })] },
          { secrets: new Map([['KEY', key({ token_uri: uri })]]) },
        ).gcp!.tokenUri,
      ).toBe(uri);
    }
  });

  it('a missing workspace secret names the rule, the field and the key; a disabled rule is checked too', () => {
    const missing = (enabled: boolean) =>
      thrown(() =>
        compile({ rules: [gcpAuth({ serviceAccountJson: workspaceSecret('NOPE'), scopes: [SCOPE], enabled })] }),
      ).problems;
    expect(missing(true)).toEqual([`${at}: workspace secret "NOPE" is not set`]);
    expect(missing(false)).toEqual([`${at}: workspace secret "NOPE" is not set`]);
  });

  it('a changed key or scope list is a different token cache id; the id reveals neither', () => {
    const id = (json: string, scopes: string[]) =>
      compile(
        { rules: [gcpAuth({ serviceAccountJson: workspaceSecret('KEY'), scopes })] },
        { secrets: new Map([['KEY', json]]) },
      ).gcp!.id;
    const base = id(SA.json, [SCOPE]);
    expect(id(SA.json, [SCOPE])).toBe(base);
    expect(id(SA.json, [SCOPE, 'https://www.googleapis.com/auth/bigquery'])).not.toBe(base);
    expect(id(makeServiceAccount('https://oauth2.googleapis.com/token').json, [SCOPE])).not.toBe(base);
  });
});
