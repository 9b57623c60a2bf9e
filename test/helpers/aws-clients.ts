/**
 * What a sandbox runs against AWS in the e2e test: the JavaScript SDK v3 (STS, S3, DynamoDB) through the
 * forward proxy (the SDK ignores HTTPS_PROXY, so a NodeHttpHandler with a proxy agent trusting
 * authproxy's CA), boto3 in the repo's .venv with HTTPS_PROXY and AWS_CA_BUNDLE, and curl's own SigV4
 * signer for requests no SDK makes on purpose (large bodies, chunk-signed headers). All with the
 * placeholder credentials of `authproxy sandbox-env`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { AWS_PLACEHOLDER_KEY_ID, AWS_PLACEHOLDER_SECRET } from '../../src/envoy/sandbox-env.js';
import { curlViaProxy } from './curl.js';

const run = promisify(execFile);
/** The repo's venv Python, where scripts/setup-deps.sh installs boto3. */
export const PYTHON = new URL('../../.venv/bin/python', import.meta.url).pathname;

/** Where the sandbox reaches the proxy and the fake endpoints (the rig upstream's port). */
export interface SandboxSide {
  readonly proxyUrl: string;
  readonly authproxyCa: string;
  readonly port: number;
}

/** A CONNECT proxy agent whose tunnelled TLS trusts `ca` (the agent's own options only reach the proxy hop). */
class TrustingProxyAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly ca: Buffer,
  ) {
    super(proxy, { keepAlive: true });
  }

  override connect(
    req: Parameters<HttpsProxyAgent<string>['connect']>[0],
    opts: Parameters<HttpsProxyAgent<string>['connect']>[1],
  ) {
    return super.connect(req, { ...opts, ca: this.ca } as typeof opts);
  }
}

/** The JavaScript SDK v3 clients, configured as a sandbox would (placeholders, proxy agent, region). */
export function jsClients(side: SandboxSide, region = 'us-east-1') {
  const agent = new TrustingProxyAgent(side.proxyUrl, readFileSync(side.authproxyCa));
  const common = {
    region,
    credentials: { accessKeyId: AWS_PLACEHOLDER_KEY_ID, secretAccessKey: AWS_PLACEHOLDER_SECRET },
    requestHandler: new NodeHttpHandler({ httpsAgent: agent as never }),
    maxAttempts: 1,
  };
  const at = (service: string) => `https://${service}.us-east-1.amazonaws.com:${side.port}`;
  return {
    sts: new STSClient({ ...common, endpoint: at('sts') }),
    s3: new S3Client({ ...common, endpoint: at('s3') }),
    dynamodb: new DynamoDBClient({ ...common, endpoint: at('dynamodb') }),
    close: () => agent.destroy(),
  };
}

/** The four SDK operations of the issue, in order; returns what they answered. */
export async function jsRoundTrip(side: SandboxSide, key: string, body: string) {
  const c = jsClients(side);
  try {
    const identity = await c.sts.send(new GetCallerIdentityCommand({}));
    await c.s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: key, Body: body }));
    const got = await (await c.s3.send(new GetObjectCommand({ Bucket: 'bucket', Key: key }))).Body!.transformToString();
    const listed = (await c.s3.send(new ListObjectsV2Command({ Bucket: 'bucket' }))).Contents?.map((o) => o.Key) ?? [];
    await c.dynamodb.send(new PutItemCommand({ TableName: 'sandbox', Item: { id: { S: key } } }));
    return { account: identity.Account, got, listed };
  } finally {
    c.close();
  }
}

const BOTO3 = `
import json, os, sys
import boto3
from botocore.config import Config
port = os.environ['FAKE_PORT']
at = lambda s: f'https://{s}.us-east-1.amazonaws.com:{port}'
out = {}
out['account'] = boto3.client('sts', region_name='us-east-1', endpoint_url=at('sts')).get_caller_identity()['Account']
s3 = boto3.client('s3', region_name='us-east-1', endpoint_url=at('s3'), config=Config(s3={'addressing_style': 'virtual'}))
s3.put_object(Bucket='bucket', Key='boto3.txt', Body=b'hello from boto3')
out['got'] = s3.get_object(Bucket='bucket', Key='boto3.txt')['Body'].read().decode()
out['listed'] = [o['Key'] for o in s3.list_objects_v2(Bucket='bucket').get('Contents', [])]
boto3.client('dynamodb', region_name='us-east-1', endpoint_url=at('dynamodb')).put_item(TableName='sandbox', Item={'id': {'S': 'boto3'}})
print(json.dumps(out))
`;

/** boto3 puts each key (body = the key) and reads each back; the keys as S3 would keep them. */
const BOTO3_KEYS = `
import json, os, sys
import boto3
from botocore.config import Config
port = os.environ['FAKE_PORT']
keys = json.loads(os.environ['KEYS'])
s3 = boto3.client('s3', region_name='us-east-1', endpoint_url=f'https://s3.us-east-1.amazonaws.com:{port}', config=Config(s3={'addressing_style': os.environ['STYLE']}))
for k in keys:
    s3.put_object(Bucket='bucket', Key=k, Body=k.encode())
print(json.dumps({k: s3.get_object(Bucket='bucket', Key=k)['Body'].read().decode() for k in keys}))
`;

/** Puts and gets S3 objects under `keys` with boto3 (path or virtual addressing); returns key -> body read back. */
export async function boto3Keys(
  side: SandboxSide,
  keys: readonly string[],
  style: 'path' | 'virtual',
): Promise<Record<string, string>> {
  const { stdout } = await run(PYTHON, ['-c', BOTO3_KEYS], {
    env: { ...boto3Env(side), KEYS: JSON.stringify(keys), STYLE: style },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Record<string, string>;
}

/** The same round trip from boto3, configured only through the sandbox environment. */
export async function boto3RoundTrip(side: SandboxSide): Promise<{ account: string; got: string; listed: string[] }> {
  const { stdout } = await run(PYTHON, ['-c', BOTO3], { env: boto3Env(side), timeout: 60_000 });
  return JSON.parse(stdout) as { account: string; got: string; listed: string[] };
}

/** A sandbox's environment for boto3: the proxy, authproxy's CA bundle and the placeholder keys only. */
function boto3Env(side: SandboxSide): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    HTTPS_PROXY: side.proxyUrl,
    https_proxy: side.proxyUrl,
    AWS_CA_BUNDLE: side.authproxyCa,
    AWS_ACCESS_KEY_ID: AWS_PLACEHOLDER_KEY_ID,
    AWS_SECRET_ACCESS_KEY: AWS_PLACEHOLDER_SECRET,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    FAKE_PORT: String(side.port),
  };
}

/** curl signing with its own SigV4 (`--aws-sigv4`) and the placeholder keys. */
export function curlSigned(
  side: SandboxSide,
  service: string,
  url: string,
  args: string[],
): Promise<{ status: number; body: string }> {
  return curlViaProxy(side.proxyUrl, side.authproxyCa, [
    '--aws-sigv4',
    `aws:amz:us-east-1:${service}`,
    '--user',
    `${AWS_PLACEHOLDER_KEY_ID}:${AWS_PLACEHOLDER_SECRET}`,
    ...args,
    url,
  ]);
}

/** curl with no signing of its own (unsigned requests, presigned URLs). */
export function curlPlain(
  side: SandboxSide,
  url: string,
  args: string[] = [],
): Promise<{ status: number; body: string }> {
  return curlViaProxy(side.proxyUrl, side.authproxyCa, [...args, url]);
}
