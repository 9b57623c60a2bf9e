import { createHmac } from 'node:crypto';
import type { AzureStorageService } from '../../policy/azure-hosts.js';
import { compareSharedKeyHeaders } from './header-order.js';

/**
 * Azure Storage Shared Key signing (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key),
 * computed over a request as Envoy forwards it: its method, headers and raw `:path`. Blob, Data Lake
 * (dfs), Queue and File use the full string-to-sign (version 2009-09-19 and later); Table uses its own
 * shorter one. Exists so that authproxy can replace the signature a sandbox made with a placeholder key.
 */

/** One request as Envoy forwards it. */
export interface SharedKeyRequest {
  readonly method: string;
  /** The raw `:path`, query included. */
  readonly path: string;
  /** Request headers, name (lower case) -> values. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly account: string;
  readonly service: AzureStorageService;
}

/** A request that can't be put in Shared Key's canonical form (a repeated header, a broken query escape). */
export class UnsignableAzureRequest extends Error {}

/** The standard headers of the blob/queue/file/dfs string-to-sign, in order (the documented order). */
const STANDARD = [
  'content-encoding',
  'content-language',
  'content-length',
  'content-md5',
  'content-type',
  'date',
  'if-modified-since',
  'if-match',
  'if-none-match',
  'if-unmodified-since',
  'range',
];

/** The single value of `name`, '' when absent; a repeated header is unsignable (its order is not defined). */
function one(headers: SharedKeyRequest['headers'], name: string): string {
  const values = headers[name];
  if (values === undefined || values.length === 0) return '';
  if (values.length > 1) throw new UnsignableAzureRequest(`header ${name} is repeated`);
  return values[0]!;
}

/** `:path` split at the query: the encoded path ('/' when empty) and the raw query. */
export function splitPath(raw: string): { path: string; query: string } {
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  return { path: path || '/', query: q < 0 ? '' : raw.slice(q + 1) };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new UnsignableAzureRequest('the query has an invalid percent-escape');
  }
}

/** The query's parameters: names lower-cased and decoded, values decoded, sorted within each name. */
function queryParams(query: string): Map<string, string[]> {
  const params = new Map<string, string[]>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decode(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    (params.get(name) ?? params.set(name, []).get(name)!).push(value);
  }
  return params;
}

/** CanonicalizedResource: `/account/path`, then `\nname:v1,v2` per query parameter in name order. */
function canonicalResource(req: SharedKeyRequest): string {
  const { path, query } = splitPath(req.path);
  let out = `/${req.account}${path}`;
  const params = queryParams(query);
  if (req.service === 'table') {
    // Table: only `comp` is part of the resource (the Shared Key Lite and Table service format).
    const comp = params.get('comp');
    return comp ? `${out}?comp=${comp.join(',')}` : out;
  }
  for (const name of [...params.keys()].sort()) out += `\n${name}:${params.get(name)!.sort().join(',')}`;
  return out;
}

/** CanonicalizedHeaders: every `x-ms-*` header, `name:value\n`, in the service's header order. */
function canonicalHeaders(headers: SharedKeyRequest['headers']): string {
  const names = Object.keys(headers)
    .filter((n) => n.startsWith('x-ms-'))
    .sort(compareSharedKeyHeaders);
  return names.map((n) => `${n}:${one(headers, n).trimStart()}\n`).join('');
}

/** The string-to-sign of `req`: the full form for blob/queue/file/dfs, the Table form for table. */
export function stringToSign(req: SharedKeyRequest): string {
  const h = req.headers;
  if (req.service === 'table') {
    const date = one(h, 'x-ms-date') || one(h, 'date');
    return [req.method, one(h, 'content-md5'), one(h, 'content-type'), date, canonicalResource(req)].join('\n');
  }
  // Content-Length is empty when 0 (version 2015-02-21 and later, which every current SDK sends).
  const standard = STANDARD.map((name) => {
    const value = one(h, name);
    return name === 'content-length' && value === '0' ? '' : value;
  });
  return `${[req.method, ...standard].join('\n')}\n${canonicalHeaders(h)}${canonicalResource(req)}`;
}

/** The `Authorization` value for `req` signed with the account key. */
export function sharedKeyAuthorization(req: SharedKeyRequest, key: Buffer): string {
  const signature = createHmac('sha256', key).update(stringToSign(req), 'utf8').digest('base64');
  return `SharedKey ${req.account}:${signature}`;
}

/** What a sandbox's `Authorization` says: the scheme and, for Shared Key, the account it signed for. */
export type SandboxSignature =
  | { readonly scheme: 'SharedKey'; readonly account: string }
  | { readonly scheme: 'other' | 'none' };

/** Reads the sandbox's `Authorization` (one value): `SharedKey <account>:<signature>`, another scheme, or none. */
export function parseSandboxAuthorization(values: readonly string[] | undefined): SandboxSignature {
  if (values === undefined || values.length === 0) return { scheme: 'none' };
  const m = values.length === 1 ? /^SharedKey ([^\s:]+):\S+$/.exec(values[0]!) : null;
  return m ? { scheme: 'SharedKey', account: m[1]! } : { scheme: 'other' };
}
