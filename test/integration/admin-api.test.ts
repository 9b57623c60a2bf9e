/**
 * The admin API against a real Redis-backed store and a real PolicyRegistry: create, read, patch, delete
 * and env round trips; opaque values sealed at rest, never read back, kept by PATCH; apply-time checks;
 * file-defined sandboxes; audit lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminRig, type AdminRig } from '../helpers/admin.js';
import { eventually } from '../helpers/fs.js';
import { seal } from '../../src/secrets/sealing.js';

const CANARY = 'canary-admin-opaque-7f3a9c';
const CALLBACK_CANARY = 'canary-admin-callback-key-41d2';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;

/** A config with one opaque rule header, one workspace_secret, one plaintext and an opaque callback header. */
function fullConfig(secret = CANARY) {
  return {
    rules: [
      {
        name: 'github-api',
        match_hosts: ['api.github.com'],
        match_paths: ['/repos/*'],
        headers: [
          { name: 'Authorization', type: 'opaque', value: `Bearer ${secret}` },
          { name: 'X-Trace', type: 'plaintext', value: 'on' },
        ],
        env_vars: { GH_TOKEN: 'proxy-injected' },
      },
      {
        name: 'openai',
        match_hosts: ['api.openai.com'],
        headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {OPENAI_API_KEY}' }],
        env_vars: { OPENAI_API_KEY: 'proxy-injected' },
      },
      {
        name: 'off',
        enabled: false,
        match_hosts: ['example.com'],
        headers: [{ name: 'X-Off', type: 'plaintext', value: '1' }],
        env_vars: { OFF_VAR: 'x' },
      },
    ],
    callbacks: [
      {
        match_hosts: ['api.example.com'],
        url: 'https://tokens.example.com/resolve',
        ttl_seconds: 300,
        request_headers: [{ name: 'X-Callback-Key', type: 'opaque', value: CALLBACK_CANARY }],
      },
    ],
    description: 'test sandbox',
  };
}

