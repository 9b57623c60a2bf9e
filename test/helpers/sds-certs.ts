/** Checks on minted leaves, done with node:crypto alone (independent of the library that minted them). */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { expect } from 'vitest';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/**
 * Asserts that `chainPem` is a leaf for `host` signed by `caPem`, valid at `now`, not a CA, for server
 * auth only, and that `keyPem` is the private key of its public key. Returns the parsed leaf.
 */
export function expectValidLeaf(
  chainPem: string,
  keyPem: string,
  caPem: string,
  host: string,
  now = Date.now(),
): X509Certificate {
  const ca = new X509Certificate(caPem);
  const leaf = new X509Certificate(chainPem);
  expect(leaf.verify(ca.publicKey)).toBe(true);
  expect(leaf.checkIssued(ca)).toBe(true);
  if (isIP(host)) expect(leaf.checkIP(host)).toBe(host);
  else expect(leaf.checkHost(host, { wildcards: false })).toBe(host);
  expect(leaf.ca).toBe(false);
  expect(leaf.keyUsage).toEqual([SERVER_AUTH]);
  expect(Date.parse(leaf.validFrom)).toBeLessThanOrEqual(now);
  expect(Date.parse(leaf.validTo)).toBeGreaterThan(now);
  expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
  return leaf;
}

/** The base64 body lines of a PEM, to search logs for any fragment of a key. */
export function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
}
