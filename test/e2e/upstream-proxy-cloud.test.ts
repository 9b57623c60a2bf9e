/**
 * Cloud rules behind `--upstream-proxy`, through a real Envoy: authproxy's own calls — AWS AssumeRole (the
 * AWS SDK's NodeHttpHandler) and Google token minting (google-auth-library), both with the tunnelling https
 * Agent — and the sandbox's requests go through the loopback forward proxy. Every name resolves to a
 * blackholed address for the sidecar and authproxy, so nothing reaches the fakes but through the proxy.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GCP_PLACEHOLDER_TOKEN } from '../../src/envoy/sandbox-env.js';
import { tempDir } from '../helpers/fs.js';
import { makeServiceAccount, startGcpFake, type GcpFake } from '../helpers/gcp-fake.js';
import { parseUpstreamProxy } from '../../src/egress/upstream-proxy.js';
import { createAwsFake } from '../helpers/aws-fake.js';
import { jsRoundTrip, type SandboxSide } from '../helpers/aws-clients.js';
import { envoyBinary } from '../helpers/envoy.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';

const bin = envoyBinary();
const HOSTS = [
  'sts.us-east-1.amazonaws.com',
  's3.us-east-1.amazonaws.com',
  'bucket.s3.us-east-1.amazonaws.com',
  'dynamodb.us-east-1.amazonaws.com',
];
const BASE = { accessKeyId: 'AKIAPROXYBASEKEY0001', secretAccessKey: 'proxyBaseSecret/upstreamProxyTest+000000000' };
const ROLE_ARN = 'arn:aws:iam::123456789012:role/sandbox-agents';

describe.skipIf(!bin)('AWS role auth through --upstream-proxy (real Envoy, direct route blocked)', () => {
  let rig: Rig;
  let proxy: ForwardProxy;
  const fake = createAwsFake(new Map([[BASE.accessKeyId, { secretAccessKey: BASE.secretAccessKey }]]), {
    roleArn: ROLE_ARN,
    externalId: 'default',
    tags: {},
    callerKeyId: BASE.accessKeyId,
  });

  beforeAll(async () => {
    proxy = await startForwardProxy(Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])));
    rig = await startRig({
      hosts: HOSTS,
      secrets: {},
      dnsAnswer: () => '198.51.100.7',
      upstreamHandler: (req, res) => fake.handler(req, res),
      serveArgs: ['--upstream-proxy', proxy.url],
      bootstrap: { upstreamProxy: parseUpstreamProxy(proxy.url) },
      authproxyEnv: ({ port, caFile }) => ({
        AWS_ACCESS_KEY_ID: BASE.accessKeyId,
        AWS_SECRET_ACCESS_KEY: BASE.secretAccessKey,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_EC2_METADATA_DISABLED: 'true',
        AUTHPROXY_AWS_STS_ENDPOINT: `https://sts.us-east-1.amazonaws.com:${port}`,
        NODE_EXTRA_CA_CERTS: caFile,
      }),
      config: () => `
rules:
  - name: aws-role
    type: aws
    aws: { role_arn: "${ROLE_ARN}" }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    await proxy?.close();
  });

  it('AssumeRole and the signed requests both go through the proxy', async () => {
    const side: SandboxSide = { proxyUrl: rig.proxyUrl, authproxyCa: rig.authproxyCa, port: rig.upstream.port };
    await jsRoundTrip(side, 'proxied.txt', 'through the corporate proxy');
    expect(fake.seen.filter((r) => r.action === 'AssumeRole').map((r) => r.ok)).toEqual([true]);
    expect(fake.seen.filter((r) => !r.ok)).toEqual([]);
    const port = rig.upstream.port;
    // Two tunnels to STS: authproxy's AssumeRole (it succeeded, and STS's name is blackholed for a direct
    // dial) and the sandbox's GetCallerIdentity through Envoy.
    expect(
      proxy.lines.filter((l) => l === `CONNECT sts.us-east-1.amazonaws.com:${port}`).length,
    ).toBeGreaterThanOrEqual(2);
    expect(proxy.lines.some((l) => /^CONNECT (bucket\.)?s3\.us-east-1\.amazonaws\.com:\d+$/.test(l))).toBe(true);
  });
});

describe.skipIf(!bin)('Google Cloud token minting through --upstream-proxy (real Envoy, direct route blocked)', () => {
  const dir = tempDir('authproxy-gcp-proxy-');
  let fake: GcpFake;
  let rig: Rig;
  let proxy: ForwardProxy;
  const scopes = ['https://www.googleapis.com/auth/cloud-platform'];

  beforeAll(async () => {
    fake = await startGcpFake(dir.path);
    const account = makeServiceAccount(fake.url);
    fake.accept(account, scopes);
    const hosts = ['storage.googleapis.com', fake.host];
    proxy = await startForwardProxy(Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])));
    rig = await startRig({
      hosts,
      secrets: { GCP_SA: account.json },
      dnsAnswer: () => '198.51.100.7',
      serveArgs: ['--upstream-proxy', proxy.url, '--gcp-token-uri-allow', new URL(fake.url).origin],
      bootstrap: { upstreamProxy: parseUpstreamProxy(proxy.url) },
      authproxyEnv: () => ({ NODE_EXTRA_CA_CERTS: fake.pki.caFile }),
      config: () => `
rules:
  - name: gcp
    type: gcp
    gcp: { service_account_json: { type: workspace_secret, value: "{GCP_SA}" }, scopes: ${JSON.stringify(scopes)} }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
    await proxy?.close();
    await fake?.close();
    dir.cleanup();
  });

  it('mints the token through the proxy and injects it', async () => {
    const url = rig.url('storage.googleapis.com', '/storage/v1/b');
    const { stdout } = await promisify(execFile)('curl', [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.authproxyCa,
      '-H',
      `Authorization: Bearer ${GCP_PLACEHOLDER_TOKEN}`,
      url,
    ]);
    const seen = (JSON.parse(stdout) as { headers: Record<string, string> }).headers.authorization;
    expect(seen).toMatch(/^Bearer /);
    expect(seen).not.toContain(GCP_PLACEHOLDER_TOKEN);
    expect(fake.calls.filter((c) => c.ok)).toHaveLength(1);
    expect(proxy.lines).toEqual(
      expect.arrayContaining([
        `CONNECT ${fake.host}:${new URL(fake.url).port}`,
        `CONNECT storage.googleapis.com:${rig.upstream.port}`,
      ]),
    );
  });
});
