/**
 * Provider rules through the admin API (real Redis, real registry): opaque Secrets are sealed at rest and
 * read back as `{type: opaque, is_set: true}` only; PATCH keeps a stored Secret sent without a value; an
 * AWS role is fixed when the config is created (409 naming the rule for any later add, change, removal
 * or disabling); the env read gives the placeholder variables and no secret; the apply-time check of a
 * service-account key honours --gcp-token-uri-allow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_PLACEHOLDER_KEY_ID, AWS_PLACEHOLDER_SECRET, GCP_PLACEHOLDER_TOKEN } from '../../src/envoy/sandbox-env.js';
import { startAdminRig, type AdminRig } from '../helpers/admin.js';
import { makeServiceAccount } from '../helpers/gcp-fake.js';

const CANARY_ID = 'canary0provider0key0id0a1b2c3';
const KEY_ID = 'AKIACANARYPROVIDER01';
const SECRET = 'canary/provider/secret+0000000000000000000';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const ROLE = 'arn:aws:iam::123456789012:role/sandbox-agents';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const SA = JSON.stringify({
  ...JSON.parse(makeServiceAccount('https://oauth2.googleapis.com/token').json),
  private_key_id: CANARY_ID,
});
const PRIVATE = (JSON.parse(SA) as { private_key: string }).private_key.split('\n')[1]!;

/** Static AWS keys and a service-account key, both opaque (plaintext here: the API seals them). */
const staticConfig = () => ({
  rules: [
    {
      name: 'aws',
      type: 'aws',
      aws: { access_key_id: { type: 'opaque', value: KEY_ID }, secret_access_key: { type: 'opaque', value: SECRET } },
      env_vars: { AWS_REGION: 'eu-west-1' },
    },
    { name: 'gcp', type: 'gcp', gcp: { service_account_json: { type: 'opaque', value: SA }, scopes: [SCOPE] } },
  ],
});
const roleConfig = (
  role: Record<string, unknown> = { role_arn: ROLE, session_tags: { team: 'agents' } },
  enabled = true,
) => ({
  rules: [
    { name: 'aws-role', type: 'aws', enabled, aws: role },
    {
      name: 'openai',
      match_hosts: ['api.openai.com'],
      headers: [{ name: 'Authorization', type: 'plaintext', value: 'Bearer x' }],
    },
  ],
});

