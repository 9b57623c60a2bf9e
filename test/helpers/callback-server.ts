/** A real HTTP callback endpoint on 127.0.0.1 whose behaviour each test scripts. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedCall {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly path: string;
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export async function startCallbackServer(initial: Behaviour) {
  let behaviour = initial;
  const calls: ReceivedCall[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      calls.push({ headers: req.headers, body, path: req.url ?? '' });
      behaviour(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/resolve`,
    base: `http://127.0.0.1:${port}`,
    calls,
    set(next: Behaviour) {
      behaviour = next;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Answers 200 with `{"headers": headers}`. */
export function answer(headers: Record<string, unknown>, delayMs = 0): Behaviour {
  return (_req, res) => {
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers })),
      delayMs,
    );
  };
}
