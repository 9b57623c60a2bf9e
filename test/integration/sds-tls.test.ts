import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, generateCa } from '../../src/sds/ca.js';
import { decodeSecret, openDelta, SECRET_TYPE_URL } from '../helpers/sds-client.js';
import { startSds, type SdsFixture } from '../helpers/sds-server.js';

/** A TLS server presenting `cert`/`key` that answers "ok" to every connection. */
async function tlsServer(cert: string, key: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = tls.createServer({ cert, key }, (socket) => socket.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

/** Connects as a sandbox client would; resolves with what the server sent, or the TLS error code. */
function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ ok: true; body: string; protocol: string | null } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    let body = '';
    socket.on('data', (d: Buffer) => (body += d.toString()));
    socket.on('end', () => resolve({ ok: true, body, protocol: socket.getProtocol() }));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? err.message }));
  });
}

describe('a leaf served over SDS terminates a real TLS handshake', () => {
  let f: SdsFixture;
  let server: Awaited<ReturnType<typeof tlsServer>>;

  beforeAll(async () => {
    f = await startSds();
    const stream = openDelta(f.client);
    const r = await stream.send({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['tls.example.com'] }).next();
    stream.cancel();
    const secret = decodeSecret(r.resources![0]!.resource);
    server = await tlsServer(secret.chainPem, secret.keyPem);
  });
  afterAll(async () => {
    await server?.close();
    await f?.close();
  });

  it('is trusted by a client that trusts only the authproxy CA', async () => {
    const result = await handshake(server.port, { ca: f.caPem, servername: 'tls.example.com' });
    expect(result).toMatchObject({ ok: true, body: 'ok' });
  });

  it('is refused for another server name', async () => {
    const result = await handshake(server.port, { ca: f.caPem, servername: 'other.example.com' });
    expect(result).toEqual({ ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('is refused by a client that does not trust the authproxy CA', async () => {
    const stranger = await generateCa('Some other CA');
    const result = await handshake(server.port, { ca: stranger.certPem, servername: 'tls.example.com' });
    expect(result).toEqual({ ok: false, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('works for an IP literal (IP SAN, no SNI)', async () => {
    const pem = await generateCa();
    const leaf = await (await CertificateAuthority.fromPem(pem.certPem, pem.keyPem)).mintLeaf('127.0.0.1');
    const ipServer = await tlsServer(leaf.certificateChainPem, leaf.privateKeyPem);
    try {
      expect(await handshake(ipServer.port, { ca: pem.certPem })).toMatchObject({ ok: true, body: 'ok' });
    } finally {
      await ipServer.close();
    }
  });
});
