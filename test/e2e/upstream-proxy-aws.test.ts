/**
 * An `aws: {role_arn}` rule behind `--upstream-proxy`, through a real Envoy: authproxy's own AssumeRole call
 * (the AWS SDK's NodeHttpHandler with the tunnelling https Agent) and the sandbox's re-signed S3 requests
 * both go through the loopback forward proxy; every AWS name resolves to a blackholed address for the
 * sidecar and authproxy, so nothing reaches the fake STS and S3 but through it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUpstreamProxy } from '../../src/egress/upstream-proxy.js';
import { createAwsFake } from '../helpers/aws-fake.js';
import { jsRoundTrip, type SandboxSide } from '../helpers/aws-clients.js';
import { envoyBinary } from '../helpers/envoy.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';

const bin = envoyBinary();
const HOSTS = ['sts.us-east-1.amazonaws.com', 's3.us-east-1.amazonaws.com', 'bucket.s3.us-east-1.amazonaws.com', 'dynamodb.us-east-1.amazonaws.com'];
const BASE = { accessKeyId: 'AKIAPROXYBASEKEY0001', secretAccessKey: 'proxyBaseSecret/upstreamProxyTest+000000000' };
const ROLE_ARN = 'arn:aws:iam::123456789012:role/sandbox-agents';

describe.skipIf(!bin)('AWS role auth through --upstream-proxy (real Envoy, direct route blocked)', () => {
  let rig: Rig;
  let proxy: ForwardProxy;
  const fake = createAwsFake(new Map([[BASE.accessKeyId, { secretAccessKey: BASE.secretAccessKey }]]), { roleArn: ROLE_ARN, externalId: 'default', tags: {}, callerKeyId: BASE.accessKeyId });

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
    expect(proxy.lines.filter((l) => l === `CONNECT sts.us-east-1.amazonaws.com:${port}`).length).toBeGreaterThanOrEqual(2);
    expect(proxy.lines.some((l) => /^CONNECT (bucket\.)?s3\.us-east-1\.amazonaws\.com:\d+$/.test(l))).toBe(true);
  });
});
