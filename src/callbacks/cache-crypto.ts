import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import type { CachedCredential } from './cache.js';
import type { ResolvedHeaders } from './client.js';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;
/** Callback answers are at most 64 KiB; anything much larger in Redis was not written by authproxy. */
const MAX_VALUE_CHARS = 256 * 1024;

/**
 * Encrypts and authenticates callback credentials before they go to Redis, and names their keys, so a
 * Redis dump, a replica of it, or a foreign writer reveals and plants nothing:
 * - values: AES-256-GCM, random 96-bit nonce, with the Redis key name as additional data, so a value
 *   can't be moved to another key; anything that fails to open is a miss;
 * - key names: HMAC-SHA256 of (sandbox, callback, host, port), so no sandbox id or hostname appears in
 *   Redis and nobody without the key can confirm a guess of which sandbox uses which host.
 * Both subkeys come from one 32-byte master key through HKDF-SHA256 with distinct labels.
 */
export class CacheSealer {
  private readonly encKey: Buffer;
  private readonly nameKey: Buffer;

  private constructor(master: Buffer) {
    this.encKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'authproxy cache values v1', 32));
    this.nameKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'authproxy cache names v1', 32));
  }

  /** A sealer from 32 key bytes (the content of `--cache-key`, decoded). */
  static fromKey(master: Buffer): CacheSealer {
    if (master.length !== 32) throw new AuthProxyError('key_invalid', 'cache key must be 32 bytes');
    return new CacheSealer(master);
  }

  /**
   * A sealer whose key is derived from the X25519 sealing key with HKDF: replicas already share that key
   * (they open the same opaque values), so they agree on the cache key with no extra secret to deploy.
   */
  static fromSealingKey(privateKey: KeyObject): CacheSealer {
    const d = privateKey.export({ format: 'jwk' }).d;
    if (!d) throw new AuthProxyError('key_invalid', 'sealing key has no private part');
    return new CacheSealer(
      Buffer.from(
        hkdfSync('sha256', Buffer.from(d, 'base64url'), 'authproxy', 'authproxy cache key from sealing key v1', 32),
      ),
    );
  }

  /** The name part of a Redis key for one cache key: base64url HMAC-SHA256, 43 characters. */
  keyName(cacheKey: string): string {
    return createHmac('sha256', this.nameKey).update(cacheKey).digest('base64url');
  }

  /** Encrypts an entry for the Redis key `redisKey`. */
  seal(redisKey: string, entry: CachedCredential): string {
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, nonce);
    cipher.setAAD(Buffer.from(redisKey));
    const plain = JSON.stringify({ x: entry.expiresAt, h: entry.headers });
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, body]).toString('base64url');
  }

  /** Decrypts a value read from `redisKey`; undefined when it is not an authentic authproxy entry for that key. */
  open(redisKey: string, sealed: string): CachedCredential | undefined {
    if (sealed.length > MAX_VALUE_CHARS) return undefined;
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 1 + NONCE + TAG + 2 || raw[0] !== VERSION) return undefined;
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encKey, raw.subarray(1, 1 + NONCE));
      decipher.setAAD(Buffer.from(redisKey));
      decipher.setAuthTag(raw.subarray(raw.length - TAG));
      plain = Buffer.concat([decipher.update(raw.subarray(1 + NONCE, raw.length - TAG)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      return undefined;
    }
    return decodeEntry(plain);
  }
}

function decodeEntry(plain: string): CachedCredential | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plain);
  } catch {
    return undefined;
  }
  const { x, h } = (parsed ?? {}) as { x?: unknown; h?: unknown };
  if (typeof x !== 'number' || !Number.isFinite(x) || !Array.isArray(h)) return undefined;
  const ok = h.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
  return ok ? { expiresAt: x, headers: h as unknown as ResolvedHeaders } : undefined;
}

/**
 * Decodes the content of a `--cache-key` file: 32 raw bytes, or 64 hex characters, or base64 /
 * base64url of 32 bytes (one trailing newline allowed). `source` names the file in errors, never the key.
 */
export function parseCacheKey(content: Buffer, source: string): Buffer {
  if (content.length === 32) return content;
  const text = content.toString('latin1').replace(/\r?\n$/, '');
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  throw new AuthProxyError(
    'key_invalid',
    `${source}: a cache key must be 32 bytes (raw, 64 hex characters, or base64)`,
  );
}
