import { createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AuthProxyError } from '../errors.js';
import { canonicalHostname, isIpLiteral, loggableName } from './hostname.js';
import { subtle, x509 } from './x509.js';

/** A CA certificate and its private key, both PEM (the key is PKCS#8). */
export interface CaPem {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * One minted leaf certificate: what Envoy needs to terminate TLS for `hostname`. The chain is the leaf
 * alone: the sandbox trusts the authproxy CA as a root, and a TLS server need not send the root it
 * chains to (RFC 8446 §4.4.2), so sending it would only add bytes to every handshake.
 * `privateKeyPem` must never reach a log line or an error message.
 */
export interface Leaf {
  /** The canonical hostname (or IP literal) the certificate names. */
  readonly hostname: string;
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
  /** Serial number, upper-case hex (as node:crypto prints it); also the SDS resource version. */
  readonly serial: string;
  /** Validity window in ms since the epoch, as written in the certificate (second precision). */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The clock reading the leaf was minted at; renewal is planned from it. */
  readonly issuedAt: number;
}

/** Anything that mints leaves; the leaf cache depends on this, tests substitute counting wrappers. */
export interface LeafMinter {
  mintLeaf(hostname: string, options?: MintOptions): Promise<Leaf>;
}

/** Per-mint settings. `now` lets the leaf cache mint against its own (injectable) clock. */
export interface MintOptions {
  readonly now?: number;
}

/** Settings of a loaded CA. */
export interface CaOptions {
  /** Lifetime of minted leaves; default 24 h. Clamped to the CA's own notAfter. */
  readonly leafValidityMs?: number;
  /** Clock for load-time validity checks and for mints without `now`. */
  readonly clock?: () => number;
}

/** Default lifetime of a leaf: short, because leaves are minted on demand and renewed in the background. */
export const DEFAULT_LEAF_VALIDITY_MS = 24 * 60 * 60 * 1000;
/** Leaves start 5 minutes in the past, so a client whose clock lags a little still accepts them. */
export const LEAF_BACKDATE_MS = 5 * 60 * 1000;
const CA_VALIDITY_MS = 3650 * 24 * 60 * 60 * 1000;
const MIN_LEAF_VALIDITY_MS = 10 * 60 * 1000;
const LEAF_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const CURVES: Record<string, { curve: string; hash: string }> = {
  prime256v1: { curve: 'P-256', hash: 'SHA-256' },
  secp384r1: { curve: 'P-384', hash: 'SHA-384' },
};

/** 16 random bytes as a positive, minimally encoded DER integer (first byte 0x01..0x7f). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

/**
 * Creates the CA that authproxy mints interception leaves with: ECDSA P-256, valid ~10 years,
 * basicConstraints CA:TRUE with pathLen 0 (critical) so it can sign leaves but no intermediate, and
 * keyCertSign/cRLSign usage. The sandbox is told to trust `certPem`; `keyPem` stays with authproxy.
 */
export async function generateCa(commonName = 'authproxy CA', now = Date.now()): Promise<CaPem> {
  if (commonName.trim().length === 0 || commonName.length > 64) {
    throw new AuthProxyError('usage', 'common name: must be 1-64 characters');
  }
  const algorithm = { ...LEAF_KEY, hash: 'SHA-256' };
  const keys = (await subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(now - LEAF_BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: `${cert.toString('pem')}\n`, keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n` };
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AuthProxyError(
      'config_io',
      `${path}: cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

function parsePrivateKey(keyPem: string, label: string): KeyObject {
  try {
    return createPrivateKey(keyPem);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const encrypted =
      /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyPem) || code === 'ERR_MISSING_PASSPHRASE';
    throw new AuthProxyError(
      'key_invalid',
      `${label}: ${encrypted ? 'encrypted private keys are not supported' : 'not a PEM private key'}`,
    );
  }
}

/** The WebCrypto import and signing algorithms for a CA key, or a one-line error naming the file. */
function signingAlgorithms(
  key: KeyObject,
  label: string,
): { importAs: EcKeyImportParams | RsaHashedImportParams; sign: EcdsaParams | Algorithm } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new AuthProxyError('key_invalid', `${label}: EC key must use P-256 or P-384`);
    return { importAs: { name: 'ECDSA', namedCurve: curve.curve }, sign: { name: 'ECDSA', hash: curve.hash } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new AuthProxyError('key_invalid', `${label}: RSA key must have at least 2048 bits`);
    return { importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  throw new AuthProxyError(
    'key_invalid',
    `${label}: unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (use EC P-256/P-384 or RSA)`,
  );
}

/**
 * The certificate authority that only authproxy holds. Envoy's on-demand certificate selector asks for
 * a certificate named after each intercepted SNI; this mints it, signed by the CA that the sandbox
 * trusts. Loading checks everything once (a CA certificate, a usable key that matches it, a validity
 * window that includes now) so that a bad file fails at start with one line naming it.
 */
export class CertificateAuthority implements LeafMinter {
  private constructor(
    private readonly cert: x509.X509Certificate,
    /** The CA certificate, PEM: what sandboxes must trust. */
    readonly certPem: string,
    private readonly signingKey: CryptoKey,
    private readonly signingAlgorithm: EcdsaParams | Algorithm,
    private readonly authorityKeyId: string,
    /** The CA's own notAfter (ms); no leaf outlives it. */
    readonly notAfter: number,
    private readonly leafValidityMs: number,
    private readonly clock: () => number,
  ) {}

  /** Loads the CA from two PEM files; errors are one line naming the file (`config_io` or `key_invalid`). */
  static async load(certPath: string, keyPath: string, options: CaOptions = {}): Promise<CertificateAuthority> {
    const certPem = readPem(certPath, 'CA certificate');
    const keyPem = readPem(keyPath, 'CA private key');
    return CertificateAuthority.fromPem(certPem, keyPem, options, { cert: certPath, key: keyPath });
  }

  /** Like `load`, from PEM text; `labels` name the sources in errors. */
  static async fromPem(
    certPem: string,
    keyPem: string,
    options: CaOptions = {},
    labels: { cert: string; key: string } = { cert: 'CA certificate', key: 'CA private key' },
  ): Promise<CertificateAuthority> {
    let nodeCert: X509Certificate;
    try {
      nodeCert = new X509Certificate(certPem);
    } catch {
      throw new AuthProxyError('key_invalid', `${labels.cert}: not a PEM X.509 certificate`);
    }
    if (!nodeCert.ca)
      throw new AuthProxyError(
        'key_invalid',
        `${labels.cert}: not a CA certificate (basicConstraints CA:TRUE is missing)`,
      );
    const cert = new x509.X509Certificate(nodeCert.raw);
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw new AuthProxyError('key_invalid', `${labels.cert}: key usage does not include keyCertSign`);
    }
    const clock = options.clock ?? Date.now;
    const now = clock();
    if (now < cert.notBefore.getTime())
      throw new AuthProxyError('key_invalid', `${labels.cert}: not valid before ${cert.notBefore.toISOString()}`);
    if (now >= cert.notAfter.getTime())
      throw new AuthProxyError('key_invalid', `${labels.cert}: expired on ${cert.notAfter.toISOString()}`);
    const validity = options.leafValidityMs ?? DEFAULT_LEAF_VALIDITY_MS;
    if (!Number.isInteger(validity) || validity < MIN_LEAF_VALIDITY_MS) {
      throw new AuthProxyError('usage', `leaf validity: must be at least ${MIN_LEAF_VALIDITY_MS / 60_000} minutes`);
    }

    const key = parsePrivateKey(keyPem, labels.key);
    const algorithms = signingAlgorithms(key, labels.key);
    const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (!spki(createPublicKey(key)).equals(spki(nodeCert.publicKey))) {
      throw new AuthProxyError('key_invalid', `${labels.key}: does not match the certificate in ${labels.cert}`);
    }
    const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
    const signingKey = await subtle.importKey('pkcs8', pkcs8, algorithms.importAs, false, ['sign']);
    const keyId =
      cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
      (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
    return new CertificateAuthority(
      cert,
      `${cert.toString('pem')}\n`,
      signingKey,
      algorithms.sign,
      keyId,
      cert.notAfter.getTime(),
      validity,
      clock,
    );
  }

  /**
   * Mints a leaf for `hostname`: a fresh P-256 key, SAN = the hostname (an IP SAN for an IP literal),
   * serverAuth only, CA:FALSE, a random 16-byte serial, AKI/SKI, valid from 5 minutes ago for the leaf
   * lifetime. Refuses a name that is not a hostname or IP literal; authorization is the caller's job.
   */
  async mintLeaf(hostname: string, options: MintOptions = {}): Promise<Leaf> {
    const host = canonicalHostname(hostname);
    if (!host)
      throw new AuthProxyError(
        'usage',
        `hostname: ${JSON.stringify(loggableName(hostname))} is not a DNS name or IP literal`,
      );
    const now = options.now ?? this.clock();
    if (now >= this.notAfter) {
      throw new AuthProxyError(
        'key_invalid',
        `CA certificate: expired on ${new Date(this.notAfter).toISOString()}, cannot mint for ${host}`,
      );
    }
    const keys = (await subtle.generateKey(LEAF_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
    // ub-common-name is 64: a longer name goes in the SAN only, which must then be critical (RFC 5280 §4.2.1.6).
    const subject: x509.JsonName = host.length <= 64 ? [{ CN: [host] }] : [];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject,
      issuer: this.cert.subjectName,
      notBefore: new Date(now - LEAF_BACKDATE_MS),
      notAfter: new Date(Math.min(now + this.leafValidityMs, this.notAfter)),
      signingAlgorithm: this.signingAlgorithm,
      publicKey: keys.publicKey,
      signingKey: this.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(
          [{ type: isIpLiteral(host) ? 'ip' : 'dns', value: host }],
          subject.length === 0,
        ),
        new x509.AuthorityKeyIdentifierExtension(this.authorityKeyId),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
    return {
      hostname: host,
      certificateChainPem: `${cert.toString('pem')}\n`,
      privateKeyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
      serial: cert.serialNumber.toUpperCase(),
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      issuedAt: now,
    };
  }
}
