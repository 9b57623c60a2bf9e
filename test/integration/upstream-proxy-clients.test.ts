/**
 * authproxy's own clients with `--upstream-proxy`: callbacks (undici's ProxyAgent) and the https Agent of
 * the STS and token-endpoint clients go through a real CONNECT proxy on loopback, after the egress guard
 * checked the destination; `--upstream-no-proxy` hosts are dialled directly (pinned); a refusal is an
 * error, never a direct retry. The test names resolve to a blackholed address, so only the proxy reaches them.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, getCACertificates, setDefaultCACertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callCallback, DEFAULT_CALLBACK_LIMITS, type CallbackLimits } from '../../src/callbacks/client.js';
import { CallbackSigner } from '../../src/callbacks/signer.js';
import { guardedHttpsAgent } from '../../src/cloud/shared/https-agent.js';
import { EgressGuard, parseEgressAllowList } from '../../src/egress/guard.js';
import { serverResolver } from '../../src/egress/resolver.js';
import { UpstreamRoute } from '../../src/egress/upstream-proxy.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { tempDir } from '../helpers/fs.js';
import { makePki, type TestPki } from '../helpers/pki.js';

const TOKEN = 'upstream-proxy-client-canary-77e1';
const NAMES = ['tokens.test', 'refused.test', 'direct.test', 'private.test'];

describe("authproxy's own clients through --upstream-proxy", () => {
  let proxy: ForwardProxy;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let callbackServer: Server;
  let callbackPort: number;
  let hits: string[];
  let signer: CallbackSigner;
  let pki: TestPki;
  let tls: ReturnType<typeof createHttpsServer>;
  let tlsPort: number;
  const dir = tempDir('authproxy-upstream-clients-');
  const identity = { tenant_id: 't', sandbox_id: 'sb' };
  const target = { host: 'api.example.com', port: 443 };
  const cb = (url: string): CompiledCallback => ({
    id: 'cb',
    position: 0,
    url,
    ttlSeconds: 60,
    requestHeaders: [],
    fullRequest: false,
  });
  const guard = () =>
    new EgressGuard(
      serverResolver(`127.0.0.1:${dns.port}`),
      parseEgressAllowList('127.0.0.0/8'),
      UpstreamRoute.fromFlags(proxy.url, 'direct.test'),
    );
  const limits = (): CallbackLimits => ({ ...DEFAULT_CALLBACK_LIMITS, egress: guard() });

  beforeAll(async () => {
    hits = [];
    callbackServer = createServer((req, res) => {
      hits.push(req.headers.host ?? '');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ headers: { Authorization: `Bearer ${TOKEN}` } }));
    });
    await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', r));
    callbackPort = (callbackServer.address() as AddressInfo).port;
    pki = await makePki(dir.path, 'origin', ['tokens.test', 'direct.test', '127.0.0.1']);
    const leaf = pki.leaves.get('tokens.test')!;
    const contexts = new Map(
      [...pki.leaves].map(([name, l]) => [name, createSecureContext({ cert: l.cert, key: l.key })]),
    );
    tls = createHttpsServer(
      { cert: leaf.cert, key: leaf.key, SNICallback: (name, done) => done(null, contexts.get(name)) },
      (req, res) => res.writeHead(200).end(`tls ${req.headers.host}`),
    );
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    tlsPort = (tls.address() as AddressInfo).port;
    dns = await startDnsServer(NAMES, (name) =>
      name === 'direct.test' ? '127.0.0.1' : name === 'private.test' ? '10.0.0.9' : '198.51.100.7',
    );
    proxy = await startForwardProxy(Object.fromEntries(NAMES.map((n) => [n, '127.0.0.1'])), ['refused.test']);
    signer = await CallbackSigner.ephemeral();
  });
  afterAll(async () => {
    callbackServer?.close();
    tls?.close();
    dns?.close();
    await proxy?.close();
    dir.cleanup();
  });

  it('calls a callback through the proxy', async () => {
    const headers = await callCallback(
      cb(`http://tokens.test:${callbackPort}/resolve`),
      target,
      identity,
      signer,
      limits(),
    );
    expect(headers).toEqual([['Authorization', `Bearer ${TOKEN}`]]);
    expect(
      proxy.lines.some(
        (l) => l === `CONNECT tokens.test:${callbackPort}` || l.startsWith(`POST http://tokens.test:${callbackPort}/`),
      ),
    ).toBe(true);
  });

  it('a refused CONNECT fails the callback closed, without a direct retry', async () => {
    const before = hits.length;
    await expect(
      callCallback(cb(`http://refused.test:${callbackPort}/resolve`), target, identity, signer, limits()),
    ).rejects.toMatchObject({ reason: 'transport' });
    expect(hits.length).toBe(before);
  });

  it('the guard still refuses a private destination before the proxy is asked', async () => {
    const lines = proxy.lines.length;
    await expect(
      callCallback(cb(`http://private.test:${callbackPort}/resolve`), target, identity, signer, limits()),
    ).rejects.toMatchObject({ reason: 'private_destination' });
    expect(proxy.lines.length).toBe(lines);
  });

  it('an --upstream-no-proxy callback host is dialled directly', async () => {
    const lines = proxy.lines.length;
    await callCallback(cb(`http://direct.test:${callbackPort}/resolve`), target, identity, signer, limits());
    expect(proxy.lines.slice(lines).some((l) => l.includes('direct.test'))).toBe(false);
    expect(hits.at(-1)).toBe(`direct.test:${callbackPort}`);
  });

  /** GET https://host:tlsPort/ with the STS/token-endpoint agent; the body, or the error's message. */
  const viaAgent = (host: string) =>
    new Promise<string>((resolve) => {
      const req = httpsRequest(
        { host, port: tlsPort, path: '/', agent: guardedHttpsAgent(guard()), ca: pki.caPem, servername: host },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', (err) => resolve(`error: ${err.message}`));
      req.end();
    });

  it('the STS and token-endpoint agent tunnels TLS through the proxy, the origin verified inside', async () => {
    expect(await viaAgent('tokens.test')).toBe(`tls tokens.test:${tlsPort}`);
    expect(proxy.lines).toContain(`CONNECT tokens.test:${tlsPort}`);
    expect(await viaAgent('refused.test')).toMatch(
      /^error: upstream proxy: CONNECT refused\.test:\d+ refused \(403\)$/,
    );
    expect(await viaAgent('private.test')).toMatch(/^error: host /);
  });

  it('the agent reaches the origin through an https:// proxy (TLS inside TLS)', async () => {
    const secure = await startForwardProxy(Object.fromEntries(NAMES.map((n) => [n, '127.0.0.1'])), [], true);
    const ip = pki.leaves.get('127.0.0.1')!;
    secure.setCertificate(ip.cert, ip.key);
    // The proxy's certificate comes from the test CA: trusted here as NODE_EXTRA_CA_CERTS trusts it in serve.
    const roots = getCACertificates('default');
    setDefaultCACertificates([...roots, pki.caPem]);
    try {
      const viaTls = new EgressGuard(
        serverResolver(`127.0.0.1:${dns.port}`),
        [],
        UpstreamRoute.fromFlags(secure.url, undefined),
      );
      const body = await new Promise<string>((resolve) => {
        const req = httpsRequest(
          { host: 'tokens.test', port: tlsPort, path: '/', agent: guardedHttpsAgent(viaTls), ca: pki.caPem },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', (err) => resolve(`error: ${err.message}`));
        req.end();
      });
      expect(body).toBe(`tls tokens.test:${tlsPort}`);
      expect(secure.lines).toEqual([`CONNECT tokens.test:${tlsPort}`]);
    } finally {
      setDefaultCACertificates(roots);
      await secure.close();
    }
  });

  it('the agent dials an --upstream-no-proxy host directly', async () => {
    const lines = proxy.lines.length;
    expect(await viaAgent('direct.test')).toBe(`tls direct.test:${tlsPort}`);
    expect(proxy.lines.slice(lines).some((l) => l.includes('direct.test'))).toBe(false);
  });
});
