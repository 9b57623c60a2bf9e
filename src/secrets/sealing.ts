import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import { decodeBinding, encodeBinding, type SealBinding } from './seal-binding.js';

/**
 * Sealing of opaque values: an X25519 sealed box (ephemeral key agreement, HKDF-SHA256, AES-256-GCM).
 * Anyone with the public key can seal; only the proxy, holding the private key, can unseal, and only in
 * memory. Format: `sealed:` + base64url of
 * - version 2 (bound): 2 | binding length 2 (big-endian) | binding | ephemeral public key 32 | nonce 12 |
 *   ciphertext | tag 16, where the binding (src/secrets/seal-binding.ts: sandbox and hosts) and the bytes
 *   before it are the AES-GCM additional data, so the binding cannot be changed without breaking the seal;
 * - version 1 (unbound, from before bindings): 1 | ephemeral public key 32 | nonce 12 | ciphertext | tag 16.
 */
export const SEALED_PREFIX = 'sealed:';
const VERSION = 1;
const BOUND_VERSION = 2;
const INFO = Buffer.from('authproxy seal v1');

/** A freshly generated sealing key pair, PEM encoded (PKCS#8 private, SPKI public). */
export function generateSealingKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32);
}

function deriveKey(shared: Buffer, ephemeralPub: Buffer, recipientPub: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralPub, recipientPub]), INFO, 32));
}

/** Parses a PEM public sealing key; throws a one-line error naming `source` when it isn't X25519. */
export function parsePublicKey(pem: string, source: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType === 'x25519') return key;
  } catch {
    /* reported below */
  }
  throw new AuthProxyError('key_invalid', `${source}: not an X25519 public key in PEM form`);
}

/** Parses a PEM private sealing key; throws a one-line error naming `source` when it isn't X25519. */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType === 'x25519') return key;
  } catch {
    /* reported below */
  }
  throw new AuthProxyError('key_invalid', `${source}: not an X25519 private key in PEM form`);
}

/**
 * Seals `plaintext` to `publicKey`, bound to `binding` (where it may be used); the result is safe to store
 * in a config file or database. Without a binding the value is the unbound version 1, which `serve`
 * accepts only with `--allow-unbound-seals` (kept for tests of that path and for old values).
 */
export function seal(plaintext: string, publicKey: KeyObject, binding?: SealBinding): string {
  let header = Buffer.from([VERSION]);
  if (binding) {
    const bytes = encodeBinding(binding);
    header = Buffer.concat([Buffer.from([BOUND_VERSION, bytes.length >> 8, bytes.length & 0xff]), bytes]);
  }
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPub = rawPublic(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey });
  const key = deriveKey(shared, ephemeralPub, rawPublic(publicKey));
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (binding) cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return SEALED_PREFIX + Buffer.concat([header, ephemeralPub, nonce, body]).toString('base64url');
}

/** Anything that can open a sealed value: the real Unsealer, or the shape-only check of `validate`. */
export interface ValueUnsealer {
  unseal(sealed: string): string;
}

/**
 * For commands run without the private key (validate, explain): accepts any well-formed sealed value and
 * yields an empty string, so a config can be checked where the key is not available.
 */
export const SHAPE_ONLY_UNSEALER: ValueUnsealer = {
  unseal(sealed: string): string {
    decodeSealed(sealed);
    return '';
  },
};

/** Unseals values sealed to one key pair. Exists so the private key stays inside one object. */
export class Unsealer implements ValueUnsealer {
  private readonly recipientPub: Buffer;
  constructor(private readonly privateKey: KeyObject) {
    this.recipientPub = rawPublic(createPublicKey(privateKey));
  }

  /**
   * A 32-byte key for another purpose (HKDF-SHA256 of the private key with `info`), so that replicas that
   * share the sealing key also share, say, the key that authenticates stored configs, with no extra file.
   */
  deriveKey(info: string): Buffer {
    const der = this.privateKey.export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), Buffer.from(info), 32));
  }

  /** The matching public key, so that values arriving in plaintext (admin API) can be sealed for storage. */
  publicKey(): KeyObject {
    return createPublicKey(this.privateKey);
  }

  /**
   * Decrypts a sealed value; throws a `seal_invalid` error (never containing the value) on any problem.
   * A bound value's binding is authenticated here (an edited one fails); whether the binding fits the
   * place the value is used is the caller's check (`bindingProblem`, when a config is applied).
   */
  unseal(sealed: string): string {
    const { header, binding, rest } = parseSealed(sealed);
    const ephemeralPub = rest.subarray(0, 32);
    const nonce = rest.subarray(32, 44);
    const tag = rest.subarray(rest.length - 16);
    const ciphertext = rest.subarray(44, rest.length - 16);
    try {
      const publicKey = createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), ephemeralPub]),
        format: 'der',
        type: 'spki',
      });
      const shared = diffieHellman({ privateKey: this.privateKey, publicKey });
      const decipher = createDecipheriv('aes-256-gcm', deriveKey(shared, ephemeralPub, this.recipientPub), nonce);
      if (binding) decipher.setAAD(header);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new AuthProxyError(
        'seal_invalid',
        'cannot be unsealed with this sealing key (sealed to another key, or corrupted)',
      );
    }
  }
}

/** Checks the shape of a sealed value without a key; throws a `seal_invalid` error when malformed. */
export function decodeSealed(sealed: string): Buffer {
  return parseSealed(sealed).blob;
}

/** A sealed value taken apart: its binding (undefined for an unbound version-1 value) and the box after it. */
export interface SealedParts {
  readonly blob: Buffer;
  /** The version byte and, for a bound value, its binding: the AES-GCM additional data. */
  readonly header: Buffer;
  readonly binding: SealBinding | undefined;
  /** Ephemeral public key, nonce, ciphertext and tag. */
  readonly rest: Buffer;
}

/** Parses a sealed value without a key (its binding is readable, not yet authenticated); throws `seal_invalid`. */
export function parseSealed(sealed: string): SealedParts {
  if (!sealed.startsWith(SEALED_PREFIX)) {
    throw new AuthProxyError(
      'seal_invalid',
      'opaque values must be sealed ("sealed:..."); seal it with `authproxy seal`',
    );
  }
  const malformed = () => new AuthProxyError('seal_invalid', 'is not a valid sealed value (bad encoding or version)');
  const b64 = sealed.slice(SEALED_PREFIX.length);
  const blob = Buffer.from(b64, 'base64url');
  const box = 32 + 12 + 16;
  if (!/^[A-Za-z0-9_-]+$/.test(b64) || blob.length < 1 + box) throw malformed();
  if (blob[0] === VERSION) return { blob, header: blob.subarray(0, 1), binding: undefined, rest: blob.subarray(1) };
  if (blob[0] !== BOUND_VERSION || blob.length < 3) throw malformed();
  const end = 3 + blob.readUInt16BE(1);
  const binding = blob.length >= end + box ? decodeBinding(blob.subarray(3, end)) : undefined;
  if (!binding) throw malformed();
  return { blob, header: blob.subarray(0, end), binding, rest: blob.subarray(end) };
}
