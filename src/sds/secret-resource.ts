import type { Any } from '../gen/google/protobuf/any.js';
import { TlsCertificate } from '../gen/envoy/extensions/transport_sockets/tls/v3/common.js';
import { Secret } from '../gen/envoy/extensions/transport_sockets/tls/v3/secret.js';
import type { Leaf } from './ca.js';

/** The xDS type of every resource this service serves. */
export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/**
 * Packs a leaf as the `Secret` Envoy installs: `name` exactly as Envoy asked for it (the SNI), with
 * the chain and key inline. Inline bytes, not file names: the key must never touch a disk.
 */
export function secretAny(name: string, leaf: Leaf): Any {
  const tlsCertificate = TlsCertificate.fromPartial({
    certificateChain: { specifier: { $case: 'inlineBytes', value: Buffer.from(leaf.certificateChainPem) } },
    privateKey: { specifier: { $case: 'inlineBytes', value: Buffer.from(leaf.privateKeyPem) } },
  });
  const secret: Secret = { name, type: { $case: 'tlsCertificate', value: tlsCertificate } };
  return { typeUrl: SECRET_TYPE_URL, value: Buffer.from(Secret.encode(secret).finish()) };
}

/** The resource version of a leaf: its serial, unique per mint, so a renewal is always a new version. */
export function leafVersion(leaf: Leaf): string {
  return leaf.serial;
}
