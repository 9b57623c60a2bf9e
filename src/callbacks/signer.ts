import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { SignJWT, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import { AuthProxyError } from '../errors.js';

/** The header that carries the signature JWT on every callback request (LangSmith's name for it). */
export const SIGNATURE_HEADER = 'X-LangSmith-Signature-JWT';

/** The `sub` of every callback signature, as LangSmith's `SandboxTokenVerifier.verifyCallback` requires. */
export const CALLBACK_SUBJECT = 'langsmith-sandbox-callback';

/** The `iss` of callback signatures when `--callback-issuer` is not given. */
export const DEFAULT_CALLBACK_ISSUER = 'authproxy';

/** How long a callback signature is valid: `exp = iat + 300`. */
export const SIGNATURE_LIFETIME_SECONDS = 300;

/** Options of a signer. */
export interface SignerOptions {
  /** The `iss` claim (`--callback-issuer`); trailing slashes are removed, as verifiers compare without them. */
  readonly issuer?: string;
}

/** An issuer as it goes into `iss`: trailing slashes removed (LangSmith's verifier strips them from its side). */
export function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

/** A JSON Web Key Set: what callback endpoints use to verify authproxy's signatures. */
export interface Jwks {
  keys: JWK[];
}

/**
 * Signs callback requests the way LangSmith does, so an endpoint written for LangSmith (verifying with the
 * `langsmith` SDK's `SandboxTokenVerifier.verifyCallback`) accepts them unchanged: an Ed25519 JWT (alg
 * EdDSA, with the JWKS `kid`) with `iss`, `sub: "langsmith-sandbox-callback"`, `aud: [callback URL]`,
 * `iat`, `nbf`, `exp = iat + 300`, `jti`, and `body_sha256`, the lowercase hex SHA-256 of the exact body
 * bytes, so an endpoint can tell that authproxy sent this body to it and no one replayed it elsewhere.
 * Replicas share one key through `--signing-key`.
 */
export class CallbackSigner {
  /** The `iss` of every signature (trailing slashes removed). */
  readonly issuer: string;

  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicJwk: JWK,
    readonly kid: string,
    options: SignerOptions,
  ) {
    this.issuer = normalizeIssuer(options.issuer ?? DEFAULT_CALLBACK_ISSUER);
  }

  /** A signer from a PEM Ed25519 private key; `source` names the file in errors. */
  static async fromPem(pem: string, source: string, options: SignerOptions = {}): Promise<CallbackSigner> {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch {
      throw new AuthProxyError('key_invalid', `${source}: not a PEM private key`);
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new AuthProxyError('key_invalid', `${source}: not an Ed25519 private key`);
    return CallbackSigner.fromKey(key, options);
  }

  /** A signer with a fresh key, for a single process that no one else needs to verify against. */
  static async ephemeral(options: SignerOptions = {}): Promise<CallbackSigner> {
    return CallbackSigner.fromKey(generateKeyPairSync('ed25519').privateKey, options);
  }

  private static async fromKey(key: KeyObject, options: SignerOptions): Promise<CallbackSigner> {
    const jwk = await exportJWK(createPublicKey(key));
    const kid = await calculateJwkThumbprint(jwk);
    return new CallbackSigner(key, { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, kid, options);
  }

  /**
   * The JWT for one callback request to `url` (the callback URL exactly as configured) carrying exactly
   * `body` (a string is hashed as its UTF-8 bytes, which is what fetch sends).
   */
  async sign(url: string, body: string | Uint8Array, now: number = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ body_sha256: createHash('sha256').update(body).digest('hex') })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.kid })
      .setIssuer(this.issuer)
      .setSubject(CALLBACK_SUBJECT)
      .setAudience([url])
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + SIGNATURE_LIFETIME_SECONDS)
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
