/**
 * A tiny DNS server on 127.0.0.1 for end-to-end tests: A = 127.0.0.1 (or what `answerFor` says, for
 * rebinding tests) for the names it is given, NXDOMAIN for others; AAAA queries get no answer. Envoy's c-ares resolver is pointed at it, so test hostnames such as api.github.com resolve
 * to loopback without root or /etc/hosts.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

function questionEnd(msg: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off]!;
    if (len === 0) return { name: labels.join('.').toLowerCase(), end: off + 1 };
    if ((len & 0xc0) !== 0) throw new Error('compressed question');
    labels.push(msg.toString('ascii', off + 1, off + 1 + len));
    off += 1 + len;
  }
}

/** The IPv4 address to answer for `name`, given how many A queries for it came before this one. */
export type DnsAnswer = (name: string, earlierQueries: number) => string;

/** `at`: where to listen (default 127.0.0.1, any free port; the transparent test's world binds 203.0.113.53:53). */
export async function startDnsServer(
  names: string[],
  answerFor: DnsAnswer = () => '127.0.0.1',
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<{ port: number; queries: string[]; close(): void }> {
  const known = new Set(names.map((n) => n.toLowerCase()));
  const queries: string[] = [];
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    try {
      if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return;
      const { name, end } = questionEnd(msg);
      queries.push(name);
      const qtype = msg.readUInt16BE(end);
      if (qtype === 1) queries.push(`${name}/A`);
      const ok = known.has(name);
      const answer = ok && qtype === 1;
      const header = Buffer.alloc(12);
      header.writeUInt16BE(msg.readUInt16BE(0), 0);
      header.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x7900) | 0x0400 | 0x0080 | (ok ? 0 : 3), 2);
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(answer ? 1 : 0, 6);
      const parts = [header, msg.subarray(12, end + 4)];
      if (answer) {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0);
        rr.writeUInt16BE(1, 2);
        rr.writeUInt16BE(1, 4);
        rr.writeUInt32BE(30, 6);
        rr.writeUInt16BE(4, 10);
        const earlier = queries.slice(0, -1).filter((q) => q === `${name}/A`).length;
        Buffer.from(answerFor(name, earlier).split('.').map(Number)).copy(rr, 12);
        parts.push(rr);
      }
      sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
    } catch {
      /* ignore malformed queries */
    }
  });
  await new Promise<void>((r) => sock.bind(at.port, at.host, r));
  return { port: (sock.address() as AddressInfo).port, queries, close: () => sock.close() };
}
