import { createPrivateKey, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthProxyError } from '../../src/errors.js';
import {
  CertificateAuthority,
  DEFAULT_LEAF_VALIDITY_MS,
  generateCa,
  LEAF_BACKDATE_MS,
  type CaPem,
} from '../../src/sds/ca.js';
import { subtle, x509 } from '../../src/sds/x509.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { expectValidLeaf } from '../helpers/sds-certs.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Rejects with an AuthProxyError; returns it for message checks. */
async function failure(p: Promise<unknown>): Promise<AuthProxyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthProxyError);
  return err as AuthProxyError;
}

describe('generateCa', () => {
  it('creates a P-256 CA: CA:TRUE pathLen 0 critical, keyCertSign, about ten years', async () => {
    const now = Date.now();
    const { certPem, keyPem } = await generateCa('Test CA', now);
    const node = new X509Certificate(certPem);
    expect(node.ca).toBe(true);
    expect(node.subject).toBe('CN=Test CA');
    expect(node.issuer).toBe('CN=Test CA');
    expect(node.verify(node.publicKey)).toBe(true);
    expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(node.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    const years = (Date.parse(node.validTo) - now) / (365 * DAY);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    const cert = new x509.X509Certificate(certPem);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('refuses an empty or over-long common name', async () => {
    expect((await failure(generateCa(''))).message).toBe('common name: must be 1-64 characters');
    expect((await failure(generateCa('x'.repeat(65)))).code).toBe('usage');
  });
});

describe('CertificateAuthority.mintLeaf', () => {
  let pem: CaPem;
  let ca: CertificateAuthority;
  beforeAll(async () => {
    pem = await generateCa();
    ca = await CertificateAuthority.fromPem(pem.certPem, pem.keyPem);
  });

  it('mints a leaf for the name: CA-signed, SAN, serverAuth, matching fresh key', async () => {
    const leaf = await ca.mintLeaf('API.Example.com.');
    expect(leaf.hostname).toBe('api.example.com');
    const cert = expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, pem.certPem, 'api.example.com');
    expect(cert.subjectAltName).toBe('DNS:api.example.com');
    expect(cert.subject).toBe('CN=api.example.com');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(leaf.serial).toBe(cert.serialNumber);
    expect(leaf.certificateChainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(leaf.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('sets the extensions a TLS server leaf needs', async () => {
    const leaf = new x509.X509Certificate((await ca.mintLeaf('ext.example.com')).certificateChainPem);
    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.critical]).toEqual([false, true]);
    const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const caSki = new x509.X509Certificate(pem.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
    expect(leaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('uses a fresh key and a random 16-byte positive serial for every leaf', async () => {
    const [a, b] = await Promise.all([ca.mintLeaf('same.example.com'), ca.mintLeaf('same.example.com')]);
    expect(a!.privateKeyPem).not.toBe(b!.privateKeyPem);
    expect(a!.serial).not.toBe(b!.serial);
    for (const serial of [a!.serial, b!.serial]) expect(serial).toMatch(/^[0-7][0-9A-F]{31}$/);
  });

  it('is valid from 5 minutes before now for 24 hours by default', async () => {
    const now = Math.floor(Date.now() / 1000) * 1000 + HOUR;
    const leaf = await ca.mintLeaf('window.example.com', { now });
    expect(leaf.notBefore).toBe(now - LEAF_BACKDATE_MS);
    expect(leaf.notAfter).toBe(now + DEFAULT_LEAF_VALIDITY_MS);
    expect(leaf.issuedAt).toBe(now);
    const cert = new X509Certificate(leaf.certificateChainPem);
    expect(Date.parse(cert.validFrom)).toBe(leaf.notBefore);
    expect(Date.parse(cert.validTo)).toBe(leaf.notAfter);
  });

  it('honours a configured leaf lifetime', async () => {
    const short = await CertificateAuthority.fromPem(pem.certPem, pem.keyPem, { leafValidityMs: 2 * HOUR });
    const now = Math.floor(Date.now() / 1000) * 1000;
    expect((await short.mintLeaf('short.example.com', { now })).notAfter).toBe(now + 2 * HOUR);
    expect(
      (await failure(CertificateAuthority.fromPem(pem.certPem, pem.keyPem, { leafValidityMs: 1000 }))).message,
    ).toMatch(/^leaf validity: /);
  });

  it('puts an IP literal in an IP SAN', async () => {
    const v4 = await ca.mintLeaf('127.0.0.1');
    expect(new X509Certificate(v4.certificateChainPem).subjectAltName).toBe('IP Address:127.0.0.1');
    expectValidLeaf(v4.certificateChainPem, v4.privateKeyPem, pem.certPem, '127.0.0.1');
    const v6 = await ca.mintLeaf('::1');
    expect(new X509Certificate(v6.certificateChainPem).checkIP('::1')).toBe('::1');
  });

  it('leaves the CN out of a name longer than 64 characters and marks the SAN critical', async () => {
    const host = `${'a'.repeat(60)}.example.com`;
    const leaf = await ca.mintLeaf(host);
    const cert = new x509.X509Certificate(leaf.certificateChainPem);
    expect(cert.subject).toBe('');
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.critical).toBe(true);
    expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, pem.certPem, host);
  });

  it.each(['*.example.com', 'a b', '', 'api.example.com:443'])('refuses to mint for %j', async (name) => {
    const err = await failure(ca.mintLeaf(name));
    expect(err.message).toMatch(/^hostname: .* is not a DNS name or IP literal$/);
  });

  it('never mints past the CA notAfter, and refuses once the CA has expired', async () => {
    const now = Date.now();
    const old = await generateCa('Old CA', now - 3650 * DAY + 2 * HOUR);
    const dying = await CertificateAuthority.fromPem(old.certPem, old.keyPem);
    const leaf = await dying.mintLeaf('late.example.com', { now });
    expect(leaf.notAfter).toBe(dying.notAfter);
    expect(leaf.notAfter).toBeLessThan(now + 3 * HOUR);
    const err = await failure(dying.mintLeaf('late.example.com', { now: dying.notAfter }));
    expect(err.message).toMatch(/^CA certificate: expired on .*, cannot mint for late\.example\.com$/);
  });
});

describe('CertificateAuthority.load', () => {
  let dir: TempDir;
  let pem: CaPem;
  let other: CaPem;
  beforeAll(async () => {
    dir = tempDir('authproxy-ca-');
    [pem, other] = await Promise.all([generateCa(), generateCa('Other CA')]);
  });
  afterAll(() => dir.cleanup());

  const load = (cert: string, key: string) =>
    CertificateAuthority.load(
      dir.file(`c-${cert.length}-${key.length}.crt`, cert),
      dir.file(`k-${cert.length}-${key.length}.key`, key),
    );

  it('loads PEM files and mints leaves that verify against the certificate', async () => {
    const ca = await CertificateAuthority.load(dir.file('ca.crt', pem.certPem), dir.file('ca.key', pem.keyPem));
    expect(ca.certPem).toBe(pem.certPem);
    const leaf = await ca.mintLeaf('loaded.example.com');
    expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, pem.certPem, 'loaded.example.com');
  });

  it('accepts a SEC1 "EC PRIVATE KEY" file (what openssl ecparam writes)', async () => {
    const sec1 = createPrivateKey(pem.keyPem).export({ type: 'sec1', format: 'pem' }).toString();
    const ca = await CertificateAuthority.load(dir.file('sec1.crt', pem.certPem), dir.file('sec1.key', sec1));
    const leaf = await ca.mintLeaf('sec1.example.com');
    expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, pem.certPem, 'sec1.example.com');
  });

  it('accepts an RSA CA', async () => {
    const alg = {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 2048,
    };
    const keys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=RSA CA',
      keys,
      signingAlgorithm: alg,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + DAY),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    const keyPem = x509.PemConverter.encode(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const ca = await CertificateAuthority.fromPem(cert.toString('pem'), keyPem);
    const leaf = await ca.mintLeaf('rsa.example.com');
    expectValidLeaf(leaf.certificateChainPem, leaf.privateKeyPem, cert.toString('pem'), 'rsa.example.com');
  });

  it('names the missing file', async () => {
    const missing = `${dir.path}/nope.crt`;
    const err = await failure(CertificateAuthority.load(missing, dir.file('x.key', pem.keyPem)));
    expect([err.code, err.message]).toEqual(['config_io', `${missing}: cannot read CA certificate (ENOENT)`]);
    const missingKey = `${dir.path}/nope.key`;
    expect((await failure(CertificateAuthority.load(dir.file('y.crt', pem.certPem), missingKey))).message).toBe(
      `${missingKey}: cannot read CA private key (ENOENT)`,
    );
  });

  it.each<[string, () => [string, string], 'crt' | 'key', string]>([
    ['a certificate that is not PEM', () => ['hello', pem.keyPem], 'crt', 'not a PEM X.509 certificate'],
    ['a key that is not PEM', () => [pem.certPem, 'not a key'], 'key', 'not a PEM private key'],
    ['a key of another CA', () => [pem.certPem, other.keyPem], 'key', 'does not match the certificate in'],
  ])('refuses %s, naming the file', async (_what, files, bad, message) => {
    const [cert, key] = files();
    const certPath = dir.file(`bad-${bad}-${message.length}.crt`, cert);
    const keyPath = dir.file(`bad-${bad}-${message.length}.key`, key);
    const err = await failure(CertificateAuthority.load(certPath, keyPath));
    expect(err.code).toBe('key_invalid');
    expect(err.message.startsWith(`${bad === 'crt' ? certPath : keyPath}: ${message}`)).toBe(true);
    expect(err.message).not.toContain('PRIVATE KEY');
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('refuses a certificate that is not a CA', async () => {
    const ca = await CertificateAuthority.fromPem(pem.certPem, pem.keyPem);
    const leaf = await ca.mintLeaf('leaf.example.com');
    const err = await failure(load(leaf.certificateChainPem, leaf.privateKeyPem));
    expect(err.message).toMatch(/\.crt: not a CA certificate \(basicConstraints CA:TRUE is missing\)$/);
  });

  it('refuses an encrypted key without echoing it', async () => {
    const encrypted = createPrivateKey(pem.keyPem)
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
      .toString();
    const err = await failure(load(pem.certPem, encrypted));
    expect(err.message).toMatch(/\.key: encrypted private keys are not supported$/);
  });

  it('refuses an expired CA', async () => {
    const old = await generateCa('Expired CA', Date.now() - 3651 * DAY);
    const err = await failure(load(old.certPem, old.keyPem));
    expect(err.message).toMatch(/\.crt: expired on \d{4}-/);
  });
});
