/**
 * The "public internet" of the transparent-mode test, run as a child process inside the world network
 * namespace (a Node process can't bind sockets in another namespace): HTTPS upstreams (the shared test
 * upstream, with git), a plain-HTTP echo, TCP and UDP echo servers and the DNS server, on the documentation
 * addresses the spec names. Prints `READY` once listening, then one `RECV {json}` line per HTTP request
 * and one `DNS name` line per query, so the test can see what arrived.
 */
import { createServer as createTcpServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { startUpstream, type GitRepoOptions } from './upstream.js';
import { startDnsServer } from './dns-server.js';
import { startForwardProxy } from './forward-proxy.js';
import type { TestPki } from './pki.js';

/** What the world serves; written to a JSON file whose path is the one argument. */
export interface WorldSpec {
  readonly https: { readonly host: string; readonly port: number };
  readonly http: { readonly host: string; readonly port: number };
  readonly pki: {
    readonly caFile: string;
    readonly caPem: string;
    readonly leaves: Record<string, { cert: string; key: string }>;
  };
  readonly git?: GitRepoOptions;
  readonly dns: { readonly host: string; readonly answers: Record<string, string> };
  readonly tcpEcho: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly udpEcho: { readonly host: string; readonly port: number };
  /** A corporate forward proxy (test/helpers/forward-proxy.ts), resolving with the DNS answers; `PROXY line` per request. */
  readonly proxy?: { readonly host: string; readonly port: number };
}

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as WorldSpec;
const pki: TestPki = {
  caFile: spec.pki.caFile,
  caPem: spec.pki.caPem,
  leaves: new Map(Object.entries(spec.pki.leaves)),
};
const upstream = await startUpstream(pki, spec.git, spec.https);
let reported = 0;
setInterval(() => {
  for (; reported < upstream.received.length; reported++)
    process.stdout.write(`RECV ${JSON.stringify(upstream.received[reported])}\n`);
}, 10).unref();

const names = Object.keys(spec.dns.answers);
const dns = await startDnsServer(names, (name) => spec.dns.answers[name] ?? '0.0.0.0', {
  host: spec.dns.host,
  port: 53,
});
let seen = 0;
setInterval(() => {
  for (; seen < dns.queries.length; seen++)
    if (!dns.queries[seen]!.endsWith('/A')) process.stdout.write(`DNS ${dns.queries[seen]}\n`);
}, 10).unref();

const plain = createHttpServer((req, res) => {
  process.stdout.write(
    `RECV ${JSON.stringify({ host: req.headers.host, sni: undefined, method: req.method, path: req.url, headers: req.headers })}\n`,
  );
  res
    .writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify({ plain: true, host: req.headers.host, headers: req.headers }));
});
await new Promise<void>((r) => plain.listen(spec.http.port, spec.http.host, r));

for (const at of spec.tcpEcho) {
  const echo = createTcpServer((sock) => {
    sock.write(`echo ${at.host}:${at.port}\n`);
    sock.pipe(sock);
  });
  await new Promise<void>((r) => echo.listen(at.port, at.host, r));
}

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, from) => udp.send(msg, from.port, from.address));
await new Promise<void>((r) => udp.bind(spec.udpEcho.port, spec.udpEcho.host, r));

if (spec.proxy) {
  const proxy = await startForwardProxy({ ...spec.dns.answers }, [], false, spec.proxy);
  let told = 0;
  setInterval(() => {
    for (; told < proxy.lines.length; told++) process.stdout.write(`PROXY ${proxy.lines[told]}\n`);
  }, 10).unref();
}

process.stdout.write('READY\n');
process.on('SIGTERM', () => process.exit(0));
