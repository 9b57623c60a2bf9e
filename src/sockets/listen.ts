import type { Server } from 'node:http';
import { AuthProxyError } from '../errors.js';
import { bindPrivateSocket } from './unix-socket.js';

/** A parsed ADDR of the contract: `host:port` or `unix:/path`. */
export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses ADDR; throws a one-line usage error naming `flag` when it is neither form. */
export function parseListenAddress(addr: string, flag: string): ListenAddress {
  if (addr.startsWith('unix:')) {
    const path = addr.slice(5);
    if (!path.startsWith('/')) throw new AuthProxyError('usage', `${flag}: "${addr}" must be unix:/absolute/path`);
    return { kind: 'unix', path };
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new AuthProxyError('usage', `${flag}: "${addr}" must be host:port or unix:/path`);
  return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Listens an HTTP server on ADDR and returns the bound address (real port for port 0). */
export async function listenHttp(server: Server, addr: string): Promise<string> {
  const parsed = parseListenAddress(addr, 'listen');
  const listening = (start: (done: () => void) => void) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      start(resolve);
    });
  if (parsed.kind === 'unix') {
    const socket = await bindPrivateSocket(
      parsed.path,
      (temp) => listening((done) => server.listen(temp, done)),
      '--metrics-listen',
    );
    server.once('close', () => socket.remove());
    return addr;
  }
  await listening((done) => server.listen(parsed.port, parsed.host, done));
  const bound = server.address();
  return `${parsed.host}:${typeof bound === 'object' && bound ? bound.port : parsed.port}`;
}
