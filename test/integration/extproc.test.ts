import { statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';

const CANARY = 'canary-ext-proc-7f3a9c';

describe('ext_proc server over real gRPC', () => {
  let dir: TempDir;
  let service: Service;
  let client: grpc.Client;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  const logs = captureLogs('debug');

  beforeAll(async () => {
    dir = tempDir();
    callbacks = await startCallbackServer(answer({ Authorization: `Bearer cb-${CANARY}` }));
    const secrets = dir.dir('secrets');
    dir.file('secrets/TOKEN', `${CANARY}\n`);
    const config = dir.file(
      'config.yaml',
      `
rules:
  - name: github-api
    match_hosts: ["api.github.com"]
    match_paths: ["/repos/*", "/user"]
    headers:
      - { name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }
      - { name: X-Trace, type: plaintext, value: "on" }
callbacks:
  - match_hosts: ["api.example.com"]
    url: "${callbacks.url}"
    ttl_seconds: 60
  - match_hosts: ["broken.example.com"]
    url: "${callbacks.base}/fails"
    ttl_seconds: 60
access_control:
  deny_list: ["evil.example.org"]
`,
    );
    service = await startService(
      {
        config,
        secretsDir: secrets,
        listen: `unix:${join(dir.path, 'ext.sock')}`,
        sandboxId: 'sb-default',
        egressAllowCidrs: '127.0.0.0/8',
      },
      logs.log,
    );
    client = extProcClient(service.address);
  });

  afterAll(async () => {
    client?.close();
    await service?.close();
    await callbacks?.close();
    dir?.cleanup();
  });

  it('injects a matching rule with raw_value only, OVERWRITE_IF_EXISTS_OR_ADD and append unset', async () => {
    const { responses, status } = await exchange(client, [
      requestHeaders('api.github.com', '/repos/a/b', { authorization: 'placeholder', 'proxy-authorization': 'x' }),
    ]);
    expect(status.code).toBe(grpc.status.OK);
    expect(responses).toHaveLength(1);
    const mutation = responses[0]!.request_headers!.response!.header_mutation!;
    expect(setHeaders(responses[0]!)).toEqual({ authorization: `Bearer ${CANARY}`, 'x-trace': 'on' });
    for (const h of mutation.set_headers!) {
      expect(h.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
      expect(h.append).toBeUndefined();
      expect(h.header.value ?? '').toBe('');
    }
    expect(mutation.remove_headers).toEqual(['proxy-authorization']);
  });

  it('passes a path outside match_paths untouched but still strips Proxy-Authorization', async () => {
    const { responses } = await exchange(client, [requestHeaders('api.github.com', '/orgs/x')]);
    expect(setHeaders(responses[0]!)).toEqual({});
    expect(responses[0]!.request_headers!.response!.header_mutation!.remove_headers).toEqual(['proxy-authorization']);
  });

  it('refuses a denied host with an ImmediateResponse 403', async () => {
    const { responses } = await exchange(client, [requestHeaders('evil.example.org', '/')]);
    expect(responses[0]!.immediate_response!.status.code).toBe('Forbidden');
    expect(responses[0]!.request_headers).toBeUndefined();
  });

  it('refuses cleartext http to a credentialed host with 403 and no credential', async () => {
    const { responses } = await exchange(client, [requestHeaders('api.github.com', '/user', {}, 'http')]);
    expect(responses[0]!.immediate_response!.status.code).toBe('Forbidden');
    expect(JSON.stringify(responses)).not.toContain(CANARY);
  });

  it('resolves a callback and sends the sandbox id from gRPC metadata', async () => {
    const { responses } = await exchange(client, [requestHeaders('api.example.com', '/v1')], {
      'x-sandbox-id': 'sb-42',
    });
    expect(setHeaders(responses[0]!)).toEqual({ authorization: `Bearer cb-${CANARY}` });
    const last = callbacks.calls.at(-1)!;
    expect(JSON.parse(last.body)).toEqual({
      host: 'api.example.com',
      port: 443,
      identity: { tenant_id: 'default', sandbox_id: 'sb-42' },
    });
  });

  it('answers 502 "callback resolution failed" when a callback fails', async () => {
    callbacks.set((req, res, body) =>
      req.url === '/fails'
        ? res.writeHead(500).end()
        : answer({ Authorization: `Bearer cb-${CANARY}` })(req, res, body),
    );
    const { responses } = await exchange(client, [requestHeaders('broken.example.com', '/')]);
    expect(responses[0]!.immediate_response!.status.code).toBe('BadGateway');
    expect(Buffer.from(responses[0]!.immediate_response!.body).toString()).toBe('callback resolution failed');
  });

  it('gives no credential when the sandbox id metadata is repeated (ambiguous)', async () => {
    const { responses } = await exchange(client, [requestHeaders('api.github.com', '/user')], {
      'x-sandbox-id': ['a', 'b'],
    });
    expect(setHeaders(responses[0]!)).toEqual({});
  });

  it('gives no credential when :authority is repeated', async () => {
    const msg = requestHeaders('api.github.com', '/user');
    msg.request_headers.headers.headers.push({ key: ':authority', raw_value: Buffer.from('other.example') });
    const { responses } = await exchange(client, [msg]);
    expect(setHeaders(responses[0]!)).toEqual({});
  });

  it('answers a message it never asked for with CONTINUE of the same kind', async () => {
    const { responses, status } = await exchange(client, [{ response_headers: { headers: { headers: [] } } }]);
    expect(status.code).toBe(grpc.status.OK);
    expect(responses[0]!.response_headers).toBeDefined();
  });

  it('ends a stream with INVALID_ARGUMENT for a message with nothing set', async () => {
    const { status } = await exchange(client, [{}]);
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('serves many concurrent streams', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        exchange(client, [requestHeaders('api.github.com', i % 2 ? '/user' : '/nope')]),
      ),
    );
    results.forEach(({ responses, status }, i) => {
      expect(status.code).toBe(grpc.status.OK);
      expect(setHeaders(responses[0]!).authorization).toBe(i % 2 ? `Bearer ${CANARY}` : undefined);
    });
  });

  it('reports SERVING on grpc.health.v1', async () => {
    const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const health = new pkg.grpc.health.v1.Health(service.address, grpc.credentials.createInsecure()) as unknown as {
      check(req: object, cb: (err: Error | null, res: { status: string }) => void): void;
      close(): void;
    };
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      health.check({ service: 'envoy.service.ext_proc.v3.ExternalProcessor' }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    health.close();
    expect(res.status).toBe('SERVING');
  });

  it('creates its Unix socket with mode 0600', () => {
    expect(statSync(service.address.slice('unix:'.length)).mode & 0o777).toBe(0o600);
  });

  it('logs one debug line per decision and never a secret value', () => {
    const decisions = logs.lines().filter((l) => l.msg === 'decision');
    expect(decisions.some((l) => l.outcome === 'inject' && l.rule === 'github-api')).toBe(true);
    expect(logs.text()).not.toContain(CANARY);
  });
});
