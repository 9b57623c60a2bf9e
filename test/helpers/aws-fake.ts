/**
 * A loopback fake of the AWS endpoints the e2e test uses, answering inside the sidecar rig's TLS upstream
 * (`upstreamHandler`), so Envoy reaches it as sts.us-east-1.amazonaws.com, s3.us-east-1.amazonaws.com,
 * bucket.s3.us-east-1.amazonaws.com and dynamodb.us-east-1.amazonaws.com. Every request is verified with
 * the REAL secrets (aws-sigv4-verify.ts) and recorded; it answers minimal valid STS (GetCallerIdentity,
 * AssumeRole with ExternalId and session-tag checks), S3 (PutObject, GetObject, ListObjectsV2) and
 * DynamoDB (PutItem) responses, and AWS-style errors otherwise.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifySigV4, type KnownKey, type Verified } from './aws-sigv4-verify.js';

/** One request the fake received, with what verification found and everything it saw as text. */
export interface SeenRequest extends Verified {
  readonly host: string;
  readonly method: string;
  readonly url: string;
  readonly action?: string;
  /** Request line, headers and (text) body: the placeholder key must never appear here. */
  readonly raw: string;
}

/** What AssumeRole must carry to succeed. */
export interface RoleExpectation {
  readonly roleArn: string;
  readonly externalId: string;
  readonly tags: Record<string, string>;
  /** Only this key may call AssumeRole (authproxy's own base key). */
  readonly callerKeyId: string;
}

/** The fake's request handler and what it holds: requests seen, sessions issued, S3 objects; a switch to deny roles. */
export interface AwsFake {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly seen: SeenRequest[];
  /** Session credentials issued by AssumeRole, by access key id. */
  readonly sessions: Map<string, Required<KnownKey>>;
  readonly objects: Map<string, Buffer>;
  /** When set, AssumeRole answers this AccessDenied. */
  denyAssumeRole: boolean;
}

/** The account id every fake identity belongs to. */
export const ACCOUNT = '123456789012';
const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

