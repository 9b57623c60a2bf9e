/**
 * Regression found by the admin fuzzer (test/fuzz/admin.test.ts): fastify's default request timeout is
 * none, so a client that trickled a body (or its headers) a byte at a time held a connection for ever.
 * The admin API now bounds receiving a whole request (default 30 s): Node answers 408 and closes.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_REQUEST_TIMEOUT_MS } from '../../src/admin/server.js';
import { ADMIN_TOKEN, startAdminRig, type AdminRig } from '../helpers/admin.js';

/** Writes `head`, then one byte every 50 ms; resolves with what came back once the server closes the socket. */
function trickle(url: string, head: string, body: boolean): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const backstop = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server never ended the trickling request'));
    }, 15_000);
    let writer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      if (body) socket.write(head);
      let i = 0;
      writer = setInterval(() => socket.write(body ? ' ' : head[i++ % head.length]!), 50);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(backstop);
      clearInterval(writer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('admin API request timeout', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig({ requestTimeoutMs: 400 });
  });
  afterAll(() => rig?.close());

  it('has a default bound', () => {
    expect(DEFAULT_ADMIN_REQUEST_TIMEOUT_MS).toBe(30_000);
  });

  it('ends a body that trickles with 408 and a closed connection, while other requests are served', async () => {
    const head = `PUT /v1/sandboxes/sb-slow/proxy-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n`;
    const pending = trickle(rig.url, head, true);
    expect((await rig.call('GET', '/healthz', { token: null })).status).toBe(200);
    expect(await pending).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('ends headers that trickle the same way', async () => {
    const answer = await trickle(
      rig.url,
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      false,
    );
    expect(answer === '' || /^HTTP\/1\.1 408 /.test(answer)).toBe(true);
  });
});
