import type * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

import { SANDBOX_ID, SANDBOX_METADATA_KEY } from '../contracts/envoy.js';

export { SANDBOX_ID, SANDBOX_METADATA_KEY } from '../contracts/envoy.js';

/** What a stream exposes about its TLS peer (grpc-js's AuthContext, which it does not export by name). */
export interface PeerAuth {
  readonly sslPeerCertificate?: PeerCertificate;
}

/** The parts of a grpc-js server call that identity reads. */
export interface IdentifiableCall {
  readonly metadata: grpc.Metadata;
  getAuthContext?(): PeerAuth | null;
}

/** How a stream's sandbox identity is established. */
export interface IdentityOptions {
  /** Used when a stream carries no `x-sandbox-id` metadata (sidecar mode). */
  readonly defaultSandboxId: string;
  /**
   * mTLS only: the sandbox id must be one that the sidecar's client certificate names (a URI SAN ending
   * in `/sandbox/<id>`, e.g. `spiffe://authproxy/sandbox/sb-1`, or the subject CN), so that one sidecar
   * cannot speak for another sandbox. A certificate naming exactly one sandbox also supplies the id
   * when the metadata is absent.
   */
  readonly bindToClientCert: boolean;
}

/** The sandbox ids a client certificate vouches for. */
export function certificateSandboxIds(cert: PeerCertificate | undefined): string[] {
  if (!cert) return [];
  const ids = new Set<string>();
  for (const entry of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^URI:.*\/sandbox\/([^/]+)$/.exec(entry);
    if (m && SANDBOX_ID.test(m[1]!)) ids.add(m[1]!);
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string' && SANDBOX_ID.test(cn)) ids.add(cn);
  return [...ids];
}

/**
 * The sandbox a stream speaks for, the same way for ext_proc and SDS: no metadata means the default;
 * exactly one well-formed value means that sandbox; anything else is ambiguous and returns undefined (no
 * credential, no certificate). With `bindToClientCert`, the id must also be vouched for by the client
 * certificate. Nothing the sandbox sends (headers, paths) takes part: only Envoy sets this metadata.
 */
export function streamSandboxId(call: IdentifiableCall, opts: IdentityOptions): string | undefined {
  const values = call.metadata.get(SANDBOX_METADATA_KEY);
  const claimed =
    values.length === 0
      ? undefined
      : values.length === 1 && typeof values[0] === 'string' && SANDBOX_ID.test(values[0])
        ? values[0]
        : null;
  if (claimed === null) return undefined;
  if (!opts.bindToClientCert) return claimed ?? opts.defaultSandboxId;
  const vouched = certificateSandboxIds(call.getAuthContext?.()?.sslPeerCertificate);
  if (claimed === undefined) return vouched.length === 1 ? vouched[0] : undefined;
  return vouched.includes(claimed) ? claimed : undefined;
}
