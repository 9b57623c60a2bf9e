/**
 * With `--bind-sandbox-to-cert`, SDS leaves are per (sandbox, host): two sidecars, each with its own
 * client certificate, asking authproxy (over real mTLS) for the same host get different leaves and keys,
 * so one sandbox's sidecar can neither obtain nor reuse another's. Without the flag (a sandbox id is then
 * only a claim), one leaf per host is shared, as before.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startService, type Service } from '../../src/serve/service.js';
import { generateCa } from '../../src/sds/ca.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { makeMtls, type MtlsFiles } from '../helpers/mtls.js';
import { decodeSecret, openDelta, sdsClient, SECRET_TYPE_URL } from '../helpers/sds-client.js';

const CONFIG = `
sandboxes:
  sb-1:
    rules: [{ name: r, match_hosts: ["api.example.com"], headers: [{ name: Authorization, type: plaintext, value: "Bearer one" }] }]
  sb-2:
    rules: [{ name: r, match_hosts: ["api.example.com"], headers: [{ name: Authorization, type: plaintext, value: "Bearer two" }] }]
`;

describe('SDS leaves per (sandbox, host) with --bind-sandbox-to-cert', () => {
  let dir: TempDir;
  let mtls: MtlsFiles;
  let bound: Service;
  let shared: Service;

  beforeAll(async () => {
    dir = tempDir();
    mtls = makeMtls(dir.path);
    const ca = await generateCa('SDS bound test CA');
    const authority = { cert: dir.file('ca.crt', ca.certPem), key: dir.file('ca.key', ca.keyPem) };
    writeFileSync(join(dir.path, 'config.yaml'), CONFIG);
    const tls = { cert: mtls.serverCert, key: mtls.serverKey, clientCa: mtls.ca };
    const common = {
      config: join(dir.path, 'config.yaml'),
      listen: '127.0.0.1:0',
      sandboxId: 'default',
      tls,
      ca: authority,
    };
    bound = await startService({ ...common, bindSandboxToCert: true }, createLogger('silent'));
    shared = await startService(common, createLogger('silent'));
  });
  afterAll(async () => {
    await bound?.close();
    await shared?.close();
    dir?.cleanup();
  });

  /** The leaf a sidecar holding `cn`'s client certificate gets for `host`: its serial and key. */
  async function leafFor(
    service: Service,
    cn: string,
    host = 'api.example.com',
    metadata: Record<string, string> = { 'x-sandbox-id': cn },
  ) {
    const files = mtls.client(cn);
    const client = sdsClient(
      service.address.replace('127.0.0.1', 'localhost'),
      grpc.credentials.createSsl(readFileSync(mtls.ca), readFileSync(files.key), readFileSync(files.cert)),
    );
    try {
      const stream = openDelta(client, metadata);
      const r = await stream.send({ type_url: SECRET_TYPE_URL, resource_names_subscribe: [host] }).next();
      stream.cancel();
      if (!r.resources?.length) return { removed: r.removed_resources ?? [] };
      const secret = decodeSecret(r.resources[0]!.resource);
      return { serial: r.resources[0]!.version, key: secret.keyPem };
    } finally {
      client.close();
    }
  }

  it('each sandbox gets a leaf and key of its own for the same host, and keeps reusing only its own', async () => {
    const one = await leafFor(bound, 'sb-1');
    const two = await leafFor(bound, 'sb-2');
    expect(one.serial).toBeDefined();
    expect(two.serial).toBeDefined();
    expect(two.serial).not.toBe(one.serial);
    expect(two.key).not.toBe(one.key);
    expect((await leafFor(bound, 'sb-1')).serial).toBe(one.serial);
    expect((await leafFor(bound, 'sb-2')).serial).toBe(two.serial);
  });

  it("a sidecar can't ask for another sandbox's leaf by naming it", async () => {
    expect(await leafFor(bound, 'sb-1', 'api.example.com', { 'x-sandbox-id': 'sb-2' })).toEqual({
      removed: ['api.example.com'],
    });
  });

  it('without the flag one leaf per host is shared (sandbox ids are claims there, not proofs)', async () => {
    const one = await leafFor(shared, 'sb-1');
    expect((await leafFor(shared, 'sb-2')).serial).toBe(one.serial);
  });
});
