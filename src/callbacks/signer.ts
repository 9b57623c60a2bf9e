import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import { AuthProxyError } from '../errors.js';

/** The header that carries the signature JWT on every callback request. */
export const SIGNATURE_HEADER = 'X-Authproxy-Signature';

/** A JSON Web Key Set: what callback endpoints use to verify authproxy's signatures. */
export interface Jwks {
  keys: JWK[];
}

/**
 * Signs callback requests with an Ed25519 JWT (alg EdDSA) whose `aud` is the callback URL and whose
 * `body_sha256` claim binds the exact request body, so an endpoint can tell that authproxy sent this body
 * to it and no one replayed it elsewhere. Replicas share one key through `--signing-key`.
 */
export class CallbackSigner {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicJwk: JWK,
    readonly kid: string,
  ) {}

  /** A signer from a PEM Ed25519 private key; `source` names the file in errors. */
  static async fromPem(pem: string, source: string): Promise<CallbackSigner> {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch {
      throw new AuthProxyError('key_invalid', `${source}: not a PEM private key`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new AuthProxyError('key_invalid', `${source}: not an Ed25519 private key`);
    return CallbackSigner.fromKey(key);
  }

  /** A signer with a fresh key, for a single process that no one else needs to verify against. */
  static async ephemeral(): Promise<CallbackSigner> {
    return CallbackSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
  }

  private static async fromKey(key: KeyObject): Promise<CallbackSigner> {
    const jwk = await exportJWK(createPublicKey(key));
    const kid = await calculateJwkThumbprint(jwk);
    return new CallbackSigner(key, { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, kid);
  }

  /** The JWT for one callback request. */
  async sign(url: string, body: string, sandboxId: string): Promise<string> {
    return new SignJWT({ body_sha256: createHash('sha256').update(body).digest('base64url') })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.kid })
      .setIssuer('authproxy')
      .setSubject(sandboxId)
      .setAudience(url)
      .setIssuedAt()
      .setExpirationTime('60s')
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  /** The public key set to publish. */
  jwks(): Jwks {
    return { keys: [this.publicJwk] };
  }
}

/** A new Ed25519 signing key in PKCS#8 PEM form. */
export function generateSigningKey(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}
