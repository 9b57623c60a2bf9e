/**
 * AWS re-signing without Envoy: Authorization parsing, scope/host agreement, presigned pass-through,
 * chunk-signing refusal, the payload-hash choice, and re-signed requests checked by an independent SigV4
 * implementation (node:crypto, written from AWS's spec, not the signer authproxy uses).
 */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isPresigned, parseAuthorization, payloadChoice, scopeProblem } from '../../src/cloud/aws/sigv4.js';
import { resign } from '../../src/cloud/aws/resign.js';
import { AWS_REFUSALS, AwsSigner } from '../../src/cloud/aws/handler.js';
import { awsEndpoint } from '../../src/policy/provider-hosts.js';
import { Engine, type Outcome, type RequestExtras } from '../../src/engine/engine.js';
import { CallbackResolver } from '../../src/callbacks/resolver.js';
import { MemoryCredentialCache } from '../../src/callbacks/cache.js';
import { CallbackSigner } from '../../src/callbacks/signer.js';
import { createLogger } from '../../src/log.js';
import { policyFrom } from './support.js';

const REAL = { accessKeyId: 'AKIAREALKEY000000001', secretAccessKey: 'real/secret/KEY+for+the+unit+tests00000' };
const PLACEHOLDER_AUTH = (service: string, region = 'us-east-1', signed = 'host;x-amz-date') =>
  `AWS4-HMAC-SHA256 Credential=AKIAAUTHPROXYEXAMPLE/20250101/${region}/${service}/aws4_request, SignedHeaders=${signed}, Signature=${'a'.repeat(64)}`;