describe('admin API: provider rules', () => {
  let rig: AdminRig;
  const noSecret = (text: string) => {
    for (const s of [KEY_ID, SECRET, CANARY_ID, PRIVATE, 'PRIVATE KEY', 'sealed:']) expect(text).not.toContain(s);
  };

  beforeAll(async () => {
    rig = await startAdminRig({ gcpTokenUriAllow: ['https://oauth2.private.test'] });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('reads show opaque Secrets as {type: opaque, is_set: true}; Redis holds them sealed', async () => {
    expect((await rig.call('PUT', path('sb-static'), { body: staticConfig() })).status).toBe(201);
    const read = await rig.call('GET', path('sb-static'));
    expect(read.status).toBe(200);
    const [aws, gcp] = read.json.proxy_config.rules;
    expect(aws.aws).toEqual({
      access_key_id: { type: 'opaque', is_set: true },
      secret_access_key: { type: 'opaque', is_set: true },
    });
    expect(gcp.gcp).toEqual({ service_account_json: { type: 'opaque', is_set: true }, scopes: [SCOPE] });
    noSecret(read.text);
    const raw = await rig.rawStored('sb-static');
    expect(raw).toContain('sealed:');
    for (const s of [KEY_ID, SECRET, CANARY_ID, PRIVATE]) expect(raw).not.toContain(s);
    const stored = (await rig.store.get('sb-static'))!.config.rules as Array<Record<string, any>>;
    expect(rig.unsealer.unseal(stored[1]!.gcp.service_account_json.value)).toBe(SA);
  });

  it('PATCH keeps stored opaque Secrets sent without a value (the read sent back, or no value at all)', async () => {
    await rig.call('PUT', path('sb-keep'), { body: staticConfig() });
    const before = (await rig.store.get('sb-keep'))!.config.rules as Array<Record<string, any>>;
    const body = (await rig.call('GET', path('sb-keep'))).json.proxy_config;
    body.rules[1].gcp = {
      service_account_json: { type: 'opaque' },
      scopes: [SCOPE, 'https://www.googleapis.com/auth/bigquery'],
    };
    const res = await rig.call('PATCH', path('sb-keep'), { body });
    expect(res.status).toBe(200);
    noSecret(res.text);
    const after = (await rig.store.get('sb-keep'))!.config.rules as Array<Record<string, any>>;
    expect(after[0]!.aws.access_key_id.value).toBe(before[0]!.aws.access_key_id.value);
    expect(after[1]!.gcp.service_account_json.value).toBe(before[1]!.gcp.service_account_json.value);
    expect(after[1]!.gcp.scopes).toHaveLength(2);
    expect(rig.unsealer.unseal(after[0]!.aws.secret_access_key.value)).toBe(SECRET);
  });

  it('PUT refuses an opaque Secret without a value; a value-less one with nothing stored is refused too', async () => {
    const body = staticConfig();
    (body.rules[1] as Record<string, any>).gcp.service_account_json = { type: 'opaque', is_set: true };
    expect((await rig.call('PUT', path('sb-novalue'), { body })).status).toBe(422);
    expect((await rig.call('PATCH', path('sb-novalue'), { body })).status).toBe(404);
  });

  it('env read: the placeholder variables and the rules env_vars, no secret', async () => {
    const res = await rig.call('GET', '/v1/sandboxes/sb-static/env');
    expect(res.status).toBe(200);
    expect(res.json.env_vars).toMatchObject({
      AWS_ACCESS_KEY_ID: AWS_PLACEHOLDER_KEY_ID,
      AWS_SECRET_ACCESS_KEY: AWS_PLACEHOLDER_SECRET,
      AWS_EC2_METADATA_DISABLED: 'true',
      CLOUDSDK_AUTH_ACCESS_TOKEN: GCP_PLACEHOLDER_TOKEN,
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
    });
    expect(res.json.env_vars.AWS_CA_BUNDLE).toBe(res.json.env_vars.CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE);
    noSecret(res.text);
  });

  it('an AWS role is set at creation: PATCH that changes, removes, disables or adds one is 409 naming the rule', async () => {
    expect((await rig.call('PUT', path('sb-role'), { body: roleConfig() })).status).toBe(201);
    const refused = async (body: unknown, id = 'sb-role') => {
      const res = await rig.call('PATCH', path(id), { body });
      expect(res.status).toBe(409);
      return res.json.problems as string[];
    };
    const named = (rule: string) => [
      `rules "${rule}": an AWS role can't be added, changed, removed or disabled by a later write; delete the sandbox's config and create it again`,
    ];
    expect(await refused(roleConfig({ role_arn: 'arn:aws:iam::123456789012:role/other' }))).toEqual(named('aws-role'));
    expect(await refused(roleConfig({ role_arn: ROLE, session_tags: { team: 'others' } }))).toEqual(named('aws-role'));
    expect(await refused(roleConfig(undefined, false))).toEqual(named('aws-role'));
    expect(await refused({ rules: [roleConfig().rules[1]] })).toEqual(named('aws-role'));
    expect((await rig.store.get('sb-role'))!.version).toBe(1);
    // Keeping it as it is while changing the rest is fine.
    const kept = roleConfig();
    (kept.rules[1] as Record<string, any>).match_hosts = ['api.openai.com', 'api.anthropic.com'];
    expect((await rig.call('PATCH', path('sb-role'), { body: kept })).status).toBe(200);
    // A sandbox created without a role can't get one later.
    await rig.call('PUT', path('sb-norole'), { body: { rules: [roleConfig().rules[1]] } });
    expect(await refused(roleConfig(), 'sb-norole')).toEqual(named('aws-role'));
  });

  it('the apply-time check of a service-account key: token_uri must be Google or allowed by --gcp-token-uri-allow', async () => {
    const withUri = (uri: string) => ({
      rules: [
        {
          name: 'gcp',
          type: 'gcp',
          gcp: {
            service_account_json: { type: 'opaque', value: JSON.stringify({ ...JSON.parse(SA), token_uri: uri }) },
            scopes: [SCOPE],
          },
        },
      ],
    });
    expect(
      (await rig.call('PUT', path('sb-private'), { body: withUri('https://oauth2.private.test/token') })).status,
    ).toBe(201);
    const res = await rig.call('PUT', path('sb-elsewhere'), { body: withUri('https://oauth2.elsewhere.test/token') });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual([
      'rules[0].gcp.service_account_json: rule "gcp": "token_uri" is not Google\'s token endpoint (allow others with --gcp-token-uri-allow)',
    ]);
    noSecret(res.text);
    const notJson = await rig.call('PUT', path('sb-notjson'), {
      body: {
        rules: [
          {
            name: 'gcp',
            type: 'gcp',
            gcp: { service_account_json: { type: 'opaque', value: `{${CANARY_ID}` }, scopes: [SCOPE] },
          },
        ],
      },
    });
    expect(notJson.json.problems).toEqual([
      'rules[0].gcp.service_account_json: rule "gcp": is not JSON (a service-account key file)',
    ]);
    noSecret(notJson.text);
  });
});
