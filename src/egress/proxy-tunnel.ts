import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { UpstreamProxyUrl } from './upstream-proxy.js';

/** Why a tunnel through `--upstream-proxy` was not opened: the proxy refused, or could not be reached. */
export class ProxyTunnelError extends Error {
  readonly code = 'EAUTHPROXY_PROXY';
}

/** The largest CONNECT answer head read before giving up (a proxy answers with a few short lines). */
const MAX_HEAD = 16 * 1024;

/**
 * Opens `CONNECT host:port` through the forward proxy and resolves with the socket once the proxy answered
 * 200, ready for TLS to the origin (or plain bytes). Exists for authproxy's own `node:https` clients (STS,
 * token endpoints); callbacks use undici's ProxyAgent. A non-200 answer, a closed or silent proxy fail
 * with a ProxyTunnelError naming the status, never falling back to a direct dial.
 */
export function openProxyTunnel(
  proxy: UpstreamProxyUrl,
  host: string,
  port: number,
  timeoutMs = 10_000,
): Promise<Socket> {
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket: Socket =
      proxy.scheme === 'https'
        ? tlsConnect({
            host: proxy.host,
            port: proxy.port,
            servername: isIP(proxy.host) === 0 ? proxy.host : undefined,
            ALPNProtocols: ['http/1.1'],
          })
        : netConnect({ host: proxy.host, port: proxy.port });
    let head = Buffer.alloc(0);
    const fail = (why: string) => {
      cleanup();
      socket.destroy();
      reject(new ProxyTunnelError(`upstream proxy: ${why}`));
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return head.length > MAX_HEAD ? fail('answer head too large') : undefined;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'));
      if (status?.[1] !== '200') return fail(`CONNECT ${authority} refused (${status ? status[1] : 'not HTTP'})`);
      cleanup();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: NodeJS.ErrnoException) => fail(`unreachable (${err.code ?? 'error'})`);
    const onClose = () => fail(`closed before answering CONNECT ${authority}`);
    const timer = setTimeout(() => fail(`no answer to CONNECT ${authority} within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}