describe('admin API: sandbox configs in Redis', () => {
  let rig: AdminRig;

  beforeAll(async () => {
    rig = await startAdminRig({
      secrets: { OPENAI_API_KEY: 'sk-workspace-secret-value' },
      fileSandboxes: ['from-file'],
    });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('PUT creates (201), a second PUT replaces (200), with growing versions', async () => {
    const created = await rig.call('PUT', path('sb-round'), { body: fullConfig() });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ sandbox_id: 'sb-round', version: 1 });
    expect(created.headers.get('cache-control')).toBe('no-store');
    const replaced = await rig.call('PUT', path('sb-round'), { body: fullConfig() });
    expect(replaced.status).toBe(200);
    expect(replaced.json.version).toBe(2);
    expect(Date.parse(replaced.json.updated_at)).not.toBeNaN();
  });

  it('GET shows opaque headers as is_set only, templates unresolved, and no canary anywhere', async () => {
    await rig.call('PUT', path('sb-read'), { body: fullConfig() });
    const res = await rig.call('GET', path('sb-read'));
    expect(res.status).toBe(200);
    const config = res.json.proxy_config;
    expect(config.rules[0].headers).toEqual([
      { name: 'Authorization', type: 'opaque', is_set: true },
      { name: 'X-Trace', type: 'plaintext', value: 'on' },
    ]);
    expect(config.rules[1].headers[0]).toEqual({
      name: 'Authorization',
      type: 'workspace_secret',
      value: 'Bearer {OPENAI_API_KEY}',
    });
    expect(config.callbacks[0].request_headers).toEqual([{ name: 'X-Callback-Key', type: 'opaque', is_set: true }]);
    expect(config.rules[2].enabled).toBe(false);
    for (const canary of [CANARY, CALLBACK_CANARY, 'sk-workspace-secret-value', 'sealed:'])
      expect(res.text).not.toContain(canary);
  });

  it('stores opaque values sealed: Redis holds no plaintext canary, and the sealed value opens to it', async () => {
    await rig.call('PUT', path('sb-sealed'), { body: fullConfig() });
    const raw = await rig.rawStored('sb-sealed');
    expect(raw).toContain('sealed:');
    expect(raw).not.toContain(CANARY);
    expect(raw).not.toContain(CALLBACK_CANARY);
    const stored = (await rig.store.get('sb-sealed'))!;
    expect(rig.unsealer.unseal(stored.config.rules[0]!.headers![0]!.value)).toBe(`Bearer ${CANARY}`);
    expect(rig.unsealer.unseal(stored.config.callbacks[0]!.request_headers[0]!.value)).toBe(CALLBACK_CANARY);
  });

  it('PATCH without an opaque value keeps the stored one; with is_set: true too; the rest is replaced', async () => {
    await rig.call('PUT', path('sb-patch'), { body: fullConfig() });
    const before = (await rig.store.get('sb-patch'))!;
    const read = await rig.call('GET', path('sb-patch'));
    const body = read.json.proxy_config;
    // The GET view sent back as is: every opaque header has is_set: true and no value.
    body.rules[0].match_paths = ['/repos/*', '/user'];
    body.rules[0].headers[0] = { name: 'authorization', type: 'opaque' }; // no value, no is_set, other case
    body.rules.pop(); // remove "off"
    const res = await rig.call('PATCH', path('sb-patch'), { body });
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(before.version + 1);
    const after = (await rig.store.get('sb-patch'))!;
    expect(after.config.rules.map((r) => r.name)).toEqual(['github-api', 'openai']);
    expect(after.config.rules[0]!.match_paths).toEqual(['/repos/*', '/user']);
    expect(after.config.rules[0]!.headers![0]!.value).toBe(before.config.rules[0]!.headers![0]!.value);
    expect(rig.unsealer.unseal(after.config.rules[0]!.headers![0]!.value)).toBe(`Bearer ${CANARY}`);
    expect(rig.unsealer.unseal(after.config.callbacks[0]!.request_headers[0]!.value)).toBe(CALLBACK_CANARY);
  });

  it('PATCH keeps an opaque value when its rule moved, and replaces it when a value is sent', async () => {
    await rig.call('PUT', path('sb-move'), { body: fullConfig() });
    const body = (await rig.call('GET', path('sb-move'))).json.proxy_config;
    body.rules.reverse();
    body.callbacks[0].request_headers[0] = { name: 'X-Callback-Key', type: 'opaque', value: 'new-callback-key' };
    expect((await rig.call('PATCH', path('sb-move'), { body })).status).toBe(200);
    const after = (await rig.store.get('sb-move'))!;
    const github = after.config.rules.find((r) => r.name === 'github-api')!;
    expect(rig.unsealer.unseal(github.headers![0]!.value)).toBe(`Bearer ${CANARY}`);
    expect(rig.unsealer.unseal(after.config.callbacks[0]!.request_headers[0]!.value)).toBe('new-callback-key');
  });

  it('PATCH refuses a value-less opaque header with nothing stored to keep, naming the field', async () => {
    await rig.call('PUT', path('sb-nokeep'), { body: fullConfig() });
    const body = fullConfig();
    body.rules[0]!.name = 'renamed';
    (body.rules[0]!.headers![0] as { value?: string }).value = undefined;
    const res = await rig.call('PATCH', path('sb-nokeep'), { body: JSON.parse(JSON.stringify(body)) });
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual([
      expect.stringMatching(
        /^rules\[0\]\.headers\[0\]\.value: no stored value to keep for opaque header "Authorization" \(rule "renamed"\)/,
      ),
    ]);
  });

  it('PUT refuses a value-less opaque header (only PATCH keeps values)', async () => {
    const body = fullConfig();
    body.rules[0]!.headers![0] = { name: 'Authorization', type: 'opaque', is_set: true } as never;
    const res = await rig.call('PUT', path('sb-put-keep'), { body });
    expect(res.status).toBe(422);
    expect(res.json.problems[0]).toMatch(/^rules\[0\]\.headers\[0\]\.value: required/);
  });

  it('PATCH on a sandbox without a stored config is 404', async () => {
    const res = await rig.call('PATCH', path('sb-missing'), { body: fullConfig() });
    expect(res.status).toBe(404);
    expect(res.json.error).toMatch(/no proxy_config stored/);
  });

  it('accepts a well-formed sealed value as is and refuses a malformed one', async () => {
    const sealed = seal(CANARY, rig.unsealer.publicKey(), {
      sandbox: 'sb-presealed',
      target: { hosts: ['a.example.com'] },
    });
    const body = {
      rules: [
        {
          name: 'r',
          match_hosts: ['a.example.com'],
          headers: [{ name: 'Authorization', type: 'opaque', value: sealed }],
        },
      ],
    };
    expect((await rig.call('PUT', path('sb-presealed'), { body })).status).toBe(201);
    expect((await rig.store.get('sb-presealed'))!.config.rules[0]!.headers![0]!.value).toBe(sealed);
    body.rules[0]!.headers![0]!.value = 'sealed:not-base64!';
    const bad = await rig.call('PUT', path('sb-presealed'), { body });
    expect(bad.status).toBe(422);
    expect(bad.json.problems).toEqual([
      expect.stringMatching(/^rules\[0\]\.headers\[0\]\.value: is not a valid sealed value/),
    ]);
  });

  it('a missing workspace secret is a 422 naming the rule, header and key; nothing is stored', async () => {
    const body = {
      rules: [
        {
          name: 'anthropic',
          match_hosts: ['api.anthropic.com'],
          headers: [{ name: 'x-api-key', type: 'workspace_secret', value: '{ANTHROPIC_API_KEY}' }],
        },
      ],
    };
    const res = await rig.call('PUT', path('sb-nosecret'), { body });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('invalid proxy_config');
    expect(res.json.problems).toEqual([
      expect.stringMatching(
        /^rules\[0\]\.headers\[0\]\.value: .*"anthropic".*"x-api-key".*workspace secret "ANTHROPIC_API_KEY" is not set$/,
      ),
    ]);
    expect(await rig.store.get('sb-nosecret')).toBeUndefined();
  });

  it('GET env returns the env_vars of enabled rules only', async () => {
    await rig.call('PUT', path('sb-env'), { body: fullConfig() });
    const res = await rig.call('GET', '/v1/sandboxes/sb-env/env');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      sandbox_id: 'sb-env',
      version: 1,
      env_vars: { GH_TOKEN: 'proxy-injected', OPENAI_API_KEY: 'proxy-injected' },
    });
    expect((await rig.call('GET', '/v1/sandboxes/sb-env-none/env')).status).toBe(404);
  });

  it('DELETE answers 204, then 404; GET after it is 404', async () => {
    await rig.call('PUT', path('sb-del'), { body: fullConfig() });
    const del = await rig.call('DELETE', path('sb-del'));
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expect((await rig.call('DELETE', path('sb-del'))).status).toBe(404);
    expect((await rig.call('GET', path('sb-del'))).status).toBe(404);
    expect(await rig.store.get('sb-del')).toBeUndefined();
  });

  it('a sandbox defined in the mounted config file cannot be written (409) and nothing is stored', async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const res = await rig.call(method, path('from-file'), method === 'DELETE' ? {} : { body: fullConfig() });
      expect(res.status, method).toBe(409);
      expect(res.json.error).toMatch(/config file/);
    }
    expect(await rig.store.get('from-file')).toBeUndefined();
    expect((await rig.call('GET', path('from-file'))).json.error).toMatch(/defined in the config file/);
  });

  it('a config written through the API is applied by a registry following the store, opaque value unsealed', async () => {
    await rig.registry.start(60_000);
    await rig.call('PUT', path('sb-applied'), { body: fullConfig('canary-applied-4410') });
    await eventually(() => rig.registry.policyFor('sb-applied') !== undefined, 5000, 'the registry to load sb-applied');
    const policy = rig.registry.policyFor('sb-applied')!;
    expect(policy.rules.map((r) => r.name)).toEqual(['github-api', 'openai']);
    expect(policy.rules[0]!.headers![0]!.value).toBe('Bearer canary-applied-4410');
    expect(policy.rules[1]!.headers![0]!.value).toBe('Bearer sk-workspace-secret-value');
    expect(policy.callbacks[0]!.requestHeaders[0]!.value).toBe(CALLBACK_CANARY);
  });

  it('writes one audit line per change, naming rules and token id, never a value or token', async () => {
    const before = rig.logs.lines().length;
    await rig.call('PUT', path('sb-audit'), { body: fullConfig() });
    const body = (await rig.call('GET', path('sb-audit'))).json.proxy_config;
    body.rules[1].match_paths = ['/v1/*'];
    body.rules.splice(2, 1);
    body.rules.push({
      name: 'added',
      match_hosts: ['b.example.com'],
      headers: [{ name: 'X-New', type: 'opaque', value: CANARY }],
    });
    await rig.call('PATCH', path('sb-audit'), { body });
    await rig.call('DELETE', path('sb-audit'));
    const audits = rig.logs
      .lines()
      .slice(before)
      .filter((l) => l.msg === 'audit');
    expect(audits.map((a) => a.action)).toEqual(['create', 'patch', 'delete']);
    expect(audits[0]).toMatchObject({
      level: 30,
      sandbox: 'sb-audit',
      version: 1,
      rules_added: ['github-api', 'openai', 'off'],
      callbacks_changed: true,
    });
    expect(audits[1]).toMatchObject({
      version: 2,
      rules_added: ['added'],
      rules_removed: ['off'],
      rules_changed: ['openai'],
      callbacks_changed: false,
    });
    expect(audits[2]).toMatchObject({ rules_removed: ['github-api', 'openai', 'added'] });
    expect(audits[0]!.actor).toMatch(/^[0-9a-f]{8}$/);
    const text = rig.logs.text();
    for (const secret of [
      CANARY,
      CALLBACK_CANARY,
      'sk-workspace-secret-value',
      'admin-token-0123456789abcdef',
      'sealed:',
    ])
      expect(text).not.toContain(secret);
  });
});
