/**
 * The fake AWS endpoint's own SigV4 verifier: recomputes the signature of a request as received (method,
 * path, query, the headers it says it signed, the body or its declared hash) with the secret of the key id
 * it names, using @smithy/signature-v4 directly (not authproxy's code), and compares. Handles header
 * signatures and presigned URLs, session tokens, and S3's content-hash check.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/** A key the fake knows: a real static key, authproxy's base key, or a session it issued. */
export interface KnownKey {
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** What verification found. */
export interface Verified {
  readonly ok: boolean;
  readonly accessKeyId?: string;
  readonly service?: string;
  readonly region?: string;
  readonly presigned: boolean;
  /** Why it failed (an AWS error code and a message), when it did. */
  readonly code?: string;
  readonly problem?: string;
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const sha256 = Hash.bind(null, 'sha256');

function splitUrl(url: string): { path: string; query: Record<string, string | string[]> } {
  const q = url.indexOf('?');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(q >= 0 ? url.slice(q + 1) : '')) {
    const had = query[k];
    query[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  return { path: q >= 0 ? url.slice(0, q) : url, query };
}

/** An S3 presigned GET as AWS's presigner makes it: UNSIGNED-PAYLOAD, only `host` signed. */
function presignS3(
  host: string,
  path: string,
  query: Record<string, string | string[]>,
  key: { accessKeyId: string; secretAccessKey: string },
  options: { signingDate?: Date; expiresIn: number },
) {
  const signer = new SignatureV4({
    credentials: key,
    region: 'us-east-1',
    service: 's3',
    sha256,
    uriEscapePath: false,
  });
  const keep = new Set(['x-amz-content-sha256']);
  return signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path,
      query,
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    { ...options, unhoistableHeaders: keep, unsignableHeaders: keep },
  );
}

function amzDate(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? '');
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

const fail = (code: string, problem: string, rest: Partial<Verified> = {}): Verified => ({
  ok: false,
  presigned: false,
  code,
  problem,
  ...rest,
});

/** Verifies one request against the keys the fake knows. */
export async function verifySigV4(
  req: IncomingMessage,
  body: Buffer,
  keys: ReadonlyMap<string, KnownKey>,
): Promise<Verified> {
  const { path, query } = splitUrl(req.url ?? '/');
  if (typeof query['X-Amz-Signature'] === 'string') return verifyPresigned(req, path, query, keys);
  const m = AUTH.exec(String(req.headers.authorization ?? ''));
  if (!m) return fail('MissingAuthenticationToken', 'no SigV4 Authorization header');
  const [, accessKeyId, day, region, service, signedList, signature] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const key = keys.get(accessKeyId);
  const who = { accessKeyId, service, region };
  if (!key) return fail('InvalidClientTokenId', 'unknown access key id', who);
  if (key.sessionToken !== undefined && req.headers['x-amz-security-token'] !== key.sessionToken)
    return fail('InvalidToken', 'session token missing or wrong', who);
  const date = amzDate(req.headers['x-amz-date'] as string | undefined);
  if (!date?.toISOString().replace(/-/g, '').startsWith(day) || Math.abs(Date.now() - date.getTime()) > 15 * 60_000)
    return fail('RequestExpired', 'x-amz-date missing, off the scope day or too old', who);
  const declared = req.headers['x-amz-content-sha256'] as string | undefined;
  if (declared && /^[0-9a-f]{64}$/.test(declared) && createHash('sha256').update(body).digest('hex') !== declared)
    return fail('XAmzContentSHA256Mismatch', 'body does not match x-amz-content-sha256', who);
  const signed = signedList.split(';');
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = req.headers[name];
    if (v !== undefined) headers[name] = Array.isArray(v) ? v.join(',') : v;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId, ...key },
    region,
    service,
    sha256,
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  const out = await signer.sign(
    {
      method: req.method ?? 'GET',
      protocol: 'https:',
      hostname: String(req.headers.host),
      path,
      query,
      headers,
      body: declared ? undefined : body,
    },
    { signingDate: date, signableHeaders: new Set(signed) },
  );
  const expected = AUTH.exec(String(out.headers.authorization));
  if (!expected || expected[5] !== signedList || expected[6] !== signature)
    return fail('SignatureDoesNotMatch', 'the signature does not verify with the secret of this key', who);
  return { ok: true, presigned: false, ...who };
}

async function verifyPresigned(
  req: IncomingMessage,
  path: string,
  query: Record<string, string | string[]>,
  keys: ReadonlyMap<string, KnownKey>,
): Promise<Verified> {
  const [accessKeyId, , region, service] = String(query['X-Amz-Credential'] ?? '').split('/') as [
    string,
    string,
    string,
    string,
  ];
  const who = { accessKeyId, service, region, presigned: true };
  const key = keys.get(accessKeyId);
  const date = amzDate(query['X-Amz-Date'] as string | undefined);
  if (!key || !date) return fail('InvalidClientTokenId', 'unknown presigning key or date', who);
  const rest = Object.fromEntries(
    Object.entries(query).filter(
      ([k]) => !/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature)$/.test(k),
    ),
  );
  if (req.method !== 'GET' || service !== 's3' || region !== 'us-east-1')
    return fail('NotImplemented', 'the fake verifies presigned us-east-1 S3 GETs only', who);
  const out = await presignS3(
    String(req.headers.host),
    path,
    rest,
    { accessKeyId, secretAccessKey: key.secretAccessKey },
    { signingDate: date, expiresIn: Number(query['X-Amz-Expires']) },
  );
  if (out.query?.['X-Amz-Signature'] !== query['X-Amz-Signature'])
    return fail('SignatureDoesNotMatch', 'the presigned URL does not verify', who);
  return { ok: true, ...who };
}

/** Presigns an S3 GET the way the fake verifies it (UNSIGNED-PAYLOAD, only `host` signed): a URL with the key in its query. */
export async function presignS3Get(
  host: string,
  port: number,
  path: string,
  key: { accessKeyId: string; secretAccessKey: string },
): Promise<string> {
  const out = await presignS3(host, path, {}, key, { expiresIn: 300 });
  const q = Object.entries(out.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `https://${host}:${port}${path}?${q}`;
}
