/**
 * Egress through a corporate forward proxy (`--upstream-proxy`), end to end with a real Envoy sidecar:
 * the direct route is blocked — the DNS server authproxy checks destinations with answers every test name
 * but one with a blackholed address (198.51.100.7, TEST-NET-2), and Envoy's own DNS answers nothing, so
 * only the loopback forward proxy, which resolves names with its own table, reaches the origins. The proxy
 * records every CONNECT and absolute-form request line.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUpstreamProxy } from '../../src/egress/upstream-proxy.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { envoyBinary, freePort } from '../helpers/envoy.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { makePki } from '../helpers/pki.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { startUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const TOKEN = 'ghp_upstream_proxy_canary_91c2';
const CB_TOKEN = 'cb_upstream_proxy_canary_5d0e';
const HOSTS = [
  'api.github.com',
  'impostor.test',
  'tunnel.test',
  'direct.test',
  'refused.test',
  'refused-intercept.test',
  'cb.test',
  'callback.test',
  'plain.test',
];
const BLACKHOLE = '198.51.100.7';
const bin = envoyBinary();

describe.skipIf(!bin)('egress through --upstream-proxy (real Envoy, direct route blocked)', () => {
  let rig: Rig;
  let proxy: ForwardProxy;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  let plain: Server;
  let plainPort: number;
  let impostor: Awaited<ReturnType<typeof startUpstream>>;
  const names: Record<string, string> = Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1']));

  /** curl through the sidecar: status (the CONNECT's status when the tunnel failed), body, exit code. */
  async function curl(target: string, args: string[] = []): Promise<{ status: number; connect: number; body: string }> {
    const cmd = [
      '-sS',
      '-x',
      rig.proxyUrl,
      '--cacert',
      rig.authproxyCa,
      '--max-time',
      '20',
      '-w',
      '\n%{http_code} %{http_connect}',
      ...args,
      target,
    ];
    const { stdout } = await run('curl', cmd).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '\n000 000' }));
    const cut = stdout.lastIndexOf('\n');
    const [status, connect] = stdout
      .slice(cut + 1)
      .split(' ')
      .map(Number) as [number, number];
    return { status, connect, body: stdout.slice(0, cut) };
  }
  const received = (host: string) => rig.upstream.received.filter((r) => r.host.startsWith(host));

  beforeAll(async () => {
    proxy = await startForwardProxy(names, ['refused.test', 'refused-intercept.test']);
    callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${CB_TOKEN}` }));
    plain = createServer((req, res) =>
      res
        .writeHead(200, { 'content-type': 'text/plain' })
        .end(`plain ${req.method} ${req.url} host=${req.headers.host}\n`),
    );
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    plainPort = (plain.address() as AddressInfo).port;
    const callbackPort = new URL(callbacks.url).port;
    const deadPort = await freePort();
    rig = await startRig({
      hosts: HOSTS,
      secrets: { GITHUB_TOKEN: TOKEN },
      dnsAnswer: (name) => (name === 'direct.test' ? '127.0.0.1' : BLACKHOLE),
      serveArgs: ['--upstream-proxy', proxy.url, '--upstream-no-proxy', 'direct.test,.corp.internal'],
      // Envoy's own DNS answers nothing at all (a port where no server listens), as in a network where only
      // the proxy resolves outside names: proxied connections need none, direct ones dial authproxy's pin.
      bootstrap: { upstreamProxy: parseUpstreamProxy(proxy.url), dnsResolver: `127.0.0.1:${deadPort}` },
      config: () => `
rules:
  - name: github
    match_hosts: ["api.github.com", "direct.test", "refused-intercept.test", "impostor.test"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
callbacks:
  - match_hosts: ["cb.test"]
    url: "http://callback.test:${callbackPort}/resolve"
    ttl_seconds: 60
`,
    });
    // A server the proxy sends impostor.test to, with a certificate from a CA Envoy does not trust.
    impostor = await startUpstream(await makePki(rig.dir.path, 'impostor', ['impostor.test']));
    names['impostor.test'] = `127.0.0.1:${impostor.port}`;
  }, 60_000);

  afterAll(async () => {
    await impostor?.close();
    await rig?.stop();
    await proxy?.close();
    await callbacks?.close();
    plain?.close();
  });

  it('an intercepted host gets its credential through a CONNECT tunnel, the origin certificate verified inside it', async () => {
    const r = await curl(rig.url('api.github.com', '/user'));
    expect(r.status).toBe(200);
    const got = received('api.github.com').at(-1)!;
    expect(got.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(got.sni).toBe('api.github.com');
    expect(proxy.lines).toContain(`CONNECT api.github.com:${rig.upstream.port}`);
  });

  it('an intercepted origin whose certificate Envoy does not trust gets nothing through the tunnel (502)', async () => {
    const r = await curl(rig.url('impostor.test', '/user'));
    expect(r.status).toBe(502);
    expect(proxy.lines).toContain(`CONNECT impostor.test:${rig.upstream.port}`);
    expect(impostor.received).toEqual([]);
  });

  it('an HTTP/2 CONNECT from the sandbox leaves as an HTTP/1.1 CONNECT to the proxy', async () => {
    const session = http2.connect(rig.proxyUrl);
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'CONNECT', ':authority': `tunnel.test:${rig.upstream.port}` });
      const status = await new Promise<number>((resolve, reject) => {
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
      });
      expect(status).toBe(200);
      const body = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect(
          { socket: stream as unknown as Duplex, servername: 'tunnel.test', ca: readFileSync(rig.upstreamPki.caFile) },
          () => {
            socket.write('GET /h2 HTTP/1.1\r\nhost: tunnel.test\r\nconnection: close\r\n\r\n');
          },
        );
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('end', () => {
          socket.destroy();
          resolve(text);
        });
        socket.on('error', reject);
      });
      expect(body).toMatch(/^HTTP\/1\.1 200/);
      expect(received('tunnel.test').at(-1)!.path).toBe('/h2');
    } finally {
      session.destroy();
    }
  });

  it('a host no rule names is tunnelled untouched through the proxy (the sandbox sees the real certificate)', async () => {
    const r = await curl(rig.url('tunnel.test', '/t'), [
      '--cacert',
      rig.upstreamPki.caFile,
      '--proxy-user',
      'sandbox:proxy-secret',
    ]);
    expect(r.status).toBe(200);
    expect(received('tunnel.test').at(-1)!.headers.authorization).toBeUndefined();
    const at = proxy.lines.lastIndexOf(`CONNECT tunnel.test:${rig.upstream.port}`);
    expect(at).toBeGreaterThanOrEqual(0);
    // The sandbox's Proxy-Authorization and authproxy's routing header never reach the corporate proxy.
    expect(proxy.headerNames[at]).not.toContain('proxy-authorization');
    expect(proxy.headerNames[at]).not.toContain('x-authproxy-route');
  });

  it('plain HTTP goes to the proxy in absolute form; to an IP address, inside CONNECT ip:port', async () => {
    const byName = await curl(`http://plain.test:${plainPort}/p?q=1`);
    expect(byName.status).toBe(200);
    expect(byName.body).toContain(`plain GET /p?q=1 host=plain.test:${plainPort}`);
    expect(proxy.lines).toContain(`GET http://plain.test:${plainPort}/p?q=1`);
    const byIp = await curl(`http://127.0.0.1:${plainPort}/ip`);
    expect(byIp.status).toBe(200);
    expect(byIp.body).toContain('plain GET /ip');
    expect(proxy.lines).toContain(`CONNECT 127.0.0.1:${plainPort}`);
  });

  it('two IP addresses on one kept-alive sandbox connection get a tunnel each', async () => {
    const other = createServer((req, res) => res.writeHead(200).end(`other ${req.url}\n`));
    await new Promise<void>((r) => other.listen(0, '127.0.0.2', r));
    const otherPort = (other.address() as AddressInfo).port;
    try {
      // One curl, two URLs: curl reuses its connection to the sidecar for the second request.
      const { stdout } = await run('curl', [
        '-sS',
        '-x',
        rig.proxyUrl,
        '--max-time',
        '20',
        `http://127.0.0.1:${plainPort}/one`,
        `http://127.0.0.2:${otherPort}/two`,
      ]);
      expect(stdout).toBe(`plain GET /one host=127.0.0.1:${plainPort}\nother /two\n`);
      expect(proxy.lines).toContain(`CONNECT 127.0.0.2:${otherPort}`);
    } finally {
      other.close();
    }
  });

  it('an --upstream-no-proxy destination is dialled directly, with the same checks and credentials', async () => {
    const r = await curl(rig.url('direct.test', '/user'));
    expect(r.status).toBe(200);
    expect(received('direct.test').at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(proxy.lines.some((l) => l.includes('direct.test'))).toBe(false);
  });

  it('a CONNECT the proxy refuses is a 502 for the sandbox, with no direct fallback', async () => {
    const tunnel = await curl(rig.url('refused.test', '/x'), ['--cacert', rig.upstreamPki.caFile]);
    expect(tunnel.connect).toBe(502);
    const intercepted = await curl(rig.url('refused-intercept.test', '/x'));
    expect(intercepted.status).toBe(502);
    expect(intercepted.body).toContain('upstream proxy refused');
    expect(proxy.lines).toContain(`CONNECT refused.test:${rig.upstream.port}`);
    expect(proxy.lines).toContain(`CONNECT refused-intercept.test:${rig.upstream.port}`);
    expect(received('refused')).toEqual([]);
  });

  it('a callback is fetched through the proxy, and its credential injected', async () => {
    const r = await curl(rig.url('cb.test', '/c'));
    expect(r.status).toBe(200);
    expect(received('cb.test').at(-1)!.headers.authorization).toBe(`Bearer ${CB_TOKEN}`);
    expect(callbacks.calls.length).toBeGreaterThan(0);
    expect(
      proxy.lines.some(
        (l) =>
          l === `CONNECT callback.test:${new URL(callbacks.url).port}` || l.startsWith(`POST http://callback.test:`),
      ),
    ).toBe(true);
  });
});

