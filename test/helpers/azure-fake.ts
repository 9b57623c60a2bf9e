/**
 * A loopback fake of Azure Blob Storage for the e2e test, answering inside the sidecar rig's TLS upstream
 * (`upstreamHandler`), so Envoy reaches it as `<account>.blob.core.windows.net`. Every request is
 * authenticated as the service would: a Shared Key signature verified with the REAL account key by
 * azure-sharedkey-verify.ts (not by authproxy's signer), or a SAS that must be exactly the configured token
 * (the fake does not compute SAS signatures; it checks that the real token arrived and nothing else).
 * It keeps blobs in memory so that create container / upload / download / list round-trip, and records
 * every request as text so tests can check that no placeholder reached it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifySharedKey, type AzureVerified } from './azure-sharedkey-verify.js';

/** One request the fake received. */
export interface AzureSeen extends AzureVerified {
  readonly host: string;
  readonly method: string;
  readonly url: string;
  readonly auth: 'shared_key' | 'sas' | 'none';
  /** Request line, headers and (text) body. */
  readonly raw: string;
}

/** The fake's handler, what it saw, and its blobs (`container/name` -> bytes). */
export interface AzureFake {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly seen: AzureSeen[];
  readonly blobs: Map<string, Buffer>;
}

/** Parameters that belong to a SAS (the fake's own list, from the SAS documentation). */
const SAS_NAMES = new Set([
  'sv',
  'ss',
  'srt',
  'sp',
  'se',
  'st',
  'spr',
  'sip',
  'si',
  'sr',
  'sig',
  'sdd',
  'ses',
  'skoid',
  'sktid',
  'skt',
  'ske',
  'sks',
  'skv',
  'rscc',
  'rscd',
  'rsce',
  'rscl',
  'rsct',
]);
const LAST_MODIFIED = 'Wed, 01 Jan 2025 00:00:00 GMT';

const xml = (body: string) => `<?xml version="1.0" encoding="utf-8"?>${body}`;
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': code })
    .end(xml(`<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`));
}

/** Whether the query's SAS parameters are exactly those of `token` (order aside), each once. */
function sasMatches(url: string, token: string): boolean {
  const sent = [...new URL(url, 'https://fake.invalid').searchParams].filter(([k]) => SAS_NAMES.has(k.toLowerCase()));
  const want = [...new URLSearchParams(token)];
  const key = (pairs: Array<[string, string]>) => JSON.stringify(pairs.map(([k, v]) => `${k}=${v}`).sort());
  return key(sent) === key(want);
}

/** Starts the fake: `keys` maps account names to their REAL base64 keys; `sasToken` is the one valid SAS. */
export function createAzureFake(keys: ReadonlyMap<string, string>, sasToken?: string): AzureFake {
  const blobs = new Map<string, Buffer>();
  const containers = new Set<string>();
  const seen: AzureSeen[] = [];

  const blobService = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    const [container = '', ...rest] = url.pathname.slice(1).split('/');
    const name = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const common = {
      'x-ms-request-id': createHash('md5').update(String(seen.length)).digest('hex'),
      'x-ms-version': String(req.headers['x-ms-version'] ?? ''),
    };
    if (q.get('restype') === 'container' && !name) {
      if (req.method === 'PUT') {
        containers.add(container);
        return res.writeHead(201, { ...common, etag: '"0x1"', 'last-modified': LAST_MODIFIED }).end();
      }
      if (req.method === 'GET' && q.get('comp') === 'list') {
        const prefix = `${container}/`;
        const items = [...blobs]
          .filter(([k]) => k.startsWith(prefix))
          .map(
            ([k, v]) =>
              `<Blob><Name>${xmlEscape(k.slice(prefix.length))}</Name><Properties><Last-Modified>${LAST_MODIFIED}</Last-Modified><Etag>0x1</Etag><Content-Length>${v.length}</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType></Properties></Blob>`,
          )
          .join('');
        return res
          .writeHead(200, { ...common, 'content-type': 'application/xml' })
          .end(
            xml(
              `<EnumerationResults ServiceEndpoint="https://${req.headers.host}/" ContainerName="${xmlEscape(container)}"><Blobs>${items}</Blobs><NextMarker /></EnumerationResults>`,
            ),
          );
      }
    }
    if (container && name && req.method === 'PUT') {
      blobs.set(`${container}/${name}`, body);
      const md5 = createHash('md5').update(body).digest('base64');
      return res
        .writeHead(201, {
          ...common,
          etag: '"0x2"',
          'last-modified': LAST_MODIFIED,
          'content-md5': md5,
          'x-ms-request-server-encrypted': 'true',
        })
        .end();
    }
    if (container && name && (req.method === 'GET' || req.method === 'HEAD')) {
      const data = blobs.get(`${container}/${name}`);
      if (!data) return fail(res, 404, 'BlobNotFound', 'The specified blob does not exist.');
      const props = {
        ...common,
        etag: '"0x2"',
        'last-modified': LAST_MODIFIED,
        'x-ms-blob-type': 'BlockBlob',
        'content-type': 'application/octet-stream',
        'accept-ranges': 'bytes',
      };
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers['x-ms-range'] ?? req.headers.range ?? ''));
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] ? Number(range[2]) : data.length - 1, data.length - 1);
        const part = data.subarray(start, end + 1);
        return res
          .writeHead(206, {
            ...props,
            'content-length': part.length,
            'content-range': `bytes ${start}-${end}/${data.length}`,
          })
          .end(req.method === 'HEAD' ? undefined : part);
      }
      return res
        .writeHead(200, { ...props, 'content-length': data.length })
        .end(req.method === 'HEAD' ? undefined : data);
    }
    fail(res, 400, 'UnsupportedHttpVerb', `not in the fake: ${req.method} ${url.pathname}`);
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
      const raw = `${req.method} ${req.url}\n${req.rawHeaders.join('\n')}\n\n${body.length <= 65_536 ? body.toString('latin1') : ''}`;
      let verified: AzureVerified;
      let auth: AzureSeen['auth'] = 'none';
      if (req.headers.authorization !== undefined) {
        auth = 'shared_key';
        verified = verifySharedKey(req, keys, host.includes('.table.'));
        const account = host.split('.')[0];
        if (verified.ok && verified.account !== account)
          verified = { ok: false, account: verified.account, problem: 'signed for another account' };
      } else if (sasToken !== undefined && /[?&]sig=/.test(req.url ?? '')) {
        auth = 'sas';
        verified = sasMatches(req.url ?? '/', sasToken)
          ? { ok: true }
          : { ok: false, problem: 'the SAS is not the configured token' };
      } else verified = { ok: false, problem: 'anonymous access is not allowed' };
      seen.push({ ...verified, host, method: req.method ?? '', url: req.url ?? '', auth, raw });
      if (!verified.ok) return fail(res, 403, 'AuthenticationFailed', verified.problem ?? 'failed');
      if (!host.endsWith('.blob.core.windows.net'))
        return fail(res, 400, 'UnsupportedService', 'the fake serves blob only');
      blobService(req, res, body);
    });
  };
  return { handler, seen, blobs };
}