const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** SigV4 from the spec: canonical request, string to sign, derived key. */
function independentSignature(r: {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  signed: string[];
  payloadHash: string;
  amzDate: string;
  region: string;
  service: string;
  secret: string;
}): string {
  const uri =
    r.service === 's3'
      ? r.path
      : r.path
          .split('/')
          .map((seg) => rfc3986(seg))
          .join('/');
  const query = r.query
    .split('&')
    .filter(Boolean)
    .map((p) => p.split('=').map((x) => rfc3986(decodeURIComponent(x ?? ''))) as [string, string?])
    .map(([k, v = '']) => `${k}=${v}`)
    .sort()
    .join('&');
  const headers = r.signed.map((h) => `${h}:${r.headers[h]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const creq = [r.method, uri, query, headers, r.signed.join(';'), r.payloadHash].join('\n');
  const scope = `${r.amzDate.slice(0, 8)}/${r.region}/${r.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', r.amzDate, scope, hex(creq)].join('\n');
  let key: Buffer = hmac(`AWS4${r.secret}`, r.amzDate.slice(0, 8));
  for (const part of [r.region, r.service, 'aws4_request']) key = hmac(key, part);
  return createHmac('sha256', key).update(toSign).digest('hex');
}

const authParts = (value: string) =>
  /Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(value)!;

describe('SigV4 Authorization parsing', () => {
  it('reads credential scope and signed headers; refuses other schemes and malformed ones', () => {
    expect(parseAuthorization(PLACEHOLDER_AUTH('s3', 'eu-west-1', 'host;x-amz-content-sha256;x-amz-date'))).toEqual({
      accessKeyId: 'AKIAAUTHPROXYEXAMPLE',
      date: '20250101',
      region: 'eu-west-1',
      service: 's3',
      signedHeaders: ['host', 'x-amz-content-sha256', 'x-amz-date'],
    });
    expect(parseAuthorization(undefined)).toBeUndefined();
    expect(parseAuthorization('Bearer x')).toBeUndefined();
    expect(
      parseAuthorization(PLACEHOLDER_AUTH('s3').replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')),
    ).toBeUndefined();
    expect(parseAuthorization(PLACEHOLDER_AUTH('s3').replace('/aws4_request', '/aws5_request'))).toBeUndefined();
    expect(
      parseAuthorization(PLACEHOLDER_AUTH('s3').replace(`Signature=${'a'.repeat(64)}`, 'Signature=zz')),
    ).toBeUndefined();
    expect(parseAuthorization(`${PLACEHOLDER_AUTH('s3')}, Signature=${'b'.repeat(64)}`)).toBeUndefined();
    expect(
      parseAuthorization(
        `AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
      ),
    ).toBeUndefined();
  });

  it('recognises presigned URLs by their query', () => {
    expect(
      isPresigned('/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F...&X-Amz-Signature=abc'),
    ).toBe(true);
    expect(isPresigned('/k?x-amz-signature=abc')).toBe(true);
    expect(isPresigned('/k?list-type=2&prefix=X-Amz-Signature')).toBe(false);
    expect(isPresigned('/k')).toBe(false);
  });

  it('chooses the payload hash from x-amz-content-sha256', () => {
    const digest = hex('x');
    expect(payloadChoice([digest])).toEqual({ kind: 'given', value: digest });
    expect(payloadChoice(['UNSIGNED-PAYLOAD'])).toEqual({ kind: 'given', value: 'UNSIGNED-PAYLOAD' });
    expect(payloadChoice(['STREAMING-UNSIGNED-PAYLOAD-TRAILER'])).toEqual({
      kind: 'given',
      value: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    });
    expect(payloadChoice(undefined)).toEqual({ kind: 'hash' });
    for (const v of [
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
      'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
      'STREAMING-AWS4-HMAC-SHA256-EVENTS',
    ]) {
      expect(payloadChoice([v])).toEqual({ kind: 'chunk_signed' });
    }
    expect(payloadChoice(['nonsense'])).toEqual({ kind: 'invalid' });
    expect(payloadChoice([digest, digest])).toEqual({ kind: 'invalid' });
  });
});

describe('credential scope against the host', () => {
  const problem = (service: string, region: string, host: string) =>
    scopeProblem({ service, region }, awsEndpoint(host)!, host);
  it('accepts the host own service and region, signing-name aliases, and any region on a global endpoint', () => {
    expect(problem('s3', 'us-east-1', 'bucket.s3.us-east-1.amazonaws.com')).toBeUndefined();
    expect(problem('s3', 'eu-west-1', 'bucket.s3.dualstack.eu-west-1.amazonaws.com')).toBeUndefined();
    expect(problem('bedrock', 'us-west-2', 'bedrock-runtime.us-west-2.amazonaws.com')).toBeUndefined();
    expect(problem('ses', 'eu-west-1', 'email.eu-west-1.amazonaws.com')).toBeUndefined();
    expect(problem('sts', 'us-east-1', 'sts.amazonaws.com')).toBeUndefined();
    expect(problem('iam', 'us-east-1', 'iam.amazonaws.com')).toBeUndefined();
    expect(problem('s3', 'eu-central-1', 's3.amazonaws.com')).toBeUndefined();
    expect(problem('dynamodb', 'us-east-1', 'dynamodb-fips.us-east-1.amazonaws.com')).toBeUndefined();
  });
  it('refuses another service or region, naming both', () => {
    expect(problem('iam', 'us-east-1', 's3.us-east-1.amazonaws.com')).toBe(
      'the request is signed for AWS service "iam", but s3.us-east-1.amazonaws.com serves "s3"',
    );
    expect(problem('dynamodb', 'eu-west-1', 'dynamodb.us-east-1.amazonaws.com')).toContain(
      'signed for region "eu-west-1", but dynamodb.us-east-1.amazonaws.com is in "us-east-1"',
    );
  });
});

describe('re-signing, checked independently', () => {
  it('matches the AWS SigV4 test suite (get-vanilla)', async () => {
    const out = await resign({
      method: 'GET',
      authority: 'example.amazonaws.com',
      path: '/',
      headers: { 'x-amz-date': ['20150830T123600Z'] },
      auth: parseAuthorization(
        `AWS4-HMAC-SHA256 Credential=X/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
      )!,
      payload: { body: new Uint8Array(0) },
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      now: new Date('2015-08-30T12:36:00Z'),
    });
    expect(Object.fromEntries(out.set).authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('a DynamoDB POST (body hashed) and an encoded Lambda path with a query verify with the real secret', async () => {
    const now = new Date('2025-03-04T05:06:07Z');
    const body = Buffer.from(JSON.stringify({ TableName: 't', Item: { id: { S: 'x' } } }));
    const cases: Array<{
      service: string;
      method: string;
      path: string;
      query: string;
      headers: Record<string, string>;
      signed: string[];
      body: Buffer;
    }> = [
      {
        service: 'dynamodb',
        method: 'POST',
        path: '/',
        query: '',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.PutItem',
          'x-forwarded-proto': 'https',
        },
        signed: ['content-type', 'host', 'x-amz-date', 'x-amz-target'],
        body,
      },
      {
        service: 'lambda',
        method: 'POST',
        path: '/2015-03-31/functions/my%3Afn/invocations',
        query: 'Qualifier=v%201&b=%2A',
        headers: { 'x-amz-user-agent': '  aws-sdk   js ' },
        signed: ['host', 'x-amz-date', 'x-amz-user-agent'],
        body: Buffer.alloc(0),
      },
    ];
    for (const c of cases) {
      const host = `${c.service}.us-east-1.amazonaws.com`;
      const out = await resign({
        method: c.method,
        authority: host,
        path: c.query ? `${c.path}?${c.query}` : c.path,
        headers: Object.fromEntries(
          Object.entries({ ...c.headers, 'x-amz-date': '20250101T000000Z', authorization: 'placeholder' }).map(
            ([k, v]) => [k, [v]],
          ),
        ),
        auth: parseAuthorization(PLACEHOLDER_AUTH(c.service, 'us-east-1', c.signed.join(';')))!,
        payload: { body: c.body },
        credentials: REAL,
        now,
      });
      const set = Object.fromEntries(out.set);
      expect(set['x-amz-date']).toBe('20250304T050607Z');
      const [, credential, signed, signature] = authParts(set.authorization!);
      expect(credential).toBe(`${REAL.accessKeyId}/20250304/us-east-1/${c.service}/aws4_request`);
      expect(signed).toBe(c.signed.join(';'));
      const headers: Record<string, string> = { ...c.headers, host, 'x-amz-date': set['x-amz-date']! };
      expect(signature).toBe(
        independentSignature({
          ...c,
          headers,
          payloadHash: hex(c.body),
          amzDate: set['x-amz-date']!,
          region: 'us-east-1',
          secret: REAL.secretAccessKey,
        }),
      );
      expect(out.remove).toEqual(['proxy-authorization', 'x-amz-security-token']);
    }
  });
});

describe('AwsSigner through the Engine', () => {
  const policy = policyFrom(
    `
rules:
  - name: aws
    type: aws
    aws:
      access_key_id: { type: workspace_secret, value: "{KEY_ID}" }
      secret_access_key: { type: workspace_secret, value: "{SECRET}" }
`,
    new Map([
      ['KEY_ID', REAL.accessKeyId],
      ['SECRET', REAL.secretAccessKey],
    ]),
  );
  const engine = async () =>
    new Engine(
      { policyFor: () => policy },
      new CallbackResolver(new MemoryCredentialCache(), await CallbackSigner.ephemeral()),
      createLogger('silent'),
      {
        cloud: { aws: new AwsSigner({ log: createLogger('silent'), clock: () => new Date('2025-03-04T05:06:07Z') }) },
      },
    );
  const extras = (headers: Record<string, string>, endOfStream = true): RequestExtras => ({
    endOfStream,
    headers: () => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
  });
  const req = (host: string, path = '/', method = 'GET') => ({ method, scheme: 'https', authority: host, path });

  it('passes presigned URLs untouched and refuses unsigned, chunk-signed and mis-scoped requests', async () => {
    const e = await engine();
    expect(
      await e.handle(
        req('bucket.s3.us-east-1.amazonaws.com', '/k?X-Amz-Credential=A&X-Amz-Signature=b'),
        'sb',
        extras({}),
      ),
    ).toEqual({ kind: 'continue', set: [], remove: ['proxy-authorization'] });
    expect(await e.handle(req('s3.us-east-1.amazonaws.com'), 'sb', extras({}))).toEqual({
      kind: 'immediate',
      status: 403,
      body: AWS_REFUSALS.unsigned,
    });
    expect(AWS_REFUSALS.unsigned.startsWith('request is not SigV4-signed')).toBe(true);
    const chunked = await e.handle(
      req('bucket.s3.us-east-1.amazonaws.com', '/k', 'PUT'),
      'sb',
      extras(
        { authorization: PLACEHOLDER_AUTH('s3'), 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' },
        false,
      ),
    );
    expect(chunked).toMatchObject({ kind: 'immediate', status: 400 });
    expect((chunked as { body: string }).body).toContain('chunkedEncodingEnabled(false)');
    const wrong = await e.handle(
      req('dynamodb.us-east-1.amazonaws.com'),
      'sb',
      extras({ authorization: PLACEHOLDER_AUTH('dynamodb', 'eu-west-1') }),
    );
    expect(wrong).toMatchObject({ kind: 'immediate', status: 403 });
    expect((wrong as { body: string }).body).toContain('region "eu-west-1"');
  });

  it('signs a given x-amz-content-sha256 without the body; hashes the body otherwise; 413 past the buffer', async () => {
    const e = await engine();
    const given = (await e.handle(
      req('bucket.s3.us-east-1.amazonaws.com', '/k', 'PUT'),
      'sb',
      extras(
        {
          authorization: PLACEHOLDER_AUTH('s3', 'us-east-1', 'host;x-amz-content-sha256;x-amz-date'),
          'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        },
        false,
      ),
    )) as Extract<Outcome, { kind: 'continue' }>;
    expect(given.kind).toBe('continue');
    expect(authParts(Object.fromEntries(given.set).authorization!)[2]).toBe('host;x-amz-content-sha256;x-amz-date');
    const held = e.handle(
      req('dynamodb.us-east-1.amazonaws.com', '/', 'POST'),
      'sb',
      extras({ authorization: PLACEHOLDER_AUTH('dynamodb') }, false),
    );
    expect(held).toMatchObject({ kind: 'awaitBody' });
    const resume = (held as Extract<Outcome, { kind: 'awaitBody' }>).resume;
    const signed = (await resume(Buffer.from('{"a":1}'), true)) as Extract<Outcome, { kind: 'continue' }>;
    const set = Object.fromEntries(signed.set);
    expect(authParts(set.authorization!)[3]).toBe(
      independentSignature({
        method: 'POST',
        path: '/',
        query: '',
        headers: { host: 'dynamodb.us-east-1.amazonaws.com', 'x-amz-date': set['x-amz-date']! },
        signed: ['host', 'x-amz-date'],
        payloadHash: hex('{"a":1}'),
        amzDate: set['x-amz-date']!,
        region: 'us-east-1',
        service: 'dynamodb',
        secret: REAL.secretAccessKey,
      }),
    );
    expect(await resume(Buffer.alloc(10), false)).toEqual({
      kind: 'immediate',
      status: 413,
      body: AWS_REFUSALS.tooLarge,
    });
    const empty = (await e.handle(
      req('dynamodb.us-east-1.amazonaws.com'),
      'sb',
      extras({ authorization: PLACEHOLDER_AUTH('dynamodb') }),
    )) as Extract<Outcome, { kind: 'continue' }>;
    expect(empty.kind).toBe('continue');
  });
});
