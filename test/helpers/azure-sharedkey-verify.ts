/**
 * An Azure Storage Shared Key verifier for the loopback fake, written from Microsoft's description of the
 * scheme ("Authorize with Shared Key", blob/queue/file service format, version 2015-02-21 and later) and
 * deliberately independent of src/cloud/azure: it reads the request as the upstream received it (raw
 * header list, raw URL), builds the string-to-sign its own way and compares signatures in constant time.
 * Header names are sorted in plain code-unit order, which is what the documentation says; the e2e
 * requests carry no header pair on which that differs from the service's culture-aware order.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** What verification found; `account` is the one the Authorization header named. */
export interface AzureVerified {
  readonly ok: boolean;
  readonly account?: string;
  readonly problem?: string;
}

/** Lower-case name -> values, from the raw header list (so a repeated header is seen as repeated). */
function headerMap(req: IncomingMessage): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const list = map.get(name) ?? [];
    list.push(req.rawHeaders[i + 1]!);
    map.set(name, list);
  }
  return map;
}

/** Step by step as documented: VERB, the eleven standard headers, CanonicalizedHeaders, CanonicalizedResource. */
export function blobStringToSign(method: string, url: string, headers: Map<string, string[]>, account: string): string {
  const value = (name: string) => (headers.get(name) ?? []).join(',');
  const lines = [method];
  for (const name of [
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
  ]) {
    const v = value(name);
    lines.push(name === 'content-length' && v === '0' ? '' : v);
  }
  let canonicalHeaders = '';
  const msNames = [...headers.keys()].filter((n) => n.startsWith('x-ms-'));
  msNames.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of msNames) canonicalHeaders += `${name}:${value(name).replace(/\s+/g, ' ').trim()}\n`;
  const parsed = new URL(url, 'https://fake.invalid');
  let resource = `/${account}${parsed.pathname}`;
  const names = [...new Set([...parsed.searchParams.keys()].map((k) => k.toLowerCase()))].sort();
  for (const name of names) {
    const values: string[] = [];
    for (const [k, v] of parsed.searchParams) if (k.toLowerCase() === name) values.push(v);
    resource += `\n${name}:${values.sort().join(',')}`;
  }
  return `${lines.join('\n')}\n${canonicalHeaders}${resource}`;
}

/** The Table service's form: VERB, Content-MD5, Content-Type, the date (x-ms-date if sent), `/account/path` and `?comp=`. */
export function tableStringToSign(
  method: string,
  url: string,
  headers: Map<string, string[]>,
  account: string,
): string {
  const value = (name: string) => (headers.get(name) ?? []).join(',');
  const parsed = new URL(url, 'https://fake.invalid');
  const comp = parsed.searchParams.get('comp');
  const resource = `/${account}${parsed.pathname}${comp === null ? '' : `?comp=${comp}`}`;
  return [method, value('content-md5'), value('content-type'), value('x-ms-date') || value('date'), resource].join(
    '\n',
  );
}

/**
 * Verifies the request's `Authorization: SharedKey <account>:<signature>` with that account's REAL key
 * from `keys` (base64, as the portal shows it), in the blob/queue/file/dfs form or (`table`) the Table form. A missing header, an unknown account, a missing date or
 * a wrong signature is not ok, with the problem in words.
 */
export function verifySharedKey(req: IncomingMessage, keys: ReadonlyMap<string, string>, table = false): AzureVerified {
  const headers = headerMap(req);
  const auth = headers.get('authorization');
  if (auth?.length !== 1) return { ok: false, problem: 'no Authorization header' };
  const m = /^SharedKey ([^:]+):(.+)$/.exec(auth[0]!);
  if (!m) return { ok: false, problem: 'not a SharedKey Authorization' };
  const account = m[1]!;
  const key = keys.get(account);
  if (!key) return { ok: false, account, problem: `unknown account ${account}` };
  if (!headers.has('x-ms-date') && !headers.has('date')) return { ok: false, account, problem: 'no date' };
  // The service's own URL parser would decode `+` in a query value as '+', not a space: URLSearchParams
  // decodes it as a space, so `+` is escaped first.
  const url = (req.url ?? '/').replace(/\+/g, '%2B');
  const expected = createHmac('sha256', Buffer.from(key, 'base64'))
    .update((table ? tableStringToSign : blobStringToSign)(req.method ?? 'GET', url, headers, account), 'utf8')
    .digest();
  const given = Buffer.from(m[2]!, 'base64');
  const ok = given.length === expected.length && timingSafeEqual(given, expected);
  return ok ? { ok, account } : { ok, account, problem: 'signature mismatch' };
}
