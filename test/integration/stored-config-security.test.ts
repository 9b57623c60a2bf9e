/**
 * What a replica accepts from Redis (issue 12, section 3), with a real redis-server: a stored record's
 * authentication covers its version and place in history, so an older authenticated record put back is
 * refused (the replica keeps the last good config and logs it); `--callback-allow` and seal bindings are
 * checked again when a replica loads a stored config, not only by the admin API.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallbackPolicy } from '../../src/config/callback-policy.js';
import { createRedisClient } from '../../src/callbacks/redis-url.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { PolicyRegistry, type RegistryOptions } from '../../src/sandboxes/registry.js';
import { RedisSandboxStore } from '../../src/sandboxes/store.js';
import { generateSealingKeys, parsePrivateKey, seal, Unsealer } from '../../src/secrets/sealing.js';
import { eventually } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const KEY = Buffer.alloc(32, 7);
const PREFIX = `sec${process.pid}:`;
const secrets = new Map([
  ['T1', 'one'],
  ['T2', 'two'],
]);
const emptyFile = { file: { default: undefined, sandboxes: new Map() }, secrets, fingerprint: '' };
const keys = generateSealingKeys();
const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'test key'));
const config = (token: string, extra: object = {}) =>
  validateConfig(
    {
      rules: [
        {
          name: 'gh',
          match_hosts: ['api.github.com'],
          headers: [{ name: 'Authorization', type: 'workspace_secret', value: `Bearer {${token}}` }],
        },
      ],
      ...extra,
    },
    'test',
  );
const auth = (r: PolicyRegistry, id: string) => r.policyFor(id)?.rules[0]?.headers[0]?.value;

describe('stored configs: what a replica accepts from Redis', () => {
  let redis: RedisServer;
  let client: Redis;
  let store: RedisSandboxStore;
  const registries: PolicyRegistry[] = [];
  const replica = async (options: RegistryOptions = {}) => {
    const logs = captureLogs('debug');
    const registry = new PolicyRegistry(
      emptyFile,
      unsealer,
      logs.log,
      new RedisSandboxStore(createRedisClient(redis.url), PREFIX, KEY),
      undefined,
      options,
    );
    registries.push(registry);
    await registry.start(60_000);
    return { registry, logs };
  };
  const cfgKey = async (id: string) => (await client.keys(`${PREFIX}{sbx}:cfg:*:${id}`))[0]!;
  /** What someone with write access to Redis does: put a record (and its stamp) back. */
  const plant = async (id: string, raw: string) => {
    await client.set(await cfgKey(id), raw);
    await client.hset(`${PREFIX}{sbx}:versions`, id, raw.slice(0, raw.indexOf('\n')));
  };

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedisClient(redis.url) as Redis;
    store = new RedisSandboxStore(createRedisClient(redis.url), PREFIX, KEY);
    expect(await store.ready(3000)).toBe(true);
  });
  afterAll(async () => {
    for (const r of registries) {
      await r.close();
      await r.store?.close();
    }
    await store?.close();
    client?.disconnect();
    await redis?.close();
  });

  it('an older authenticated record replayed into Redis is refused; the last good config stays and it is logged', async () => {
    const { registry, logs } = await replica();
    await store.put('sb-replay', config('T1'));
    const old = await client.get(await cfgKey('sb-replay'));
    await store.put('sb-replay', config('T2'));
    await registry.resync();
    expect(auth(registry, 'sb-replay')).toBe('Bearer two');
    await plant('sb-replay', old!);
    await registry.refresh('sb-replay');
    await registry.resync();
    expect(auth(registry, 'sb-replay')).toBe('Bearer two');
    const refusals = logs.lines().filter((l) => String(l.msg).includes('older than one this replica applied'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 50, sandbox: 'sb-replay', version: 1 });
    // Passing the old record off as newer (a higher stamp) breaks its authentication.
    await plant('sb-replay', old!.replace(/^1-/, '99-'));
    await registry.refresh('sb-replay');
    expect(auth(registry, 'sb-replay')).toBe('Bearer two');
    expect(logs.text()).toContain('stored config failed authentication');
  });

  it('removing a sandbox from Redis first does not make its old record acceptable again', async () => {
    const { registry } = await replica();
    await store.put('sb-drop', config('T1'));
    const old = await client.get(await cfgKey('sb-drop'));
    await store.put('sb-drop', config('T2'));
    await registry.resync();
    const key = await cfgKey('sb-drop');
    await client.del(key);
    await client.hdel(`${PREFIX}{sbx}:versions`, 'sb-drop');
    await registry.resync();
    expect(registry.policyFor('sb-drop')).toBeUndefined();
    await client.set(key, old!);
    await client.hset(`${PREFIX}{sbx}:versions`, 'sb-drop', old!.slice(0, old!.indexOf('\n')));
    await registry.resync();
    expect(registry.policyFor('sb-drop')).toBeUndefined();
  });

  it('legitimate histories still apply: delete and create again, and a Redis that lost its data', async () => {
    const { registry } = await replica();
    await store.put('sb-life', config('T1'));
    await registry.resync();
    expect(await store.delete('sb-life')).toBe(true);
    await registry.resync();
    expect(registry.policyFor('sb-life')).toBeUndefined();
    const again = await store.put('sb-life', config('T2'));
    expect(again?.version).toBe(1);
    await registry.resync();
    expect(auth(registry, 'sb-life')).toBe('Bearer two');
    await client.flushall();
    await new Promise((r) => setTimeout(r, 5));
    await store.put('sb-life', config('T1'));
    await registry.resync();
    expect(auth(registry, 'sb-life')).toBe('Bearer one');
  });

  it('--callback-allow is checked again when a replica loads a stored config', async () => {
    const { registry, logs } = await replica({ callbackPolicy: createCallbackPolicy(['tokens.internal.example']) });
    const callback = (url: string) => ({ callbacks: [{ match_hosts: ['api.example.com'], url, ttl_seconds: 60 }] });
    await store.put('sb-cb', config('T1', callback('https://tokens.internal.example/resolve')));
    await registry.resync();
    expect(auth(registry, 'sb-cb')).toBe('Bearer one');
    // Written to Redis without the API (which would have refused it): the replica refuses it too.
    await store.put('sb-cb', config('T2', callback('https://evil.example/steal')));
    await store.put('sb-cb-meta', config('T2', callback('http://169.254.169.254/latest')));
    await registry.resync();
    expect(auth(registry, 'sb-cb')).toBe('Bearer one');
    expect(registry.policyFor('sb-cb-meta')).toBeUndefined();
    expect(logs.text()).toContain(
      'callbacks[0].url: host \\"evil.example\\" is not in the operator\'s callback allow-list',
    );
    expect(logs.text()).toContain(
      'callbacks[0].url: host \\"169.254.169.254\\" is a cloud metadata or link-local address',
    );
  });

  it("a sealed value written straight into another sandbox's record is refused when the replica applies it", async () => {
    const { registry, logs } = await replica();
    const forA = seal('Bearer canary-bound-store-2c1d', unsealer.publicKey(), {
      sandbox: 'sb-seal-a',
      target: { hosts: ['api.github.com'] },
    });
    const opaque = validateConfig(
      {
        rules: [
          {
            name: 'gh',
            match_hosts: ['api.github.com'],
            headers: [{ name: 'Authorization', type: 'opaque', value: forA }],
          },
        ],
      },
      'test',
    );
    await store.put('sb-seal-a', opaque);
    await store.put('sb-seal-b', opaque);
    await registry.resync();
    expect(auth(registry, 'sb-seal-a')).toBe('Bearer canary-bound-store-2c1d');
    expect(registry.policyFor('sb-seal-b')).toBeUndefined();
    // The refusal's log line can land a moment after resync() settles (it was empty once in CI): wait for it.
    const refusal = 'sealed value is bound to sandbox \\"sb-seal-a\\", not \\"sb-seal-b\\"';
    await eventually(() => logs.text().includes(refusal), 5_000, 'the refusal to be logged');
    expect(logs.text()).not.toContain('canary-bound-store');
  });

  it('a top-level config holding values sealed for one sandbox serves only that sandbox (--sandbox-id)', () => {
    const value = seal('Bearer canary-default-bound-88aa', unsealer.publicKey(), {
      sandbox: 'sb-side',
      target: { hosts: ['api.github.com'] },
    });
    const yaml = {
      rules: [
        { name: 'gh', match_hosts: ['api.github.com'], headers: [{ name: 'Authorization', type: 'opaque', value }] },
      ],
    };
    const policy = compilePolicy(validateConfig(yaml, 'file'), { secrets, unsealer, sandboxId: 'sb-side' });
    const registry = new PolicyRegistry(
      { file: { default: policy, sandboxes: new Map() }, secrets, fingerprint: '' },
      unsealer,
      captureLogs().log,
      undefined,
      undefined,
      { defaultSandboxId: 'sb-side' },
    );
    expect(registry.policyFor('sb-side')).toBe(policy);
    expect(registry.policyFor('sb-other')).toBeUndefined();
  });
});
