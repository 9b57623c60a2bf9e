/** Raw HTTP/1.1 over a CONNECT tunnel through the forward proxy, for requests curl won't send as written. */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

function readHead(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/**
 * Opens `CONNECT target` through `proxyUrl`, does TLS inside it (SNI `servername`, trusting `ca`), writes
 * `request` exactly as given and returns everything the server sent back until it closed.
 */
export async function rawRequestOverTunnel(
  proxyUrl: string,
  target: string,
  servername: string,
  ca: string,
  request: string,
): Promise<string> {
  const proxy = new URL(proxyUrl);
  const socket = connect(Number(proxy.port), proxy.hostname);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const head = await readHead(socket);
  if (!/^HTTP\/1\.1 200/.test(head)) throw new Error(`CONNECT refused: ${head.split('\r\n')[0]}`);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername, ca, ALPNProtocols: ['http/1.1'] }, () => tls.write(request));
    let out = '';
    tls.on('data', (d: Buffer) => (out += d.toString('latin1')));
    tls.on('end', () => resolve(out));
    tls.on('close', () => resolve(out));
    tls.on('error', reject);
    setTimeout(() => {
      tls.destroy();
      resolve(out);
    }, 10_000).unref();
  });
}
