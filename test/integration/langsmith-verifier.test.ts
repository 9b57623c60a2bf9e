/**
 * A callback endpoint written for LangSmith accepts authproxy's requests unchanged: a real HTTP endpoint on
 * 127.0.0.1 verifies every request with the `langsmith` SDK's own `SandboxTokenVerifier`, fetching the keys
 * from authproxy's `/.well-known/jwks.json` on the side HTTP port. The tenant of each sandbox comes from its
 * `sandboxes:` entry, else from the serve defaults (`--tenant-id`, `--organization-id`).
 */
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { CALLBACK_SIGNATURE_HEADER, SandboxTokenVerifier, type SandboxCallback } from 'langsmith/sandbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHttpPort } from '../../src/serve/http-port.js';
import { startService, type Service } from '../../src/serve/service.js';
import { startCallbackServer } from '../helpers/callback-server.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';

const CONFIGURED_ISSUER = 'https://issuer.example.com/';
const ISSUER = 'https://issuer.example.com';
const CANARY = 'canary-langsmith-6d2e';

describe("callback requests pass LangSmith's SandboxTokenVerifier", () => {
  let dir: TempDir;
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let service: Service;
  let side: Awaited<ReturnType<typeof startHttpPort>>;
  let client: grpc.Client;
  let verifier: SandboxTokenVerifier;
  const logs = captureLogs('debug');
  /** What the endpoint's own verification returned (or why it refused), one entry per request. */
  const verified: Array<SandboxCallback | string> = [];

  const ask = async (sandbox: string, host = 'api.example.com') =>
    (await exchange(client, [requestHeaders(host, '/v1/things?page=2')], { 'x-sandbox-id': sandbox })).responses[0]!;
  const received = () => {
    const call = server.calls.at(-1)!;
    return { body: call.body, signature: call.headers[CALLBACK_SIGNATURE_HEADER.toLowerCase()] as string };
  };

  beforeAll(async () => {
    dir = tempDir('authproxy-langsmith-');
    server = await startCallbackServer((req, res, body) => {
      verifier
        .verifyCallback({
          body,
          signature: String(req.headers[CALLBACK_SIGNATURE_HEADER.toLowerCase()] ?? ''),
          aud: server.url,
          issuer: CONFIGURED_ISSUER,
        })
        .then(
          (payload) => {
            verified.push(payload);
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify({ headers: { Authorization: `Bearer ${CANARY}-${payload.identity.tenant_id}` } }));
          },
          (err: Error) => {
            verified.push(err.message);
            res.writeHead(401).end();
          },
        );
    });
    const callbacks = `callbacks: [{ match_hosts: ["api.example.com", "other.example.com"], url: "${server.url}", ttl_seconds: 60 }]`;
    const config = dir.file(
      'sandboxes.yaml',
      `
sandboxes:
  sb-acme:
    tenant_id: acme
    organization_id: org-acme
    ${callbacks}
  sb-tenant-only:
    tenant_id: "team.blue:1"
    ${callbacks}
  sb-plain:
    ${callbacks}
`,
    );
    service = await startService(
      {
        config,
        listen: `unix:${join(dir.path, 'ext.sock')}`,
        sandboxId: 'default',
        tenantId: 'ws-default',
        organizationId: 'org-default',
        callbackIssuer: CONFIGURED_ISSUER,
        egressAllowCidrs: '127.0.0.0/8',
      },
      logs.log,
    );
    side = await startHttpPort('127.0.0.1:0', { signer: service.signer, ready: () => true });
    verifier = new SandboxTokenVerifier({ jwksUrl: `http://${side.address}/.well-known/jwks.json` });
    client = extProcClient(`unix:${join(dir.path, 'ext.sock')}`);
  });
  afterAll(async () => {
    client?.close();
    side?.server.close();
    await service?.close();
    await server?.close();
    dir?.cleanup();
  });
  beforeEach(() => {
    verified.length = 0;
  });

  it("verifies with the real verifier and returns the sandboxes: entry's tenant and organization, host and port", async () => {
    expect(setHeaders(await ask('sb-acme')).authorization).toBe(`Bearer ${CANARY}-acme`);
    expect(verified).toEqual([
      {
        host: 'api.example.com',
        port: 443,
        identity: { tenant_id: 'acme', sandbox_id: 'sb-acme', organization_id: 'org-acme' },
      },
    ]);
    expect(server.calls.at(-1)!.headers['content-type']).toBe('application/json');
    expect(server.calls.at(-1)!.headers['x-authproxy-signature']).toBeUndefined();
  });

  it('fills what a sandbox leaves out from --tenant-id and --organization-id', async () => {
    expect(setHeaders(await ask('sb-plain', 'other.example.com')).authorization).toBe(`Bearer ${CANARY}-ws-default`);
    expect(setHeaders(await ask('sb-tenant-only')).authorization).toBe(`Bearer ${CANARY}-team.blue:1`);
    expect(verified).toEqual([
      {
        host: 'other.example.com',
        port: 443,
        identity: { tenant_id: 'ws-default', sandbox_id: 'sb-plain', organization_id: 'org-default' },
      },
      {
        host: 'api.example.com',
        port: 443,
        identity: { tenant_id: 'team.blue:1', sandbox_id: 'sb-tenant-only', organization_id: 'org-default' },
      },
    ]);
  });

  it('passes with the issuer pinned to --callback-issuer (with or without its trailing slash) and fails with another', async () => {
    await ask('sb-acme', 'other.example.com');
    const { body, signature } = received();
    for (const issuer of [CONFIGURED_ISSUER, ISSUER]) {
      expect((await verifier.verifyCallback({ body, signature, aud: server.url, issuer })).identity.tenant_id).toBe(
        'acme',
      );
    }
    await expect(
      verifier.verifyCallback({ body, signature, aud: server.url, issuer: 'https://issuer.example.org' }),
    ).rejects.toThrow('wrong issuer');
    await expect(verifier.verifyCallback({ body, signature, aud: server.url, issuer: 'authproxy' })).rejects.toThrow(
      'wrong issuer',
    );
  });

  it('fails for a body changed by one byte and for an audience changed by one character', async () => {
    await ask('sb-tenant-only', 'other.example.com');
    const { body, signature } = received();
    expect(await verifier.verifyCallback({ body: Buffer.from(body), signature, aud: server.url })).toMatchObject({
      host: 'other.example.com',
    });
    const bytes = Buffer.from(body);
    bytes[bytes.indexOf('o'.charCodeAt(0))] = 'p'.charCodeAt(0);
    await expect(verifier.verifyCallback({ body: bytes, signature, aud: server.url })).rejects.toThrow(
      'body does not match signature',
    );
    await expect(verifier.verifyCallback({ body: `${body} `, signature, aud: server.url })).rejects.toThrow(
      'body does not match signature',
    );
    const url = server.url;
    await expect(verifier.verifyCallback({ body, signature, aud: `${url.slice(0, -1)}X` })).rejects.toThrow(
      'wrong audience',
    );
    await expect(verifier.verifyCallback({ body, signature, aud: `${url}/` })).rejects.toThrow('wrong audience');
  });

  it('serves the JWKS the verifier needs: the signing kid, EdDSA over Ed25519', async () => {
    const jwks = (await (await fetch(`http://${side.address}/.well-known/jwks.json`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(jwks).toEqual(service.signer.jwks());
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: service.signer.kid });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(logs.text()).not.toContain(CANARY);
  });
});
