/**
 * The private-destination guard on callback URLs, when they are called: the URL's host is resolved, every
 * address checked, and the connection made to the checked address. Real HTTP servers on 127.0.0.1 and
 * 127.0.0.2 and a real DNS server on loopback.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callCallback, DEFAULT_CALLBACK_LIMITS, type CallbackLimits } from '../../src/callbacks/client.js';
import { CallbackSigner } from '../../src/callbacks/signer.js';
import { EgressGuard, parseEgressAllowList } from '../../src/egress/guard.js';
import { serverResolver } from '../../src/egress/resolver.js';
import type { CompiledCallback } from '../../src/policy/compiled.js';
import { startDnsServer } from '../helpers/dns-server.js';

const TOKEN = 'callback-egress-canary-0c1d';

async function listen(host: string, port = 0): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.headers.host ?? '');
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ headers: { Authorization: `Bearer ${TOKEN}` } }));
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return { server, port: (server.address() as { port: number }).port, hits };
}

describe('callback URLs are guarded when called', () => {
  let loop: Awaited<ReturnType<typeof listen>>;
  let other: Awaited<ReturnType<typeof listen>>;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  let signer: CallbackSigner;
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
  const limits = (allow: string): CallbackLimits => ({
    ...DEFAULT_CALLBACK_LIMITS,
    egress: new EgressGuard(serverResolver(`127.0.0.1:${dns.port}`), parseEgressAllowList(allow)),
  });

  beforeAll(async () => {
    loop = await listen('127.0.0.1');
    other = await listen('127.0.0.2', loop.port);
    // tokens.test -> 127.0.0.1; rebind.test -> 127.0.0.2 first, then 127.0.0.1.
    dns = await startDnsServer(['tokens.test', 'rebind.test'], (name, earlier) =>
      name === 'rebind.test' && earlier === 0 ? '127.0.0.2' : '127.0.0.1',
    );
    signer = await CallbackSigner.ephemeral();
  });
  afterAll(() => {
    loop?.server.close();
    other?.server.close();
    dns?.close();
  });

  it('refuses a hostname that resolves to loopback, and an IP-literal loopback URL, before connecting', async () => {
    const before = loop.hits.length;
    await expect(
      callCallback(cb(`http://tokens.test:${loop.port}/resolve`), target, identity, signer, limits('')),
    ).rejects.toMatchObject({ reason: 'private_destination' });
    await expect(
      callCallback(cb(`http://127.0.0.1:${loop.port}/resolve`), target, identity, signer, limits('')),
    ).rejects.toMatchObject({ reason: 'private_destination' });
    await expect(
      callCallback(cb(`http://[::ffff:127.0.0.1]:${loop.port}/resolve`), target, identity, signer, limits('')),
    ).rejects.toMatchObject({ reason: 'private_destination' });
    expect(loop.hits.length).toBe(before);
  });

  it('calls it once the range is opened by name', async () => {
    const headers = await callCallback(
      cb(`http://tokens.test:${loop.port}/resolve`),
      target,
      identity,
      signer,
      limits('127.0.0.0/8'),
    );
    expect(headers).toEqual([['Authorization', `Bearer ${TOKEN}`]]);
    expect(loop.hits.at(-1)).toBe(`tokens.test:${loop.port}`);
  });

  it('connects to the address it checked: a rebinding answer never reaches the unchecked address', async () => {
    const before = loop.hits.length;
    const guarded = limits('127.0.0.2/32');
    for (let i = 0; i < 3; i++)
      await callCallback(cb(`http://rebind.test:${loop.port}/resolve`), target, identity, signer, guarded);
    expect(other.hits).toHaveLength(3);
    expect(loop.hits.length).toBe(before);
  });

  it('says why without a value', async () => {
    const err = await callCallback(
      cb(`http://tokens.test:${loop.port}/resolve`),
      target,
      identity,
      signer,
      limits(''),
    ).catch((e: Error) => e);
    expect(String(err)).toContain('private_destination');
    expect(String(err)).not.toContain(TOKEN);
  });
});
