import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { certificateSandboxIds, streamSandboxId } from '../../src/extproc/identity.js';

const md = (...ids: string[]) => {
  const m = new grpc.Metadata();
  for (const id of ids) m.add('x-sandbox-id', id);
  return m;
};
const cert = (cn: string, san = '') => ({ subject: { CN: cn }, subjectaltname: san }) as unknown as PeerCertificate;
const call = (metadata: grpc.Metadata, peer?: PeerCertificate) => ({
  metadata,
  getAuthContext: () => ({ sslPeerCertificate: peer }),
});
const free = { defaultSandboxId: 'default', bindToClientCert: false };
const bound = { defaultSandboxId: 'default', bindToClientCert: true };

describe('stream identity', () => {
  it('uses the metadata id, else the default', () => {
    expect(streamSandboxId(call(md('sb-1')), free)).toBe('sb-1');
    expect(streamSandboxId(call(md()), free)).toBe('default');
  });

  it.each([[['a', 'b']], [['a, b']], [['']], [['a b']], [['x'.repeat(129)]]])('treats %j as ambiguous', (ids) => {
    expect(streamSandboxId(call(md(...ids)), free)).toBeUndefined();
  });

  it('reads sandbox ids from URI SANs ending in /sandbox/ID and from the CN', () => {
    expect(
      certificateSandboxIds(
        cert('sb-cn', 'DNS:x.example, URI:spiffe://authproxy/sandbox/sb-uri, URI:https://other/thing'),
      ),
    ).toEqual(['sb-uri', 'sb-cn']);
    expect(certificateSandboxIds(undefined)).toEqual([]);
  });

  it('with binding, accepts only ids the certificate names', () => {
    const peer = cert('sb-1');
    expect(streamSandboxId(call(md('sb-1'), peer), bound)).toBe('sb-1');
    expect(streamSandboxId(call(md('sb-2'), peer), bound)).toBeUndefined();
    expect(streamSandboxId(call(md(), peer), bound)).toBe('sb-1');
    expect(streamSandboxId(call(md('sb-1')), bound)).toBeUndefined();
  });

  it('with binding and no metadata, refuses a certificate that names several sandboxes', () => {
    expect(streamSandboxId(call(md(), cert('sb-1', 'URI:spiffe://a/sandbox/sb-2')), bound)).toBeUndefined();
  });
});
