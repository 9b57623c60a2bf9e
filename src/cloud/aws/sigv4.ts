import type { AwsEndpoint } from '../../policy/provider-hosts.js';

/**
 * Reading what the sandbox's AWS SDK signed: the `Authorization: AWS4-HMAC-SHA256 ...` header, presigned
 * URLs, and the `x-amz-content-sha256` payload choice. Pure functions, so every refusal is unit-tested
 * without Envoy; none of them returns or echoes a credential.
 */

/** The parts of a SigV4 Authorization header that re-signing needs (the signature itself is discarded). */
export interface SigV4Authorization {
  /** The sandbox's (placeholder) access key id: only ever compared, never logged. */
  readonly accessKeyId: string;
  /** `yyyymmdd` of the credential scope. */
  readonly date: string;
  readonly region: string;
  readonly service: string;
  /** Lower-case header names, in the order given. */
  readonly signedHeaders: readonly string[];
}

const SCOPE_PART = /^[a-z0-9-]{1,64}$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, SignedHeaders=a;b,
 * Signature=<64 hex>`. Undefined for anything else: another scheme, SigV4a (`AWS4-ECDSA-P256-SHA256`),
 * a missing or repeated part, or a scope that isn't `.../aws4_request`.
 */
export function parseAuthorization(value: string | undefined): SigV4Authorization | undefined {
  if (value === undefined) return undefined;
  const m = /^AWS4-HMAC-SHA256[ \t]+(.+)$/.exec(value.trim());
  if (!m) return undefined;
  const parts = new Map<string, string>();
  for (const piece of m[1]!.split(',')) {
    const eq = piece.indexOf('=');
    if (eq < 0) return undefined;
    const key = piece.slice(0, eq).trim();
    if (parts.has(key)) return undefined;
    parts.set(key, piece.slice(eq + 1).trim());
  }
  const credential = parts.get('Credential')?.split('/');
  const signed = parts.get('SignedHeaders')?.split(';');
  const signature = parts.get('Signature');
  if (credential?.length !== 5 || !signed || signature === undefined || parts.size !== 3) return undefined;
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  if (!/^[A-Za-z0-9]{1,128}$/.test(accessKeyId) || !/^\d{8}$/.test(date) || terminator !== 'aws4_request')
    return undefined;
  if (!SCOPE_PART.test(region) || !SCOPE_PART.test(service) || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  if (signed.some((h) => !HEADER_NAME.test(h))) return undefined;
  return { accessKeyId, date, region, service, signedHeaders: signed };
}

/**
 * Whether the request is a presigned URL (`X-Amz-Credential` or `X-Amz-Signature` in the query): its
 * signature covers the query, was made by whoever presigned it, and passes untouched.
 */
export function isPresigned(path: string): boolean {
  const q = path.indexOf('?');
  if (q < 0) return false;
  return path
    .slice(q + 1)
    .split('&')
    .some((pair) => {
      const eq = pair.indexOf('=');
      const name = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
      return name === 'x-amz-credential' || name === 'x-amz-signature';
    });
}

/** What the signature says about the body: a value to sign as is, a body authproxy must hash, or a refusal. */
export type PayloadChoice =
  | { readonly kind: 'given'; readonly value: string }
  | { readonly kind: 'hash' }
  | { readonly kind: 'chunk_signed' }
  | { readonly kind: 'invalid' };

/** `x-amz-content-sha256` values whose body needs no hashing by authproxy. */
const SIGNABLE = new Set(['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);

/**
 * The payload hash to sign: the sandbox's `x-amz-content-sha256` when it is a SHA-256 hex digest,
 * `UNSIGNED-PAYLOAD` or `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (S3 checks a digest against the body itself);
 * `hash` when there is none (authproxy hashes the body). Chunk-signed bodies (`STREAMING-AWS4-HMAC-SHA256-
 * PAYLOAD[-TRAILER]`, the ECDSA variants, signed event streams) carry signatures made with the sandbox's
 * key in every chunk and can't be re-signed from the headers.
 */
export function payloadChoice(values: readonly string[] | undefined): PayloadChoice {
  if (values === undefined || values.length === 0) return { kind: 'hash' };
  if (values.length > 1) return { kind: 'invalid' };
  const value = values[0]!.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'given', value };
  if (SIGNABLE.has(value)) return { kind: 'given', value };
  if (/^STREAMING-AWS4-(HMAC-SHA256|ECDSA-P256-SHA256)-(PAYLOAD|EVENTS)(-TRAILER)?$/.test(value))
    return { kind: 'chunk_signed' };
  return { kind: 'invalid' };
}

/**
 * Endpoint prefixes whose SigV4 signing name differs (from the services' endpoint rules): Bedrock's
 * runtimes sign as `bedrock`, SES's `email` endpoint as `ses`, Pinpoint as `mobiletargeting`, Lex V2 as
 * `lex`, Amazon Managed Prometheus as `aps`. Every other endpoint signs under its own prefix.
 */
const SIGNING_NAMES: Readonly<Record<string, readonly string[]>> = {
  'bedrock-runtime': ['bedrock'],
  'bedrock-agent': ['bedrock'],
  'bedrock-agent-runtime': ['bedrock'],
  email: ['ses'],
  pinpoint: ['mobiletargeting'],
  'models-v2-lex': ['lex'],
  'runtime-v2-lex': ['lex'],
  'aps-workspaces': ['aps'],
};

/**
 * Why the sandbox's credential scope can't be used for this host, or undefined when it agrees: the service
 * must be the one the endpoint serves (or its signing name); the region must be the host's, and on a global
 * endpoint (`iam.amazonaws.com`, `sts.amazonaws.com`, `s3.amazonaws.com`) any region the SDK chose
 * (us-east-1 for most) is signed as given. The text is for the 403 body: names and regions only.
 */
export function scopeProblem(
  scope: Pick<SigV4Authorization, 'service' | 'region'>,
  endpoint: AwsEndpoint,
  host: string,
): string | undefined {
  const names = [endpoint.service, ...(SIGNING_NAMES[endpoint.service] ?? [])];
  if (!names.includes(scope.service)) {
    return `the request is signed for AWS service "${scope.service}", but ${host} serves "${names.join('" or "')}"`;
  }
  if (endpoint.region !== undefined && scope.region !== endpoint.region) {
    return `the request is signed for region "${scope.region}", but ${host} is in "${endpoint.region}" (set AWS_REGION or the client's region to match the endpoint)`;
  }
  return undefined;
}