describe.skipIf(!bin)(
  'egress through an https:// --upstream-proxy (TLS to the proxy, verified against --ca-bundle)',
  () => {
    let rig: Rig;
    let proxy: ForwardProxy;
    let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
    const hosts = ['api.github.com', 'tunnel.test', 'cb.test', 'callback.test', 'proxy.test', '127.0.0.1'];

    beforeAll(async () => {
      proxy = await startForwardProxy(Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])), [], true);
      callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${CB_TOKEN}` }));
      rig = await startRig({
        hosts,
        secrets: { GITHUB_TOKEN: TOKEN },
        // Only the proxy's own name resolves to loopback: Envoy finds it through the rig's DNS (--dns-resolver).
        dnsAnswer: (name) => (name === 'proxy.test' ? '127.0.0.1' : BLACKHOLE),
        // authproxy's own clients resolve the proxy with the system resolver, which has no proxy.test: they get
        // its address (a certificate for 127.0.0.1), and trust the proxy's CA through NODE_EXTRA_CA_CERTS.
        serveArgs: ['--upstream-proxy', `https://127.0.0.1:${proxy.port}`],
        authproxyEnv: ({ caFile }) => ({ NODE_EXTRA_CA_CERTS: caFile }),
        bootstrap: { upstreamProxy: parseUpstreamProxy(`https://proxy.test:${proxy.port}`) },
        config: () => `
rules:
  - name: github
    match_hosts: ["api.github.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {GITHUB_TOKEN}" }]
callbacks:
  - match_hosts: ["cb.test"]
    url: "http://callback.test:${new URL(callbacks.url).port}/resolve"
    ttl_seconds: 60
`,
      });
      // The proxy's certificates come from the CA that --ca-bundle holds (the rig's upstream CA).
      const byName = rig.upstreamPki.leaves.get('proxy.test')!;
      const byIp = rig.upstreamPki.leaves.get('127.0.0.1')!;
      proxy.setCertificate(byName.cert, byName.key, byIp);
    }, 60_000);

    afterAll(async () => {
      await rig?.stop();
      await proxy?.close();
      await callbacks?.close();
    });

    it('intercepts, tunnels and calls callbacks through the TLS proxy', async () => {
      const get = (target: string, args: string[]) =>
        run('curl', [
          '-sS',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-x',
          rig.proxyUrl,
          '--max-time',
          '20',
          ...args,
          target,
        ]).then((r) => r.stdout);
      expect(await get(rig.url('api.github.com', '/user'), ['--cacert', rig.authproxyCa])).toBe('200');
      expect(rig.upstream.received.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(await get(rig.url('tunnel.test', '/t'), ['--cacert', rig.upstreamPki.caFile])).toBe('200');
      expect(await get(rig.url('cb.test', '/c'), ['--cacert', rig.authproxyCa])).toBe('200');
      expect(rig.upstream.received.at(-1)!.headers.authorization).toBe(`Bearer ${CB_TOKEN}`);
      const callbackPort = new URL(callbacks.url).port;
      expect(proxy.lines.filter((l) => !l.includes('callback.test'))).toEqual([
        `CONNECT api.github.com:${rig.upstream.port}`,
        `CONNECT tunnel.test:${rig.upstream.port}`,
        `CONNECT cb.test:${rig.upstream.port}`,
      ]);
      expect(
        proxy.lines.some(
          (l) =>
            l === `CONNECT callback.test:${callbackPort}` || l.startsWith(`POST http://callback.test:${callbackPort}/`),
        ),
      ).toBe(true);
    });
  },
);
