/**
 * The TypeScript SDK against the real admin API (real Redis, real HTTP): every client method, the header
 * helpers, and the GitHub token refresh keeping other opaque values.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthProxyApiError,
  AuthProxyClient,
  configureGithubProxy,
  GITHUB_API_RULE,
  GITHUB_GIT_RULE,
  githubProxyRules,
  mergeGithubRules,
  opaqueSecret,
  plaintext,
  workspaceSecret,
} from '../../src/sdk/index.js';
import { ADMIN_TOKEN, SCOPED_TOKEN, startAdminRig, type AdminRig } from '../helpers/admin.js';

const CANARY = 'canary-sdk-opaque-2b7e11';
const basic = (token: string) => `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;

describe('SDK against the admin API', () => {
  let rig: AdminRig;
  let client: AuthProxyClient;
  beforeAll(async () => {
    rig = await startAdminRig({ secrets: { OPENAI_API_KEY: 'sk-sdk-workspace' } });
    client = new AuthProxyClient({ baseUrl: `${rig.url}/`, token: ADMIN_TOKEN });
  });
  afterAll(async () => {
    await rig?.close();
  });

  const unsealedHeader = async (id: string, rule: string) => {
    const stored = (await rig.store.get(id))!;
    return rig.unsealer.unseal(stored.config.rules.find((r) => r.name === rule)!.headers![0]!.value);
  };

  it('create, get, replace, patch, env and delete round trip', async () => {
    const config = {
      rules: [
        {
          name: 'openai',
          match_hosts: ['api.openai.com'],
          headers: [{ name: 'Authorization', ...workspaceSecret('Bearer {OPENAI_API_KEY}') }],
          env_vars: { OPENAI_API_KEY: 'proxy-injected' },
        },
        {
          name: 'internal',
          match_hosts: ['api.internal.example'],
          headers: [
            { name: 'X-Key', ...opaqueSecret(CANARY) },
            { name: 'X-Env', ...plaintext('prod') },
          ],
        },
      ],
    };
    const created = await client.create('sb-sdk', config);
    expect(created).toMatchObject({ sandbox_id: 'sb-sdk', version: 1 });
    const read = await client.get('sb-sdk');
    expect(read.proxy_config.rules[1]!.headers).toEqual([
      { name: 'X-Key', type: 'opaque', is_set: true },
      { name: 'X-Env', type: 'plaintext', value: 'prod' },
    ]);
    expect(JSON.stringify(read)).not.toContain(CANARY);
    expect((await client.replace('sb-sdk', config)).version).toBe(2);
    const patched = await client.patch('sb-sdk', { ...read.proxy_config, description: 'patched' });
    expect(patched).toMatchObject({ version: 3, proxy_config: { description: 'patched' } });
    expect(await unsealedHeader('sb-sdk', 'internal')).toBe(CANARY);
    expect(await client.env('sb-sdk')).toEqual({ OPENAI_API_KEY: 'proxy-injected' });
    expect(await client.delete('sb-sdk')).toBe(true);
    expect(await client.delete('sb-sdk')).toBe(false);
  });

  it('throws AuthProxyApiError with status and field-named problems', async () => {
    const err = await client
      .create('sb-bad', { rules: [{ name: 'r', match_hosts: ['*.com'], headers: [{ name: 'X', ...plaintext('v') }] }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthProxyApiError);
    expect((err as AuthProxyApiError).status).toBe(422);
    expect((err as AuthProxyApiError).problems).toEqual([
      expect.stringMatching(/^rules\[0\]\.match_hosts\[0\]: .*too broad/),
    ]);
    expect((err as Error).message).toMatch(/^422 invalid proxy_config: rules\[0\]\.match_hosts\[0\]/);
    const missing = await client.get('sb-none').catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404 });
    const wrong = new AuthProxyClient({ baseUrl: rig.url, token: 'not-a-valid-token-at-all' });
    const unauthorized = await wrong.get('sb-none').catch((e: unknown) => e);
    expect(unauthorized).toMatchObject({ status: 401, error: 'invalid bearer token' });
    expect((unauthorized as Error).message).not.toContain('not-a-valid-token-at-all');
    const scoped = new AuthProxyClient({ baseUrl: rig.url, token: SCOPED_TOKEN });
    expect(await scoped.get('sb-other').catch((e: unknown) => e)).toMatchObject({ status: 403 });
  });

  it('configureGithubProxy creates a config when the sandbox has none', async () => {
    const res = await configureGithubProxy(client, 'sb-gh-new', 'ghs_first');
    expect(res.version).toBe(1);
    expect(res.proxy_config.rules.map((r) => r.name)).toEqual([GITHUB_API_RULE, GITHUB_GIT_RULE]);
    expect(await unsealedHeader('sb-gh-new', GITHUB_API_RULE)).toBe('Bearer ghs_first');
    expect(await unsealedHeader('sb-gh-new', GITHUB_GIT_RULE)).toBe(basic('ghs_first'));
    expect(await client.env('sb-gh-new')).toEqual({ GH_TOKEN: 'proxy-injected', GITHUB_TOKEN: 'proxy-injected' });
  });

  it('configureGithubProxy refreshes the token and keeps every other rule and opaque value', async () => {
    await client.create('sb-gh', {
      rules: [
        {
          name: 'internal',
          match_hosts: ['api.internal.example'],
          headers: [{ name: 'X-Key', ...opaqueSecret(CANARY) }],
        },
      ],
      callbacks: [
        {
          match_hosts: ['cb.example.com'],
          url: 'https://cb.example.com/r',
          ttl_seconds: 60,
          request_headers: [{ name: 'X-Cb', ...opaqueSecret(`${CANARY}-cb`) }],
        },
      ],
    });
    await configureGithubProxy(client, 'sb-gh', 'ghs_one');
    const first = (await rig.store.get('sb-gh'))!;
    expect(first.config.rules.map((r) => r.name)).toEqual([GITHUB_API_RULE, GITHUB_GIT_RULE, 'internal']);
    const refreshed = await configureGithubProxy(client, 'sb-gh', 'ghs_two');
    expect(refreshed.version).toBe(3);
    expect(refreshed.proxy_config.rules.map((r) => r.name)).toEqual([GITHUB_API_RULE, GITHUB_GIT_RULE, 'internal']);
    expect(await unsealedHeader('sb-gh', GITHUB_API_RULE)).toBe('Bearer ghs_two');
    expect(await unsealedHeader('sb-gh', GITHUB_GIT_RULE)).toBe(basic('ghs_two'));
    expect(await unsealedHeader('sb-gh', 'internal')).toBe(CANARY);
    const stored = (await rig.store.get('sb-gh'))!;
    expect(rig.unsealer.unseal(stored.config.callbacks[0]!.request_headers[0]!.value)).toBe(`${CANARY}-cb`);
    expect(stored.config.rules[2]).toEqual(first.config.rules[2]);
    const audit = rig.logs
      .lines()
      .filter((l) => l.msg === 'audit' && l.sandbox === 'sb-gh')
      .at(-1)!;
    expect(audit).toMatchObject({
      action: 'patch',
      rules_changed: [GITHUB_API_RULE, GITHUB_GIT_RULE],
      rules_added: [],
      callbacks_changed: false,
    });
    expect(rig.logs.text()).not.toMatch(/ghs_one|ghs_two/);
  });

  it('the package entry point exports the SDK (dist/sdk/index.js, built by npm test)', async () => {
    expect(existsSync(new URL('../../dist/sdk/index.js', import.meta.url))).toBe(true);
    const pkg = await import('authproxy');
    expect(typeof pkg.AuthProxyClient).toBe('function');
    expect(typeof pkg.configureGithubProxy).toBe('function');
  });
});

describe('SDK helpers', () => {
  it('workspaceSecret turns a key into a placeholder and passes templates through', () => {
    expect(workspaceSecret('GITHUB_TOKEN')).toEqual({ type: 'workspace_secret', value: '{GITHUB_TOKEN}' });
    expect(workspaceSecret('Bearer {GITHUB_TOKEN}')).toEqual({
      type: 'workspace_secret',
      value: 'Bearer {GITHUB_TOKEN}',
    });
    expect(() => workspaceSecret('Bearer x')).toThrow(TypeError);
    expect(plaintext('v')).toEqual({ type: 'plaintext', value: 'v' });
    expect(opaqueSecret('s')).toEqual({ type: 'opaque', value: 's' });
  });

  it('githubProxyRules builds the API (Bearer) and git (Basic x-access-token) rules', () => {
    const [api, git] = githubProxyRules('ghs_abc');
    expect(api).toMatchObject({
      name: 'github-api',
      match_hosts: ['api.github.com'],
      headers: [{ name: 'Authorization', type: 'opaque', value: 'Bearer ghs_abc' }],
    });
    expect(git).toMatchObject({
      name: 'github-git',
      match_hosts: ['github.com', '*.github.com'],
      headers: [{ name: 'Authorization', type: 'opaque', value: basic('ghs_abc') }],
    });
    expect(() => githubProxyRules('a b')).toThrow(TypeError);
    expect(() => githubProxyRules('')).toThrow(TypeError);
  });

  it('mergeGithubRules replaces same-named rules where the first of them was, API rule first', () => {
    const rule = (name: string) => ({
      name,
      match_hosts: [`${name}.example.com`],
      headers: [{ name: 'X', type: 'plaintext' as const, value: name }],
    });
    const github = githubProxyRules('t');
    expect(
      mergeGithubRules([rule('a'), rule('github-git'), rule('b'), rule('github-api')], github).map((r) => r.name),
    ).toEqual(['a', 'github-api', 'github-git', 'b']);
    expect(mergeGithubRules([rule('a')], github).map((r) => r.name)).toEqual(['github-api', 'github-git', 'a']);
  });
});