const xml = (res: ServerResponse, status: number, body: string) =>
  res.writeHead(status, { 'content-type': 'text/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
const rid = () => randomBytes(8).toString('hex');

function stsError(res: ServerResponse, status: number, code: string, message: string): void {
  xml(
    res,
    status,
    `<ErrorResponse xmlns="${STS_NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${rid()}</RequestId></ErrorResponse>`,
  );
}

/** Decodes an `aws-chunked` body (unsigned chunks, optional trailers) to its payload. */
export function decodeAwsChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) throw new Error('aws-chunked: no chunk header');
    const size = parseInt(body.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size)) throw new Error('aws-chunked: bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Starts the fake's state; plug `handler` into the rig as `upstreamHandler`. */
export function createAwsFake(realKeys: ReadonlyMap<string, KnownKey>, role?: RoleExpectation): AwsFake {
  const sessions = new Map<string, Required<KnownKey>>();
  const objects = new Map<string, Buffer>();
  const seen: SeenRequest[] = [];
  const fake: AwsFake = { handler: () => undefined, seen, sessions, objects, denyAssumeRole: false };

  const sts = (res: ServerResponse, form: URLSearchParams, v: Verified) => {
    const action = form.get('Action');
    if (action === 'GetCallerIdentity') {
      const arn = sessions.has(v.accessKeyId!)
        ? `arn:aws:sts::${ACCOUNT}:assumed-role/sandbox/session`
        : `arn:aws:iam::${ACCOUNT}:user/fake`;
      return xml(
        res,
        200,
        `<GetCallerIdentityResponse xmlns="${STS_NS}"><GetCallerIdentityResult><Arn>${arn}</Arn><UserId>AIDAFAKEUSER</UserId><Account>${ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${rid()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      );
    }
    if (action !== 'AssumeRole' || !role) return stsError(res, 400, 'InvalidAction', `unsupported action ${action}`);
    const tags: Record<string, string> = {};
    for (let i = 1; form.has(`Tags.member.${i}.Key`); i++)
      tags[form.get(`Tags.member.${i}.Key`)!] = form.get(`Tags.member.${i}.Value`) ?? '';
    const problems = [
      v.accessKeyId !== role.callerKeyId && 'caller is not the base key',
      form.get('RoleArn') !== role.roleArn && 'wrong RoleArn',
      form.get('ExternalId') !== role.externalId && 'wrong ExternalId',
      JSON.stringify(Object.entries(tags).sort()) !== JSON.stringify(Object.entries(role.tags).sort()) &&
        'wrong session tags',
      !/^[\w+=,.@-]{2,64}$/.test(form.get('RoleSessionName') ?? '') && 'bad RoleSessionName',
    ].filter(Boolean);
    if (fake.denyAssumeRole || problems.length > 0)
      return stsError(
        res,
        403,
        'AccessDenied',
        `not authorized to perform sts:AssumeRole (${problems.join(', ') || 'denied'})`,
      );
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const session = {
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `FQoG${randomBytes(48).toString('base64')}`,
    };
    sessions.set(accessKeyId, session);
    const expiration = new Date(Date.now() + Number(form.get('DurationSeconds') ?? 3600) * 1000).toISOString();
    xml(
      res,
      200,
      `<AssumeRoleResponse xmlns="${STS_NS}"><AssumeRoleResult><Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${session.secretAccessKey}</SecretAccessKey><SessionToken>${session.sessionToken}</SessionToken><Expiration>${expiration}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::${ACCOUNT}:assumed-role/sandbox/${form.get('RoleSessionName')}</Arn><AssumedRoleId>AROAFAKE:${form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>${rid()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  };

  const s3 = (req: IncomingMessage, res: ServerResponse, host: string, body: Buffer) => {
    const [path, search = ''] = (req.url ?? '/').split('?');
    const virtual = /^(.+)\.s3\.us-east-1\.amazonaws\.com$/.exec(host)?.[1];
    const segments = path!.slice(1).split('/');
    const bucket = virtual ?? segments.shift()!;
    const key = decodeURIComponent(segments.join('/'));
    if (req.method === 'PUT' && key) {
      const data = req.headers['content-encoding']?.includes('aws-chunked') ? decodeAwsChunked(body) : body;
      objects.set(`${bucket}/${key}`, data);
      return res.writeHead(200, { etag: `"${createHash('md5').update(data).digest('hex')}"` }).end();
    }
    if (req.method === 'GET' && key) {
      const data = objects.get(`${bucket}/${key}`);
      if (!data)
        return xml(
          res,
          404,
          '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
        );
      return res
        .writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': data.length,
          etag: `"${createHash('md5').update(data).digest('hex')}"`,
        })
        .end(data);
    }
    if (req.method === 'GET' && new URLSearchParams(search).get('list-type') === '2') {
      const items = [...objects].filter(([k]) => k.startsWith(`${bucket}/`));
      const contents = items
        .map(
          ([k, d]) =>
            `<Contents><Key>${k.slice(bucket.length + 1)}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>${d.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
        )
        .join('');
      return xml(
        res,
        200,
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix></Prefix><KeyCount>${items.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
      );
    }
    return xml(res, 400, '<Error><Code>NotImplemented</Code><Message>not in the fake</Message></Error>');
  };

  fake.handler = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const host = String(req.headers.host ?? '');
      const keys = new Map<string, KnownKey>([...realKeys, ...sessions]);
      void verifySigV4(req, body, keys).then((v) => {
        const form = host.startsWith('sts.') ? new URLSearchParams(body.toString('utf8')) : undefined;
        const action = form?.get('Action') ?? (req.headers['x-amz-target'] as string | undefined);
        const text = body.length <= 64 * 1024 ? body.toString('latin1') : '';
        const raw = `${req.method} ${req.url}\n${Object.entries(req.headers)
          .map(([k, val]) => `${k}: ${String(val)}`)
          .join('\n')}\n\n${text}`;
        seen.push({ ...v, host, method: req.method ?? '', url: req.url ?? '', ...(action ? { action } : {}), raw });
        if (!v.ok) {
          if (form) return stsError(res, 403, v.code!, v.problem!);
          if (host.startsWith('dynamodb.'))
            return res
              .writeHead(400, { 'content-type': 'application/x-amz-json-1.0' })
              .end(JSON.stringify({ __type: `com.amazon.coral.service#${v.code}`, message: v.problem }));
          return xml(res, 403, `<Error><Code>${v.code}</Code><Message>${v.problem}</Message></Error>`);
        }
        if (form) return sts(res, form, v);
        if (host.startsWith('dynamodb.'))
          return res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
        return s3(req, res, host, body);
      });
    });
  };
  return fake;
}
