import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SigV4Authorization } from './sigv4.js';

/** Real AWS credentials: static keys, or a role session's temporary ones (with a session token). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** One request as Envoy forwards it, with what the sandbox's signature says about it. */
export interface ResignInput {
  readonly method: string;
  /** `:authority` as Envoy sends it upstream (the intercepting listener strips the port): signed as `host`. */
  readonly authority: string;
  /** The raw `:path`, query included. */
  readonly path: string;
  /** Request headers, name (lower case) -> values, as Envoy forwards them. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly auth: SigV4Authorization;
  /** The `x-amz-content-sha256` value to sign, or the body to hash. */
  readonly payload: { readonly given: string } | { readonly body: Uint8Array };
  readonly credentials: AwsCredentials;
  readonly now: Date;
}

/** The header mutations that replace the sandbox's signature with a real one. */
export interface Resigned {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

/** A request whose query or headers can't be put in SigV4's canonical form. */
export class UnsignableRequest extends Error {}

/** The SHA-256 constructor the signer wants (node:crypto underneath). */
export const Sha256 = Hash.bind(null, 'sha256');

/** Headers the signer writes itself, and hop-by-hop headers Envoy may rewrite on the way (never signed). */
const NOT_COPIED = new Set([
  'host',
  'authorization',
  'x-amz-date',
  'x-amz-security-token',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-connection',
]);

/** S3 signs the path as sent; every other service normalises and double-encodes it (SigV4's rule). */
const SINGLE_ENCODED_PATH = new Set(['s3', 's3express', 's3-outposts']);

/**
 * The query as SigV4 canonicalises it: names and values percent-decoded (the signer encodes them again
 * with AWS's rules), repeated names as lists. An invalid escape can't be canonicalised: UnsignableRequest.
 */
export function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw new UnsignableRequest('the query has an invalid percent-escape');
    }
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return { ...out };
}

/**
 * Signs the request again with real credentials over the headers the sandbox signed (values as Envoy
 * forwards them, repeated values joined with `,`), the host as Envoy sends it, the service and region of
 * the sandbox's scope, and the payload hash chosen by `payloadChoice`. Returns the Authorization,
 * X-Amz-Date and (for role sessions) X-Amz-Security-Token to set; without a session token any
 * X-Amz-Security-Token the sandbox sent is removed. Proxy-Authorization is always removed.
 */
export async function resign(input: ResignInput): Promise<Resigned> {
  const { auth, credentials } = input;
  const headers: Record<string, string> = { host: input.authority };
  const signable = new Set<string>(['host']);
  for (const name of auth.signedHeaders) {
    const values = input.headers[name];
    if (NOT_COPIED.has(name) || values === undefined) continue;
    if (values.some((v) => /[\r\n]/.test(v))) throw new UnsignableRequest(`header ${name} can't be canonicalised`);
    headers[name] = values.join(',');
    signable.add(name);
  }
  if ('given' in input.payload) {
    headers['x-amz-content-sha256'] = input.payload.given;
    signable.add('x-amz-content-sha256');
  }
  const q = input.path.indexOf('?');
  const hash = input.path.indexOf('#');
  const end = hash >= 0 ? hash : input.path.length;
  const path = (q >= 0 && q < end ? input.path.slice(0, q) : input.path.slice(0, end)) || '/';
  const query = q >= 0 && q < end ? parseQuery(input.path.slice(q + 1, end)) : {};
  const signer = new SignatureV4({
    credentials,
    region: auth.region,
    service: auth.service,
    sha256: Sha256,
    uriEscapePath: !SINGLE_ENCODED_PATH.has(auth.service),
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: input.method,
      protocol: 'https:',
      hostname: input.authority,
      path,
      query,
      headers,
      body: 'body' in input.payload ? input.payload.body : undefined,
    },
    { signingDate: input.now, signableHeaders: signable },
  );
  const set: Array<readonly [string, string]> = [
    ['authorization', String(signed.headers.authorization)],
    ['x-amz-date', String(signed.headers['x-amz-date'])],
  ];
  const remove = ['proxy-authorization'];
  if (credentials.sessionToken) set.push(['x-amz-security-token', credentials.sessionToken]);
  else remove.push('x-amz-security-token');
  return { set, remove };
}
