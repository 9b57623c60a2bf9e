/**
 * What a sandbox runs against Azure Storage in the e2e test: the real SDKs, each in its own process with
 * only the sandbox's environment (HTTPS_PROXY to the sidecar, authproxy's CA trusted through
 * NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE) and the placeholder credentials of `authproxy sandbox-env`:
 * `@azure/storage-blob` under Node and `azure-storage-blob` in the repo's .venv.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { AZURE_PLACEHOLDER_KEY, AZURE_PLACEHOLDER_SAS } from '../../src/envoy/sandbox-env.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The repo's venv Python, where scripts/setup-deps.sh installs azure-storage-blob. */
export const PYTHON = `${REPO}.venv/bin/python`;

/** Where the sandbox reaches the proxy and the fake (the rig upstream's port). */
export interface AzureSide {
  readonly proxyUrl: string;
  readonly authproxyCa: string;
  readonly port: number;
}

/** How the SDK authenticates: the placeholder key (signing as `account`), the placeholder SAS, or nothing. */
export type SandboxCredential = { readonly signAs: string } | 'sas' | 'anonymous';

/** What a round trip answered: the downloaded text and the listed names, or the HTTP status of the failure. */
export type RoundTrip = { ok: true; got: string; listed: string[] } | { ok: false; status: number };

function sandboxEnv(side: AzureSide, credential: SandboxCredential, account: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    HTTPS_PROXY: side.proxyUrl,
    https_proxy: side.proxyUrl,
    NODE_EXTRA_CA_CERTS: side.authproxyCa,
    REQUESTS_CA_BUNDLE: side.authproxyCa,
    ACCOUNT_URL: `https://${account}.blob.core.windows.net:${side.port}`,
    SIGN_AS: typeof credential === 'object' ? credential.signAs : '',
    AZURE_STORAGE_KEY: AZURE_PLACEHOLDER_KEY,
    AZURE_STORAGE_SAS_TOKEN: credential === 'sas' ? AZURE_PLACEHOLDER_SAS : '',
  };
}

const NODE = `
import { BlobServiceClient, StorageSharedKeyCredential, AnonymousCredential } from '@azure/storage-blob';
const { ACCOUNT_URL, SIGN_AS, AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, CONTAINER, NAME, TEXT } = process.env;
const credential = SIGN_AS ? new StorageSharedKeyCredential(SIGN_AS, AZURE_STORAGE_KEY) : new AnonymousCredential();
const url = AZURE_STORAGE_SAS_TOKEN ? ACCOUNT_URL + '/?' + AZURE_STORAGE_SAS_TOKEN : ACCOUNT_URL;
const service = new BlobServiceClient(url, credential, { retryOptions: { maxTries: 1 } });
try {
  const container = service.getContainerClient(CONTAINER);
  await container.create();
  await container.getBlockBlobClient(NAME).upload(TEXT, Buffer.byteLength(TEXT), { metadata: { origin: 'node' } });
  const download = await container.getBlobClient(NAME).download();
  const chunks = [];
  for await (const c of download.readableStreamBody) chunks.push(c);
  const listed = [];
  for await (const b of container.listBlobsFlat()) listed.push(b.name);
  console.log(JSON.stringify({ ok: true, got: Buffer.concat(chunks).toString(), listed }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, status: e.statusCode ?? 0, message: String(e.message).slice(0, 300) }));
}
`;

const PY = `
import json, os
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient
url, sign_as, sas = os.environ['ACCOUNT_URL'], os.environ['SIGN_AS'], os.environ['AZURE_STORAGE_SAS_TOKEN']
credential = {'account_name': sign_as, 'account_key': os.environ['AZURE_STORAGE_KEY']} if sign_as else (sas or None)
service = BlobServiceClient(account_url=url, credential=credential, retry_total=0)
try:
    container = service.get_container_client(os.environ['CONTAINER'])
    container.create_container()
    container.upload_blob(os.environ['NAME'], os.environ['TEXT'].encode(), metadata={'origin': 'python'})
    got = container.download_blob(os.environ['NAME']).readall().decode()
    listed = [b.name for b in container.list_blobs()]
    print(json.dumps({'ok': True, 'got': got, 'listed': listed}))
except HttpResponseError as e:
    print(json.dumps({'ok': False, 'status': e.status_code or 0, 'message': str(e)[:300]}))
`;

/** One round trip (create container, upload, download, list) from the Node SDK in a sandbox-like process. */
export async function nodeRoundTrip(
  side: AzureSide,
  account: string,
  credential: SandboxCredential,
  container: string,
  name: string,
  text: string,
): Promise<RoundTrip> {
  const env = { ...sandboxEnv(side, credential, account), CONTAINER: container, NAME: name, TEXT: text };
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', NODE], {
    env,
    cwd: REPO,
    timeout: 60_000,
  });
  return JSON.parse(stdout) as RoundTrip;
}

/** The same round trip from the Python SDK (requests through HTTPS_PROXY, REQUESTS_CA_BUNDLE). */
export async function pythonRoundTrip(
  side: AzureSide,
  account: string,
  credential: SandboxCredential,
  container: string,
  name: string,
  text: string,
): Promise<RoundTrip> {
  const env = { ...sandboxEnv(side, credential, account), CONTAINER: container, NAME: name, TEXT: text };
  const { stdout } = await run(PYTHON, ['-c', PY], { env, timeout: 60_000 });
  return JSON.parse(stdout) as RoundTrip;
}
