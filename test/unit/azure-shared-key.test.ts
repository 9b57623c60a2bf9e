/**
 * Azure Shared Key and SAS placements without Envoy. The signer is checked against the real
 * `@azure/storage-blob` SDK: requests the SDK signs with a key (captured before they would be sent) must get
 * the same Authorization from authproxy's signer over the method, raw path and headers, including metadata
 * names on which the service's culture-aware header order differs from code-unit order. The Table form is
 * checked against the documented string-to-sign; the handler's refusals, and the SAS rewrite, by outcome.
 */
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { AzureAuthorizer, AZURE_REFUSALS, type AzureDecision } from '../../src/cloud/azure/handler.js';
import { compareSharedKeyHeaders } from '../../src/cloud/azure/header-order.js';
import { withSas } from '../../src/cloud/azure/sas.js';
import { sharedKeyAuthorization, stringToSign } from '../../src/cloud/azure/shared-key.js';
import { azureStorageService } from '../../src/policy/azure-hosts.js';
import type { Outcome } from '../../src/engine/engine.js';
import { captureLogs } from '../helpers/logs.js';

const ACCOUNT = 'acct1';
const KEY = Buffer.from('FAKE-unit-test-account-key-0123456789abcdef');

interface Captured {
  method: string;
  path: string;
  headers: Record<string, string[]>;
  authorization: string;
}

/** Runs `op` against a client whose HTTP client records each signed request and fails it (nothing is sent). */
async function signedBySdk(op: (service: BlobServiceClient) => Promise<unknown>): Promise<Captured> {
  const captured: Captured[] = [];
  const httpClient = {
    // The SDK hands a custom client core-http's WebResource: its headers list is `headersArray()`.
    sendRequest: async (request: {
      method: string;
      url: string;
      headers: { headersArray(): Array<{ name: string; value: string }> };
    }) => {
      const url = new URL(request.url);
      const headers: Record<string, string[]> = {};
      for (const { name, value } of request.headers.headersArray()) headers[name.toLowerCase()] = [value];
      const { authorization = [''], ...rest } = headers;
      captured.push({
        method: request.method,
        path: url.pathname + url.search,
        headers: rest,
        authorization: authorization[0]!,
      });
      throw new Error('not sent');
    },
  };
  const service = new BlobServiceClient(
    `https://${ACCOUNT}.blob.core.windows.net`,
    new StorageSharedKeyCredential(ACCOUNT, KEY.toString('base64')),
    { httpClient, retryOptions: { maxTries: 1 } } as never,
  );
  await op(service).catch(() => undefined);
  expect(captured).toHaveLength(1);
  return captured[0]!;
}

const resign = (c: Captured) =>
  sharedKeyAuthorization(
    { method: c.method, path: c.path, headers: c.headers, account: ACCOUNT, service: 'blob' },
    KEY,
  );

describe('Shared Key signing agrees with @azure/storage-blob', () => {
  it.each([
    ['create a container', (s: BlobServiceClient) => s.getContainerClient('c1').create()],
    [
      'upload with metadata in culture-sensitive order (a_ before a1)',
      (s: BlobServiceClient) =>
        s
          .getContainerClient('c1')
          .getBlockBlobClient('dir/ä b+c.txt')
          .upload('hello', 5, { metadata: { a1: 'x', a_: 'y', b: 'z' } }),
    ],
    ['download a range', (s: BlobServiceClient) => s.getContainerClient('c1').getBlobClient('x.txt').download(2, 10)],
    [
      'list with an encoded prefix',
      (s: BlobServiceClient) =>
        s.getContainerClient('c1').listBlobsFlat({ prefix: 'a b/ü', includeMetadata: true }).next(),
    ],
    [
      'an empty PUT with content-type',
      (s: BlobServiceClient) =>
        s
          .getContainerClient('c1')
          .getBlockBlobClient('e')
          .upload('', 0, { blobHTTPHeaders: { blobContentType: 'text/plain' } }),
    ],
    [
      'conditional delete',
      (s: BlobServiceClient) =>
        s
          .getContainerClient('c1')
          .getBlobClient('x')
          .delete({ conditions: { ifMatch: '"0x1"', ifUnmodifiedSince: new Date(0) } }),
    ],
  ])('%s', async (_what, op) => {
    const c = await signedBySdk(op);
    expect(resign(c)).toBe(c.authorization);
  });

  it('the header order is the service culture-aware one, not code-unit order', () => {
    const names = ['x-ms-meta-a1', 'x-ms-meta-a_', 'x-ms-meta-ab', 'x-ms-meta-a-c', 'x-ms-date', 'x-ms-version'];
    expect([...names].sort(compareSharedKeyHeaders)).toEqual([
      'x-ms-date',
      'x-ms-meta-a_',
      'x-ms-meta-a1',
      'x-ms-meta-ab',
      'x-ms-meta-a-c',
      'x-ms-version',
    ]);
  });

  it('the Table service string-to-sign: VERB, Content-MD5, Content-Type, date, resource with ?comp only', () => {
    const headers = {
      'content-type': ['application/json'],
      'x-ms-date': ['Wed, 01 Jan 2025 00:00:00 GMT'],
      'x-ms-version': ['2019-02-02'],
    };
    expect(
      stringToSign({
        method: 'GET',
        path: '/mytable()?$filter=x&comp=acl',
        headers,
        account: ACCOUNT,
        service: 'table',
      }),
    ).toBe('GET\n\napplication/json\nWed, 01 Jan 2025 00:00:00 GMT\n/acct1/mytable()?comp=acl');
  });

  it('a repeated header or a broken query escape is unsignable', () => {
    expect(() =>
      stringToSign({
        method: 'GET',
        path: '/c',
        headers: { 'x-ms-date': ['a', 'b'] },
        account: ACCOUNT,
        service: 'blob',
      }),
    ).toThrow('header x-ms-date is repeated');
    expect(() =>
      stringToSign({ method: 'GET', path: '/c?a=%zz', headers: {}, account: ACCOUNT, service: 'queue' }),
    ).toThrow('invalid percent-escape');
  });
});

