/**
 * The shared service as deployed: two `authproxy serve` replicas (real processes) sharing a real Redis, the
 * admin API on replica A, ext_proc asked on replica B. A PATCH through the SDK on A changes what B injects
 * within a second; a PATCH that omits an opaque value keeps it; one sandbox never gets another's credential.
 */
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthProxyClient, configureGithubProxy, opaqueSecret, workspaceSecret } from '../../src/sdk/index.js';
import { runCli, startCli } from '../helpers/cli.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';

const TOKEN = 'shared-admin-token-8c1f2a9b7d';
const CANARY_OPAQUE = 'canary-opaque-shared-3e91';
const CANARY_WS = 'canary-ws-shared-77f0';

describe('shared service: two replicas, one Redis, the admin API and the SDK', () => {
  let dir: TempDir;
  let redis: RedisServer;
  const replicas: Array<ReturnType<typeof startCli>> = [];
  let admin: AuthProxyClient;
  let clientA: grpc.Client;
  let clientB: grpc.Client;

  const injected = async (client: grpc.Client, sandbox: string, host: string, path = '/') =>
    setHeaders((await exchange(client, [requestHeaders(host, path)], { 'x-sandbox-id': sandbox })).responses[0]!);
  const auth = async (client: grpc.Client, sandbox: string, host = 'api.github.com', path = '/user') =>
    (await injected(client, sandbox, host, path)).authorization;
  const internalKey = async (client: grpc.Client, sandbox: string) =>
    (await injected(client, sandbox, 'internal.example.com'))['x-key'];

  beforeAll(async () => {
    dir = tempDir('authproxy-shared-');
    redis = await startRedis();
    runCli(['keys', 'init', '--dir', join(dir.path, 'keys')]);
    dir.dir('secrets');
    dir.file('secrets/OPENAI_API_KEY', `${CANARY_WS}\n`);
    dir.file('sandboxes.yaml', 'sandboxes: {}\n');
    dir.file('tokens', `# orchestrator\n${TOKEN}\n`);
    const adminPort = await freePort();
    for (const name of ['a', 'b']) {
      const args = [
        'serve',
        '--config',
        join(dir.path, 'sandboxes.yaml'),
        '--listen',
        `unix:${join(dir.path, `${name}.sock`)}`,
        '--secrets-dir',
        join(dir.path, 'secrets'),
        '--sealing-key',
        join(dir.path, 'keys/sealing.key'),
        '--signing-key',
        join(dir.path, 'keys/signing.key'),
        '--redis',
        redis.url,
        '--redis-prefix',
        'shared-test:',
        '--log-level',
        'debug',
        ...(name === 'a'
          ? ['--admin-listen', `127.0.0.1:${adminPort}`, '--admin-tokens', join(dir.path, 'tokens')]
          : []),
      ];
      const proc = startCli(args);
      replicas.push(proc);
      await eventually(
        () => proc.output().includes('authproxy serving') || proc.child.exitCode !== null,
        15_000,
        `replica ${name}`,
      );
      expect(proc.child.exitCode, proc.output()).toBeNull();
    }
    await eventually(() => replicas[0]!.output().includes('admin API serving'), 10_000, 'admin API');
    admin = new AuthProxyClient({ baseUrl: `http://127.0.0.1:${adminPort}`, token: TOKEN });
    clientA = extProcClient(`unix:${join(dir.path, 'a.sock')}`);
    clientB = extProcClient(`unix:${join(dir.path, 'b.sock')}`);
  }, 60_000);

  afterAll(async () => {
    clientA?.close();
    clientB?.close();
    for (const r of replicas) r.child.kill('SIGKILL');
    await redis?.close();
    dir?.cleanup();
  });

  it('a config PUT on replica A is injected by replica B, for that sandbox only', async () => {
    await admin.create('sb-1', {
      rules: [
        {
          name: 'openai',
          match_hosts: ['api.openai.com'],
          headers: [{ name: 'Authorization', ...workspaceSecret('Bearer {OPENAI_API_KEY}') }],
          env_vars: { OPENAI_API_KEY: 'proxy-injected' },
        },
        {
          name: 'internal',
          match_hosts: ['internal.example.com'],
          headers: [{ name: 'X-Key', ...opaqueSecret(CANARY_OPAQUE) }],
        },
      ],
    });
    await eventually(
      async () => (await auth(clientB, 'sb-1', 'api.openai.com', '/v1/models')) === `Bearer ${CANARY_WS}`,
      1000,
      'replica B within a second',
    );
    expect(await internalKey(clientB, 'sb-1')).toBe(CANARY_OPAQUE);
    expect(await auth(clientB, 'sb-2', 'api.openai.com', '/v1/models')).toBeUndefined();
    expect(await auth(clientB, 'sb-1 ', 'api.openai.com', '/v1/models')).toBeUndefined();
    expect(await admin.env('sb-1')).toEqual({ OPENAI_API_KEY: 'proxy-injected' });
  });

  it('configureGithubProxy refreshes the GitHub token on every replica within a second and keeps other opaque values', async () => {
    for (const token of ['ghs_first_token_111', 'ghs_second_token_222']) {
      await configureGithubProxy(admin, 'sb-1', token);
      await eventually(
        async () => (await auth(clientB, 'sb-1')) === `Bearer ${token}`,
        1000,
        `replica B to inject ${token}`,
      );
      expect(await auth(clientA, 'sb-1')).toBe(`Bearer ${token}`);
    }
    expect(await internalKey(clientB, 'sb-1')).toBe(CANARY_OPAQUE);
  });

  it('reads never contain an opaque value', async () => {
    const view = await admin.get('sb-1');
    const text = JSON.stringify(view);
    expect(text).not.toContain(CANARY_OPAQUE);
    expect(text).not.toContain('ghs_second_token_222');
    expect(text).not.toContain(CANARY_WS);
    expect(text).toContain('"is_set":true');
  });

  it('a DELETE stops injection on every replica', async () => {
    await admin.delete('sb-1');
    await eventually(async () => (await auth(clientB, 'sb-1')) === undefined, 1000, 'replica B to drop sb-1');
  });

  it("no secret reaches either replica's logs", () => {
    for (const r of replicas) {
      const out = r.output();
      expect(out).toContain('"msg":"decision"');
      for (const canary of [CANARY_OPAQUE, CANARY_WS, 'ghs_first_token_111', 'ghs_second_token_222', TOKEN])
        expect(out).not.toContain(canary);
    }
    expect(replicas[0]!.output()).toContain('"msg":"audit"');
  });
});
