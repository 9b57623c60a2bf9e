/** Test PKI: a CA per role (upstream servers, mTLS) with leaves, written to files for curl, git and Envoy. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, generateCa } from '../../src/sds/ca.js';

export interface TestPki {
  readonly caFile: string;
  readonly caPem: string;
  /** Leaf PEMs by hostname. */
  readonly leaves: Map<string, { cert: string; key: string }>;
}

/** Creates a CA named `name` in `dir` and a server leaf for each of `hosts`. */
export async function makePki(dir: string, name: string, hosts: string[]): Promise<TestPki> {
  const pem = await generateCa(`${name} test CA`);
  const ca = await CertificateAuthority.fromPem(pem.certPem, pem.keyPem);
  const leaves = new Map<string, { cert: string; key: string }>();
  for (const host of hosts) {
    const leaf = await ca.mintLeaf(host);
    leaves.set(host, { cert: leaf.certificateChainPem, key: leaf.privateKeyPem });
  }
  const caFile = join(dir, `${name}-ca.crt`);
  writeFileSync(caFile, pem.certPem);
  return { caFile, caPem: pem.certPem, leaves };
}