describe('which hosts', () => {
  it.each([
    ['acct1.blob.core.windows.net', 'blob'],
    ['acct1.dfs.core.windows.net', 'dfs'],
    ['acct1.queue.core.windows.net', 'queue'],
    ['acct1.table.core.windows.net', 'table'],
    ['acct1.file.core.windows.net', 'file'],
    ['acct2.blob.core.windows.net', undefined],
    ['acct1-secondary.blob.core.windows.net', undefined],
    ['acct1.web.core.windows.net', undefined],
    ['x.acct1.blob.core.windows.net', undefined],
    ['acct1.blob.core.windows.net.evil.test', undefined],
  ])('%s -> %s', (host, service) => {
    expect(azureStorageService(host, ACCOUNT)).toBe(service);
  });
});

describe('SAS placement', () => {
  const TOKEN = 'sv=2025-01-05&sp=r&sig=REAL%2Bsig%3D';
  it.each([
    ['/c/b.txt', `/c/b.txt?${TOKEN}`],
    ['/c?restype=container&comp=list', `/c?restype=container&comp=list&${TOKEN}`],
    [
      '/c/b?sv=1&SIG=forged&comp=block&se=2000&blockid=QQ%3D%3D&skoid=x&rscd=attachment',
      `/c/b?comp=block&blockid=QQ%3D%3D&${TOKEN}`,
    ],
    ['/c/b?%73ig=encoded-name&x=1&', `/c/b?x=1&${TOKEN}`],
  ])('%s', (path, expected) => {
    expect(withSas(path, TOKEN)).toBe(expected);
  });
});

describe('the handler', () => {
  const keyRule = { name: 'azure', position: 0, account: ACCOUNT, auth: { kind: 'shared_key' as const, key: KEY } };
  const decision = (rule: AzureDecision['rule'] = keyRule): AzureDecision => ({
    outcome: 'azure',
    rule,
    service: 'blob',
    target: { host: 'acct1.blob.core.windows.net', port: 443 },
  });
  const req = { method: 'GET', scheme: 'https', authority: 'acct1.blob.core.windows.net', path: '/c/b.txt?timeout=30' };
  const run = (headers: Record<string, string[]>, rule?: AzureDecision['rule']) => {
    const logs = captureLogs();
    const out = new AzureAuthorizer({ log: logs.log }).handle(
      decision(rule),
      req,
      { endOfStream: true, headers: () => headers },
      'sb',
    ) as Outcome;
    return { out, logs: logs.text() };
  };
  const date = { 'x-ms-date': ['Wed, 01 Jan 2025 00:00:00 GMT'], 'x-ms-version': ['2025-01-05'] };

  it('re-signs a request signed for the account, keeping its x-ms-date', () => {
    const { out } = run({ ...date, authorization: ['SharedKey acct1:cGxhY2Vob2xkZXI='] });
    const expected = sharedKeyAuthorization(
      { method: 'GET', path: req.path, headers: { ...date }, account: ACCOUNT, service: 'blob' },
      KEY,
    );
    expect(out).toEqual({ kind: 'continue', set: [['authorization', expected]], remove: ['proxy-authorization'] });
  });

  it.each([
    ['no Authorization', {}, 403, AZURE_REFUSALS.unsigned],
    ['a Bearer token', { authorization: ['Bearer x'] }, 403, AZURE_REFUSALS.unsigned],
    ['SharedKeyLite', { authorization: ['SharedKeyLite acct1:x'] }, 403, AZURE_REFUSALS.unsigned],
    [
      'another account',
      { authorization: ['SharedKey other1:x'] },
      403,
      'Azure request refused: signed for storage account "other1", but acct1.blob.core.windows.net belongs to "acct1"',
    ],
    [
      'an account name that is not one',
      { authorization: ['SharedKey Other_1!:x'] },
      403,
      'Azure request refused: signed for another storage account, but acct1.blob.core.windows.net belongs to "acct1"',
    ],
    ['no date', { authorization: ['SharedKey acct1:x'], 'x-ms-version': ['1'] }, 400, AZURE_REFUSALS.noDate],
    [
      'a repeated x-ms header',
      { authorization: ['SharedKey acct1:x'], ...date, 'x-ms-meta-a': ['1', '2'] },
      400,
      "Azure request can't be re-signed: header x-ms-meta-a is repeated",
    ],
  ])('%s is refused', (_what, headers, status, body) => {
    const { out, logs } = run(headers as Record<string, string[]>);
    expect(out).toEqual({ kind: 'immediate', status, body });
    expect(logs).not.toContain(KEY.toString('base64'));
  });

  it('SAS: the path gets the token, the sandbox Authorization is dropped, no header is read', () => {
    const { out } = run({}, { ...keyRule, auth: { kind: 'sas', query: 'sv=1&sig=CANARY' } });
    expect(out).toEqual({
      kind: 'continue',
      set: [[':path', '/c/b.txt?timeout=30&sv=1&sig=CANARY']],
      remove: ['authorization', 'proxy-authorization'],
    });
  });
});
