/**
 * A tiny scripted HTTP server for SDK retry tests: each request takes the next step of a script
 * (a status with headers, or a dropped connection) and is recorded, so tests count attempts instead of
 * measuring time.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer: a status (with headers and a JSON body), or `drop` to destroy the connection. */
export type Step = { status: number; headers?: Record<string, string>; body?: unknown } | 'drop';

export interface ScriptedServer {
  readonly url: string;
  /** Method, URL and Authorization header of every request received. */
  readonly requests: Array<{ method: string; url: string; authorization: string | undefined; body: string }>;
  close(): Promise<void>;
}

/** Serves `script` in order; once it runs out, the last step repeats. */
export async function startScriptedServer(script: readonly Step[]): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const step = script[Math.min(requests.length, script.length - 1)]!;
      requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      if (step === 'drop') {
        req.socket.destroy();
        return;
      }
      const payload = JSON.stringify(
        step.body ?? (step.status < 300 ? { ok: true } : { error: `scripted ${step.status}` }),
      );
      res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers }).end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
