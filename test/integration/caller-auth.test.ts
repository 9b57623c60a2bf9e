/**
 * Only Envoy may get decisions (they contain secrets): the Unix socket is 0600, so another user cannot
 * connect; on TCP, mTLS requires a client certificate from the configured CA.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { makeMtls, type MtlsFiles } from '../helpers/mtls.js';
import { stageForOtherUsers } from '../helpers/other-user.js';

const CONFIG = `
rules:
  - name: r
    match_hosts: ["api.example.com"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer caller-auth-canary" }]
`;
const isRoot = process.getuid?.() === 0;
if (!isRoot)
  console.warn('SKIPPED unix-socket permission test: needs root to run a client as another user (CI runs as root)');

describe('caller authentication', () => {
  let dir: TempDir;
  let mtls: MtlsFiles;
  let unixService: Service;
  let tlsService: Service;
  let boundService: Service;
  const log = createLogger('silent');

  beforeAll(async () => {
    dir = tempDir();
    chmodSync(dir.path, 0o755);
    const config = dir.file('config.yaml', CONFIG);
    mtls = makeMtls(dir.path);
    unixService = await startService(
      { config, listen: `unix:${join(dir.path, 'ext.sock')}`, sandboxId: 'default' },
      log,
    );
    tlsService = await startService(
      {
        config,
        listen: '127.0.0.1:0',
        sandboxId: 'default',
        tls: { cert: mtls.serverCert, key: mtls.serverKey, clientCa: mtls.ca },
      },
      log,
    );
    const multi = dir.file(
      'multi.yaml',
      `
sandboxes:
  sb-1:
    rules: [{ name: r1, match_hosts: ["api.example.com"], headers: [{ name: Authorization, type: plaintext, value: "Bearer for-sb-1" }] }]
  sb-2:
    rules: [{ name: r2, match_hosts: ["api.example.com"], headers: [{ name: Authorization, type: plaintext, value: "Bearer for-sb-2" }] }]
`,
    );
    boundService = await startService(
      {
        config: multi,
        listen: '127.0.0.1:0',
        sandboxId: 'default',
        bindSandboxToCert: true,
        tls: { cert: mtls.serverCert, key: mtls.serverKey, clientCa: mtls.ca },
      },
      log,
    );
  });
  afterAll(async () => {
    await unixService?.close();
    await tlsService?.close();
    await boundService?.close();
    dir?.cleanup();
  });

  it.skipIf(!isRoot)('a process running as another user cannot connect to the 0600 socket', () => {
    const socket = unixService.address.slice('unix:'.length);
    const script = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
    // Node reached through a stage: the checkout's own Node may sit under a directory uid 65534 cannot traverse.
    const stage = stageForOtherUsers();
    const [cmd, ...args] = stage.wrap([
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--',
      stage.node,
      '-e',
      script,
    ]);
    const r = spawnSync(cmd!, args, { encoding: 'utf8' });
    stage.cleanup();
    expect(r.stdout.trim()).toBe('EACCES');
  });

  it('the socket owner gets decisions', async () => {
    const client = extProcClient(unixService.address);
    const { responses } = await exchange(client, [requestHeaders('api.example.com')]);
    expect(setHeaders(responses[0]!).authorization).toBe('Bearer caller-auth-canary');
    client.close();
  });

  const tlsClient = (certs?: { cert: string; key: string }, ca = mtls.ca) =>
    extProcClient(
      tlsService.address.replace('127.0.0.1', 'localhost'),
      grpc.credentials.createSsl(
        readFileSync(ca),
        certs ? readFileSync(certs.key) : null,
        certs ? readFileSync(certs.cert) : null,
      ),
    );

  it('over TCP, a client without a certificate gets no decision', async () => {
    const client = tlsClient();
    const { responses, status } = await exchange(client, [requestHeaders('api.example.com')]);
    expect(responses).toHaveLength(0);
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    client.close();
  });

  it('over TCP, a client certificate from another CA gets no decision', async () => {
    const other = makeMtls(dir.path, 'other');
    const client = tlsClient(other.client('sb-1'));
    const { responses, status } = await exchange(client, [requestHeaders('api.example.com')]);
    expect(responses).toHaveLength(0);
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    client.close();
  });

  describe('with --bind-sandbox-to-cert', () => {
    const bound = (cn: string) => {
      const files = mtls.client(cn);
      return extProcClient(
        boundService.address.replace('127.0.0.1', 'localhost'),
        grpc.credentials.createSsl(readFileSync(mtls.ca), readFileSync(files.key), readFileSync(files.cert)),
      );
    };
    const auth = async (client: grpc.Client, md: Record<string, string> = {}) =>
      setHeaders((await exchange(client, [requestHeaders('api.example.com')], md)).responses[0]!).authorization;

    it("a sidecar gets its own sandbox's credential, named by metadata or by its certificate alone", async () => {
      const client = bound('sb-1');
      expect(await auth(client, { 'x-sandbox-id': 'sb-1' })).toBe('Bearer for-sb-1');
      expect(await auth(client)).toBe('Bearer for-sb-1');
      client.close();
    });

    it('a sidecar cannot speak for another sandbox', async () => {
      const client = bound('sb-1');
      expect(await auth(client, { 'x-sandbox-id': 'sb-2' })).toBeUndefined();
      client.close();
    });
  });

  it('over TCP, a client certificate from the configured CA gets decisions', async () => {
    const client = tlsClient(mtls.client('sb-1'));
    const { responses } = await exchange(client, [requestHeaders('api.example.com')]);
    expect(setHeaders(responses[0]!).authorization).toBe('Bearer caller-auth-canary');
    client.close();
  });
});
