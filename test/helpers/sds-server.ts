/**
 * A real SDS gRPC server on a Unix socket (as in production), over a real CA, with a manual clock, a
 * counting minter, a recording mint policy and captured logs: what the SDS integration tests share.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority, generateCa, type LeafMinter } from '../../src/sds/ca.js';
import { LeafCache } from '../../src/sds/leaf-cache.js';
import { addSdsService, type MintPolicy, type SdsService } from '../../src/sds/server.js';
import { tempDir } from './fs.js';
import { captureLogs } from './logs.js';
import { sdsClient } from './sds-client.js';
import { ManualClock } from './sds-clock.js';

export interface SdsFixture {
  readonly address: string;
  readonly client: grpc.Client;
  readonly clock: ManualClock;
  readonly caPem: string;
  readonly cache: LeafCache;
  readonly sds: SdsService;
  /** Hostnames the CA was asked to mint, in order. */
  readonly minted: string[];
  /** Every (sandbox, hostname) the mint policy was asked about. */
  readonly policyCalls: Array<[string, string]>;
  /** Hostnames the policy refuses from now on (to test revocation at renewal). */
  readonly revoked: Set<string>;
  readonly logs: ReturnType<typeof captureLogs>;
  close(): Promise<void>;
}

/**
 * Default policy: sandbox "sb-2" may only have only-sb2.example.com; any other sandbox any name under
 * example.com; a revoked name nobody.
 */
export async function startSds(): Promise<SdsFixture> {
  const dir = tempDir('authproxy-sds-');
  const clock = new ManualClock();
  const { certPem, keyPem } = await generateCa('SDS test CA');
  const ca = await CertificateAuthority.fromPem(certPem, keyPem);
  const minted: string[] = [];
  const minter: LeafMinter = {
    mintLeaf: (hostname, options) => {
      minted.push(hostname);
      return ca.mintLeaf(hostname, options);
    },
  };
  const logs = captureLogs('debug');
  const cache = new LeafCache(minter, { clock, log: logs.log });
  const policyCalls: Array<[string, string]> = [];
  const revoked = new Set<string>();
  const mayMint: MintPolicy = (sandbox, host) => {
    policyCalls.push([sandbox, host]);
    if (revoked.has(host)) return false;
    return sandbox === 'sb-2' ? host === 'only-sb2.example.com' : host.endsWith('.example.com');
  };
  const server = new grpc.Server();
  const sds = addSdsService(server, { leafCache: cache, mayMint, defaultSandboxId: 'sb-default', log: logs.log });
  const address = `unix:${join(dir.path, 'sds.sock')}`;
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  const client = sdsClient(address);
  return {
    address,
    client,
    clock,
    caPem: certPem,
    cache,
    sds,
    minted,
    policyCalls,
    revoked,
    logs,
    close: async () => {
      client.close();
      sds.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      dir.cleanup();
    },
  };
}
