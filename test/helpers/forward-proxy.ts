/**
 * A small corporate-style forward proxy on loopback for the upstream-proxy tests: `CONNECT host:port`
 * tunnels and absolute-form plain HTTP requests, each recorded as its request line. It resolves names
 * with its own table (test names -> 127.0.0.1), so an origin that the sidecar cannot dial directly (its
 * DNS answer is a blackholed address) is still reachable through it. Hosts in `refuse` get 403.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, isIP, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';

export interface ForwardProxy {
  readonly port: number;
  readonly url: string;
  /** Every request line received, in order: `CONNECT host:port` or `GET http://host:port/path`. */
  readonly lines: string[];
  /** The header names of each request, in the same order. */
  readonly headerNames: string[][];
  /**
   * `secure` proxies only: the certificate it presents from now on (until set, handshakes fail); `byIp`
   * for clients that connect by address and send no SNI.
   */
  setCertificate(cert: string, key: string, byIp?: { cert: string; key: string }): void;
  /** Inspect TLS to `host`: answer CONNECTs to it with this certificate (a TLS-inspecting proxy's re-signed one). */
  inspect(host: string, cert: string, key: string): void;
  close(): Promise<void>;
}

/**
 * `names`: hostname -> address (or `address:port`) the proxy dials, read at each request (anything else is
 * dialled as named); `refuse`: hosts answered 403.
 */
export async function startForwardProxy(
  names: Record<string, string>,
  refuse: readonly string[] = [],
  secure = false,
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<ForwardProxy> {
  const lines: string[] = [];
  const headerNames: string[][] = [];
  const sockets = new Set<Socket>();
  const dial = (host: string, port: number) => {
    const mapped = names[host.toLowerCase()];
    if (mapped === undefined) return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
    const m = /^([\d.]+):(\d+)$/.exec(mapped);
    return m ? { host: m[1]!, port: Number(m[2]) } : { host: mapped, port };
  };
  const refused = (host: string) => refuse.includes(host.toLowerCase());
  let context: SecureContext | undefined;
  let ipContext: SecureContext | undefined;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    lines.push(`${req.method} ${req.url}`);
    headerNames.push(Object.keys(req.headers));
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form only\n');
      return;
    }
    if (refused(target.hostname)) {
      res.writeHead(403).end('blocked by corporate policy\n');
      return;
    }
    const upstream = httpRequest(
      {
        ...dial(target.hostname, Number(target.port || 80)),
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end('proxy: upstream failed\n'));
    req.pipe(upstream);
  };
  const inspected = new Map<string, SecureContext>();
  /**
   * TLS inspection: the proxy answers the client's handshake with its own certificate for `host`, opens
   * TLS to the origin itself (without checking it, as such proxies are configured to trust their own
   * roots) and relays the plaintext, recording its first line as `INSPECTED <request line>`.
   */
  const inspect = (client: Socket, upstream: Socket, host: string, secureContext: SecureContext) => {
    const fromClient = new TLSSocket(client, { isServer: true, secureContext });
    const toOrigin = tlsConnect({ socket: upstream, servername: host, rejectUnauthorized: false });
    fromClient.on('error', () => client.destroy());
    toOrigin.on('error', () => client.destroy());
    fromClient.once('data', (first: Buffer) => {
      lines.push(`INSPECTED ${first.toString('latin1').split('\r\n')[0]}`);
      toOrigin.write(first);
      fromClient.pipe(toOrigin);
      toOrigin.pipe(fromClient);
    });
  };
  // A `secure` proxy speaks TLS itself (an https:// --upstream-proxy), with the certificate set later.
  const server = secure
    ? createHttpsServer({ SNICallback: (name, done) => done(null, isIP(name) ? ipContext : context) }, handle)
    : createServer(handle);
  server.on('connect', (req, client: Socket, head: Buffer) => {
    lines.push(`CONNECT ${req.url}`);
    headerNames.push(Object.keys(req.headers));
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    if (!m || refused(m[1]!)) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 28\r\n\r\nblocked by corporate policy\n');
      return;
    }
    const upstream = connect(dial(m[1]!, Number(m[2])));
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      const inspecting = inspected.get(m[1]!.toLowerCase());
      if (inspecting) return inspect(client, upstream, m[1]!, inspecting);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(at.port, at.host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `${secure ? 'https' : 'http'}://${at.host}:${port}`,
    lines,
    headerNames,
    inspect: (host, cert, key) => void inspected.set(host.toLowerCase(), createSecureContext({ cert, key })),
    setCertificate: (cert, key, byIp) => {
      context = createSecureContext({ cert, key });
      ipContext = createSecureContext(byIp ?? { cert, key });
      // Without SNI the server's own context answers (some clients send an IP address as SNI instead).
      (server as unknown as { setSecureContext(o: object): void }).setSecureContext(byIp ?? { cert, key });
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
