/**
 * Shared-service figures: memory held by compiled per-sandbox configs (10,000 sandboxes x 5 rules), and
 * how long a config write on one replica takes to be served by another (store write -> pub/sub ->
 * recompile), over a real redis-server.
 */
import type { Redis } from 'ioredis';
import { createRedisClient } from '../src/callbacks/redis-url.js';
import { validateConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { PolicyRegistry } from '../src/sandboxes/registry.js';
import { RedisSandboxStore } from '../src/sandboxes/store.js';
import { compilePolicy } from '../src/config/compile.js';
import type { CompiledPolicy } from '../src/policy/compiled.js';
import { startRedis } from '../test/helpers/redis.js';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer } from '../src/admin/server.js';
import { AdminTokens } from '../src/admin/tokens.js';
import { startService } from '../src/serve/service.js';
import { generateSealingKeys } from '../src/secrets/sealing.js';
import { AuthProxyClient, configureGithubProxy } from '../src/sdk/index.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../test/helpers/extproc-client.js';
import { fmt, percentile, table } from './stats.js';

const log = createLogger('silent');
const secrets = new Map([
  ['GITHUB_TOKEN', 'ghp_bench_0123456789'],
  ['OPENAI_API_KEY', 'sk-bench-0123456789'],
]);

function sandboxConfig(i: number, token = 'GITHUB_TOKEN') {
  return validateConfig(
    {
      rules: [
        {
          name: 'github-api',
          match_hosts: ['api.github.com'],
          match_paths: ['/repos/*', '/user'],
          headers: [{ name: 'Authorization', type: 'workspace_secret', value: `Bearer {${token}}` }],
        },
        {
          name: 'github-git',
          match_hosts: ['github.com', '*.github.com'],
          headers: [{ name: 'Authorization', type: 'plaintext', value: `Basic c2FuZGJveC0ke2l9` }],
        },
        {
          name: 'openai',
          match_hosts: ['api.openai.com'],
          headers: [{ name: 'Authorization', type: 'workspace_secret', value: 'Bearer {OPENAI_API_KEY}' }],
        },
        {
          name: 'anthropic',
          match_hosts: ['api.anthropic.com'],
          headers: [
            { name: 'x-api-key', type: 'plaintext', value: `key-${i}` },
            { name: 'anthropic-version', type: 'plaintext', value: '2023-06-01' },
          ],
        },
        {
          name: 'internal',
          match_hosts: [`svc${i}.internal.example.com`],
          match_paths: ['/api/*'],
          headers: [{ name: 'X-Api-Key', type: 'plaintext', value: `k${i}` }],
        },
      ],
    },
    'bench',
  );
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

function memoryRow(count: number): Array<string | number> {
  const before = heapMb();
  const held: CompiledPolicy[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) held.push(compilePolicy(sandboxConfig(i), { secrets, unsealer: undefined }));
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = heapMb();
  const total = after - before;
  if (held.length !== count) throw new Error('unreachable');
  return [fmt(count), 5, fmt(total, 1), fmt((total * 1024) / count, 2), fmt(compileMs, 0)];
}

async function propagation(samples: number): Promise<{ p50: number; p99: number; max: number }> {
  const redis = await startRedis();
  const prefix = `bench${process.pid}:`;
  const file = { file: { default: undefined, sandboxes: new Map() }, secrets, fingerprint: '' };
  const clients: Redis[] = [];
  const replica = async () => {
    const client = createRedisClient(redis.url) as Redis;
    clients.push(client);
    const registry = new PolicyRegistry(file, undefined, log, new RedisSandboxStore(client, prefix));
    await registry.start(60_000);
    return registry;
  };
  const a = await replica();
  const b = await replica();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const token = i % 2 ? 'GITHUB_TOKEN' : 'OPENAI_API_KEY';
    const expected = `Bearer ${secrets.get(token)}`;
    const t0 = process.hrtime.bigint();
    await a.store!.put('sb-bench', sandboxConfig(i, token));
    while (b.policyFor('sb-bench')?.rules[0]?.headers[0]?.value !== expected) await new Promise((r) => setImmediate(r));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await a.close();
  await b.close();
  for (const c of clients) c.disconnect();
  await redis.close();
  times.sort((x, y) => x - y);
  return { p50: percentile(times, 50), p99: percentile(times, 99), max: times[times.length - 1]! };
}

/**
 * The whole path a user sees: PATCH through the SDK to replica A's admin API, until replica B's ext_proc
 * answer (asked over gRPC, as Envoy does) carries the new credential.
 */
async function patchPropagation(samples: number): Promise<{ p50: number; p99: number; max: number }> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-bench-'));
  const config = join(dir, 'sandboxes.yaml');
  writeFileSync(config, 'sandboxes: {}\n');
  const keys = generateSealingKeys();
  writeFileSync(join(dir, 'sealing.key'), keys.privatePem);
  const common = {
    config,
    sandboxId: 'default',
    redis: redis.url,
    redisPrefix: `bench${process.pid}:`,
    sealingKey: join(dir, 'sealing.key'),
  };
  const a = await startService({ ...common, listen: `unix:${join(dir, 'a.sock')}` }, log);
  const b = await startService({ ...common, listen: `unix:${join(dir, 'b.sock')}` }, log);
  const token = 'bench-admin-token-0123456789';
  const admin = await startAdminServer({
    listen: '127.0.0.1:0',
    tokens: AdminTokens.fromText(`${token}\n`),
    store: a.policy.store!,
    registry: a.policy,
    sealPublicKey: createPublicKey(keys.privatePem),
    log,
  });
  const sdk = new AuthProxyClient({ baseUrl: `http://${admin.address}`, token });
  const grpcB = extProcClient(b.address);
  const injectedOnB = async () =>
    setHeaders(
      (await exchange(grpcB, [requestHeaders('api.github.com', '/user')], { 'x-sandbox-id': 'sb-bench' }))
        .responses[0]!,
    ).authorization;
  await configureGithubProxy(sdk, 'sb-bench', 'ghs_warmup');
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const value = `ghs_bench_${i}`;
    const t0 = process.hrtime.bigint();
    await configureGithubProxy(sdk, 'sb-bench', value);
    while ((await injectedOnB()) !== `Bearer ${value}`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  grpcB.close();
  await admin.close();
  await a.close();
  await b.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((x, y) => x - y);
  return { p50: percentile(times, 50), p99: percentile(times, 99), max: times[times.length - 1]! };
}

export async function runSandboxBench(): Promise<string> {
  const gcNote = (globalThis as { gc?: unknown }).gc ? '' : ' (run with --expose-gc for exact figures)';
  const mem = table(
    `Memory of compiled sandbox configs${gcNote}`,
    ['sandboxes', 'rules each', 'heap MiB', 'KiB per sandbox', 'compile ms'],
    [memoryRow(1_000), memoryRow(10_000)],
  );
  const p = await propagation(100);
  const q = await patchPropagation(100);
  const prop = table(
    'Config change on replica A until replica B serves it (real redis-server, 100 changes)',
    ['path', 'p50 ms', 'p99 ms', 'max ms'],
    [
      ['store write -> B compiled', fmt(p.p50, 2), fmt(p.p99, 2), fmt(p.max, 2)],
      [
        'SDK configureGithubProxy (GET + PATCH) on A -> B injects (ext_proc)',
        fmt(q.p50, 2),
        fmt(q.p99, 2),
        fmt(q.max, 2),
      ],
    ],
  );
  return `${mem}\n${prop}`;
}
