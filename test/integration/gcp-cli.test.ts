/**
 * The CLI with provider rules, as a user runs it (bin/authproxy.js over dist/): `sandbox-env` prints the
 * placeholder variables, `validate` and `explain` take --gcp-token-uri-allow like serve (and refuse a
 * private token endpoint without it, naming the field), `explain` shows the gcp decision with the token
 * redacted, and `serve` refuses a malformed --gcp-token-uri-allow before starting. No key is ever printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_PLACEHOLDER_KEY_ID, GCP_PLACEHOLDER_TOKEN } from '../../src/envoy/sandbox-env.js';
import { runCli } from '../helpers/cli.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { makeServiceAccount } from '../helpers/gcp-fake.js';

const PRIVATE_URI = 'https://oauth2.private.test/token';

describe('authproxy CLI with provider rules', () => {
  let dir: TempDir;
  let config: string;
  const account = makeServiceAccount(PRIVATE_URI);
  const secret = account.privateKey.split('\n')[1]!;
  const withDir = (args: string[]) => [...args, '--config', config, '--secrets-dir', `${dir.path}/secrets`];

  beforeAll(() => {
    dir = tempDir();
    dir.dir('secrets');
    dir.file('secrets/GCP_SA', account.json);
    config = dir.file(
      'config.yaml',
      `
rules:
  - name: aws
    type: aws
    aws: { role_arn: "arn:aws:iam::123456789012:role/agents" }
    env_vars: { AWS_REGION: eu-west-1 }
  - name: gcp
    type: gcp
    gcp:
      service_account_json: { type: workspace_secret, value: "{GCP_SA}" }
      scopes: ["https://www.googleapis.com/auth/cloud-platform"]
`,
    );
  });
  afterAll(() => dir?.cleanup());

  it('sandbox-env prints the placeholder credentials and CA variables', () => {
    const r = runCli(['sandbox-env', '--config', config, '--ca-file', '/etc/ca.pem']);
    expect(r.status, r.stderr).toBe(0);
    for (const line of [
      `export AWS_ACCESS_KEY_ID='${AWS_PLACEHOLDER_KEY_ID}'`,
      "export AWS_EC2_METADATA_DISABLED='true'",
      `export CLOUDSDK_AUTH_ACCESS_TOKEN='${GCP_PLACEHOLDER_TOKEN}'`,
      "export CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE='/etc/ca.pem'",
      "export AWS_REGION='eu-west-1'",
      // boto3 reads only AWS_DEFAULT_REGION: the region comes out under both names.
      "export AWS_DEFAULT_REGION='eu-west-1'",
    ]) {
      expect(r.stdout).toContain(line);
    }
  });

  it('validate: a private token_uri needs --gcp-token-uri-allow (flag or AUTHPROXY_GCP_TOKEN_URI_ALLOW)', () => {
    const refused = runCli(withDir(['validate']));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(
      `rules[1].gcp.service_account_json: rule "gcp": "token_uri" is not Google's token endpoint (allow others with --gcp-token-uri-allow)`,
    );
    expect(runCli(withDir(['validate', '--gcp-token-uri-allow', 'https://oauth2.private.test'])).status).toBe(0);
    expect(runCli(withDir(['validate']), { env: { AUTHPROXY_GCP_TOKEN_URI_ALLOW: PRIVATE_URI } }).status).toBe(0);
    const bad = runCli(withDir(['validate', '--gcp-token-uri-allow', 'http://oauth2.private.test']));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--gcp-token-uri-allow: "http://oauth2.private.test" is not an https:// URL');
    for (const r of [refused, bad]) expect(r.stderr + r.stdout).not.toContain(secret);
  });

  it('explain: Google APIs get the gcp rule with the token redacted; google.com passes', () => {
    const r = runCli(
      withDir(['explain', '--gcp-token-uri-allow', PRIVATE_URI, 'GET', 'https://storage.googleapis.com/storage/v1/b']),
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      rule: 'gcp',
      gcp: { client_email: account.clientEmail },
      set_headers: [{ name: 'Authorization', value: '[redacted]' }],
    });
    expect(r.stdout).not.toContain(secret);
    const google = JSON.parse(
      runCli(withDir(['explain', '--gcp-token-uri-allow', PRIVATE_URI, 'GET', 'https://www.google.com/'])).stdout,
    );
    expect(google.rule).toBeUndefined();
  });

  it('serve refuses a malformed --gcp-token-uri-allow before it starts', () => {
    const r = runCli([
      'serve',
      '--config',
      config,
      '--listen',
      `unix:${dir.path}/s.sock`,
      '--gcp-token-uri-allow',
      'https://x.test/t?a=1',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '--gcp-token-uri-allow: "https://x.test/t?a=1" must not have credentials, a query or a fragment',
    );
  });
});
