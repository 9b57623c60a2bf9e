import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeSealed,
  generateSealingKeys,
  parsePrivateKey,
  parsePublicKey,
  seal,
  SEALED_PREFIX,
  SHAPE_ONLY_UNSEALER,
  Unsealer,
} from '../../src/secrets/sealing.js';
import { thrown } from './support.js';

const PLAIN = 'sk-FAKE-sealing-canary-5555';
const keys = generateSealingKeys();
const other = generateSealingKeys();
const publicKey = parsePublicKey(keys.publicPem, 'sealing.pub');
const unsealer = new Unsealer(parsePrivateKey(keys.privatePem, 'sealing.key'));

const blobOf = (sealed: string) => Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
const sealedOf = (blob: Buffer) => SEALED_PREFIX + blob.toString('base64url');
function flipByte(sealed: string, index: number): string {
  const blob = blobOf(sealed);
  const at = index < 0 ? blob.length + index : index;
  blob[at] = blob[at]! ^ 0x01;
  return sealedOf(blob);
}

describe('seal and unseal', () => {
  it.each([
    ['ascii', PLAIN],
    ['unicode', 'pässwörd-FAKE 🔑 密码 \u0000 end'],
    ['empty', ''],
    ['long', 'FAKE-'.repeat(2000)],
  ])('round-trips %s plaintext', (_kind, plaintext) => {
    const sealed = seal(plaintext, publicKey);
    expect(sealed.startsWith(SEALED_PREFIX)).toBe(true);
    expect(sealed.slice(SEALED_PREFIX.length)).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(blobOf(sealed)).toHaveLength(1 + 32 + 12 + Buffer.byteLength(plaintext, 'utf8') + 16);
    expect(blobOf(sealed)[0]).toBe(1);
    expect(unsealer.unseal(sealed)).toBe(plaintext);
  });

  it('never contains the plaintext and differs on every call', () => {
    const a = seal(PLAIN, publicKey);
    const b = seal(PLAIN, publicKey);
    expect(a).not.toBe(b);
    expect(a).not.toContain('canary');
    expect(blobOf(a).includes(Buffer.from(PLAIN))).toBe(false);
    expect([unsealer.unseal(a), unsealer.unseal(b)]).toEqual([PLAIN, PLAIN]);
  });
});

describe('rejections (code seal_invalid, message never contains the plaintext)', () => {
  const sealed = seal(PLAIN, publicKey);
  const CANNOT = 'cannot be unsealed with this sealing key (sealed to another key, or corrupted)';
  const MALFORMED = 'is not a valid sealed value (bad encoding or version)';
  const NOT_SEALED = 'opaque values must be sealed ("sealed:..."); seal it with `authproxy seal`';

  const expectRejected = (value: string, message: string) => {
    const err = thrown(() => unsealer.unseal(value));
    expect(err.code).toBe('seal_invalid');
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('canary');
    expect(err.message).not.toContain(value.slice(SEALED_PREFIX.length) || '\u0000');
  };

  it.each([
    ['ephemeral key', 1],
    ['ephemeral key, last byte', 32],
    ['nonce', 33],
    ['ciphertext', 45],
    ['ciphertext, last byte', -17],
    ['tag', -16],
    ['tag, last byte', -1],
  ])('tampered %s is rejected', (_part, index) => {
    expectRejected(flipByte(sealed, index), CANNOT);
  });

  it('a truncated or extended ciphertext is rejected', () => {
    const blob = blobOf(sealed);
    expectRejected(sealedOf(blob.subarray(0, blob.length - 1)), CANNOT);
    expectRejected(sealedOf(Buffer.concat([blob, Buffer.from([0])])), CANNOT);
  });

  it('a value sealed to another key is rejected', () => {
    expectRejected(seal(PLAIN, parsePublicKey(other.publicPem, 'other.pub')), CANNOT);
  });

  it.each([
    ['plaintext', PLAIN, NOT_SEALED],
    ['empty', '', NOT_SEALED],
    ['prefix in upper case', sealed.toUpperCase(), NOT_SEALED],
    ['prefix with a space', ` ${sealed}`, NOT_SEALED],
    ['prefix only', SEALED_PREFIX, MALFORMED],
    ['bad base64 characters', `${SEALED_PREFIX}!!!!${sealed.slice(11)}`, MALFORMED],
    ['standard base64 with padding', `${SEALED_PREFIX}${blobOf(sealed).toString('base64')}==`, MALFORMED],
    ['whitespace inside', `${sealed.slice(0, 30)} ${sealed.slice(30)}`, MALFORMED],
    ['trailing newline', `${sealed}\n`, MALFORMED],
    ['wrong version', flipByte(sealed, 0), MALFORMED],
    ['version 0', sealedOf(Buffer.concat([Buffer.from([0]), blobOf(sealed).subarray(1)])), MALFORMED],
    ['too short (60 bytes)', sealedOf(blobOf(sealed).subarray(0, 60)), MALFORMED],
    ['too short (1 byte)', sealedOf(Buffer.from([1])), MALFORMED],
  ])('%s is rejected as malformed', (_kind, value, message) => {
    expectRejected(value, message);
    expect(thrown(() => decodeSealed(value)).message).toBe(message);
    expect(thrown(() => SHAPE_ONLY_UNSEALER.unseal(value)).code).toBe('seal_invalid');
  });

  it('the shape-only unsealer accepts a well-formed value without the key and reveals nothing', () => {
    expect(SHAPE_ONLY_UNSEALER.unseal(seal(PLAIN, parsePublicKey(other.publicPem, 'p')))).toBe('');
  });
});

describe('key parsing', () => {
  const ed = generateKeyPairSync('ed25519');
  const edPublic = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const edPrivate = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('generated keys are PEM and X25519', () => {
    expect(keys.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(keys.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(publicKey.asymmetricKeyType).toBe('x25519');
    expect(parsePrivateKey(keys.privatePem, 'k').asymmetricKeyType).toBe('x25519');
  });

  it.each([
    ['an Ed25519 public key', edPublic],
    ['an Ed25519 private key', edPrivate],
    ['garbage', 'not a key at all'],
    ['an empty file', ''],
    ['a truncated PEM', keys.publicPem.slice(0, 40)],
  ])('parsePublicKey rejects %s, naming the file', (_kind, pem) => {
    const err = thrown(() => parsePublicKey(pem, '/etc/authproxy/sealing.pub'));
    expect(err.code).toBe('key_invalid');
    expect(err.message).toBe('/etc/authproxy/sealing.pub: not an X25519 public key in PEM form');
  });

  it.each([
    ['an Ed25519 private key', edPrivate],
    ['an X25519 public key', keys.publicPem],
    ['garbage', 'not a key at all'],
    ['an empty file', ''],
  ])('parsePrivateKey rejects %s, naming the file, never echoing the key', (_kind, pem) => {
    const err = thrown(() => parsePrivateKey(pem, '/etc/authproxy/sealing.key'));
    expect(err.code).toBe('key_invalid');
    expect(err.message).toBe('/etc/authproxy/sealing.key: not an X25519 private key in PEM form');
    expect(err.message).not.toContain('PRIVATE KEY-----');
  });
});
