/**
 * Local TLS upstreams standing in for api.openai.com, api.github.com, github.com and friends: one HTTPS
 * server on 127.0.0.1 that picks its certificate by SNI (each signed by the upstream test CA) and echoes
 * what it received as JSON. Paths under a git repository are served by `git http-backend` behind Basic
 * auth, as GitHub's smart HTTP is.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TestPki } from './pki.js';

export interface Received {
  readonly host: string;
  readonly sni: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
}

export interface GitRepoOptions {
  /** Directory holding bare repositories (GIT_PROJECT_ROOT). */
  readonly root: string;
  /** The only Authorization value accepted. */
  readonly authorization: string;
}

function serveGit(req: IncomingMessage, res: ServerResponse, git: GitRepoOptions): void {
  if (req.headers.authorization !== git.authorization) {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('unauthorized\n');
    return;
  }
  const [pathInfo, query = ''] = (req.url ?? '/').split('?');
  const cgi = spawn('git', ['http-backend'], {
    env: {
      ...process.env,
      GIT_PROJECT_ROOT: git.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: 'x-access-token',
    },
  });
  req.pipe(cgi.stdin);
  let buffered = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of buffered.subarray(0, end).toString().split('\r\n')) {
      const i = line.indexOf(':');
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = parseInt(v, 10);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.write(buffered.subarray(end + 4));
  });
  cgi.on('close', () => res.end());
}

/** Answers requests in place of the echo (e.g. a fake AWS endpoint); they are still recorded in `received`. */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** `at`: the address and port to listen on (default 127.0.0.1, any free port). */
export async function startUpstream(
  pki: TestPki,
  git?: GitRepoOptions,
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
  handler?: UpstreamHandler,
) {
  const contexts = new Map([...pki.leaves].map(([host, { cert, key }]) => [host, createSecureContext({ cert, key })]));
  const first = [...pki.leaves.values()][0]!;
  const received: Received[] = [];
  const server = createServer(
    {
      cert: first.cert,
      key: first.key,
      SNICallback: (name, cb) => cb(null, contexts.get(name.toLowerCase())),
    },
    (req, res) => {
      const sni = (req.socket as unknown as { servername?: string }).servername;
      received.push({
        host: req.headers.host ?? '',
        sni,
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
      });
      if (git && /\.git(\/|$)/.test(req.url ?? '')) return serveGit(req, res, git);
      if (handler) return handler(req, res);
      const hash = createHash('sha256');
      let bodyBytes = 0;
      req.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.byteLength;
        hash.update(chunk);
      });
      req.on('end', () => {
        const echo = {
          host: req.headers.host,
          sni,
          path: req.url,
          headers: req.headers,
          body_bytes: bodyBytes,
          body_sha256: hash.digest('hex'),
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echo));
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
