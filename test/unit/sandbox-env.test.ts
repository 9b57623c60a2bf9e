/**
 * The sandbox's environment as `sandbox-env`, `up` and the admin API's `/env` print it: Node's fetch is
 * told to use the proxy variables, and an AWS region reaches boto3 (AWS_DEFAULT_REGION) and the
 * JavaScript SDK (AWS_REGION) whichever name the config used.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { envVarPlaceholders, sandboxEnv } from '../../src/envoy/sandbox-env.js';

const AWS = {
  name: 'aws',
  type: 'aws',
  aws: {
    access_key_id: { type: 'workspace_secret', value: '{K}' },
    secret_access_key: { type: 'workspace_secret', value: '{S}' },
  },
};
const withEnv = (env_vars: Record<string, string>, enabled = true) =>
  validateConfig({ rules: [{ ...AWS, env_vars, enabled }] }, 'test');

describe('sandboxEnv', () => {
  it("tells Node 24's fetch to use the proxy variables (NODE_USE_ENV_PROXY)", () => {
    const env = Object.fromEntries(
      sandboxEnv(validateConfig({ rules: [] }, 'test'), { proxyUrl: 'http://127.0.0.1:10000', caFile: '/ca.pem' }),
    );
    expect(env).toMatchObject({
      HTTPS_PROXY: 'http://127.0.0.1:10000',
      NODE_USE_ENV_PROXY: '1',
      NODE_EXTRA_CA_CERTS: '/ca.pem',
    });
  });
});

describe('envVarPlaceholders: the AWS region under both names', () => {
  it.each([
    [{ AWS_REGION: 'eu-west-1' }, { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1' }],
    [{ AWS_DEFAULT_REGION: 'eu-west-2' }, { AWS_REGION: 'eu-west-2', AWS_DEFAULT_REGION: 'eu-west-2' }],
    [
      { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-east-1' },
      { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-east-1' },
    ],
  ])('%o gives %o', (set, expected) => {
    expect(envVarPlaceholders(withEnv(set))).toMatchObject(expected);
  });

  it('adds no region when the config sets none, or only in a disabled rule', () => {
    expect(Object.keys(envVarPlaceholders(withEnv({})))).not.toContain('AWS_DEFAULT_REGION');
    const env = envVarPlaceholders(withEnv({ AWS_REGION: 'eu-west-1' }, false));
    expect(env.AWS_REGION).toBeUndefined();
    expect(env.AWS_DEFAULT_REGION).toBeUndefined();
  });
});
