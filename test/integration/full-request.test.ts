/**
 * full_request callbacks over real gRPC with a client built from Envoy's protos: the request_headers answer
 * asks for the body (mode_override) only when a full_request callback matches and a body follows; the
 * credentials come in the request_body answer; the callback sees the snapshot; nothing is cached.
 */
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, type WireResponse } from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';

const CANARY = 'full-request-canary-61b0';

type BodyWire = WireResponse & {
  mode_override?: { request_body_mode?: string; response_header_mode?: string; request_header_mode?: string };
  request_body?: {
    response?: {
      header_mutation?: {
        set_headers?: Array<{ header: { key: string; raw_value?: Buffer } }>;
        remove_headers?: string[];
      };
    };
  };
};

const withBody = (authority: string, path: string, extra: Record<string, string> = {}) => {
  const m = requestHeaders(authority, path, extra, 'https', 'POST');
  return { request_headers: { ...m.request_headers, end_of_stream: false } };
};
const body = (data: string | Buffer, end = true) => ({ request_body: { body: Buffer.from(data), end_of_stream: end } });
const bodySet = (r: BodyWire) =>
  Object.fromEntries(
    (r.request_body?.response?.header_mutation?.set_headers ?? []).map((h) => [
      h.header.key,
      Buffer.from(h.header.raw_value ?? []).toString(),
    ]),
  );

describe('full_request callbacks over real gRPC', () => {
  let dir: TempDir;
  let service: Service;
  let client: grpc.Client;
  let callbacks: Awaited<ReturnType<typeof startCallbackServer>>;
  const logs = captureLogs('debug');

  beforeAll(async () => {
    dir = tempDir();
    callbacks = await startCallbackServer(answer({ Authorization: `Bearer ${CANARY}` }));
    const config = dir.file(
      'config.yaml',
      `
rules:
  - name: static
    match_hosts: ["api.static.test"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer static" }]
callbacks:
  - match_hosts: ["api.full.test"]
    url: "${callbacks.url}"
    ttl_seconds: 60
    full_request: true
`,
    );
    service = await startService(
      { config, listen: `unix:${join(dir.path, 'ext.sock')}`, sandboxId: 'sb-full', egressAllowCidrs: '127.0.0.0/8' },
      logs.log,
    );
    client = extProcClient(service.address);
  });

  afterAll(async () => {
    client?.close();
    await service?.close();
    await callbacks?.close();
    dir?.cleanup();
  });

  it('asks for the body, then answers the body with the credentials; the callback sees the snapshot', async () => {
    const before = callbacks.calls.length;
    const { responses, status } = await exchange(client, [
      withBody('api.full.test', '/v1/chat?x=1', {
        'content-type': 'application/json',
        'proxy-authorization': 'Basic c2VjcmV0',
      }),
      body('{"q":1}'),
    ]);
    expect(status.code).toBe(0);
    expect(responses).toHaveLength(2);
    const [first, second] = responses as [BodyWire, BodyWire];
    expect(first.mode_override).toMatchObject({ request_body_mode: 'BUFFERED_PARTIAL', response_header_mode: 'SKIP' });
    expect(first.request_headers?.response?.header_mutation?.set_headers ?? []).toEqual([]);
    expect(first.request_headers?.response?.header_mutation?.remove_headers).toEqual(['proxy-authorization']);
    expect(bodySet(second)).toEqual({ authorization: `Bearer ${CANARY}` });
    expect(second.request_body?.response?.header_mutation?.remove_headers).toEqual(['proxy-authorization']);
    const sent = JSON.parse(callbacks.calls[before]!.body);
    expect(sent).toMatchObject({ host: 'api.full.test', port: 443, identity: { sandbox_id: 'sb-full' } });
    expect(sent.request).toEqual({
      method: 'POST',
      url: 'https://api.full.test/v1/chat?x=1',
      scheme: 'https',
      host: 'api.full.test',
      path: '/v1/chat',
      query: 'x=1',
      headers: { 'content-type': ['application/json'] },
      body_base64: Buffer.from('{"q":1}').toString('base64'),
      body_truncated: false,
    });
  });

  it('a partial body (Envoy stopped at its buffer limit) is marked truncated', async () => {
    const before = callbacks.calls.length;
    await exchange(client, [withBody('api.full.test', '/up'), body('first part', false)]);
    expect(JSON.parse(callbacks.calls[before]!.body).request).toMatchObject({
      body_truncated: true,
      body_base64: Buffer.from('first part').toString('base64'),
    });
  });

  it('a request without a body is decided from its headers, with no mode_override', async () => {
    const { responses } = await exchange(client, [requestHeaders('api.full.test', '/models')]);
    expect(responses).toHaveLength(1);
    expect((responses[0] as BodyWire).mode_override).toBeFalsy();
    expect(responses[0]!.request_headers?.response?.header_mutation?.set_headers?.[0]?.header.key).toBe(
      'authorization',
    );
  });

  it('never caches: every request is a call', async () => {
    const before = callbacks.calls.length;
    for (let i = 0; i < 3; i++) await exchange(client, [requestHeaders('api.full.test', `/n${i}`)]);
    expect(callbacks.calls.length - before).toBe(3);
  });

  it('other requests with a body stay headers-only', async () => {
    const { responses } = await exchange(client, [withBody('api.static.test', '/x')]);
    expect(responses).toHaveLength(1);
    expect((responses[0] as BodyWire).mode_override).toBeFalsy();
  });

  it('a failing callback answers the body with 502 and nothing injected', async () => {
    callbacks.set((_q, res) => res.writeHead(503).end());
    try {
      const { responses } = await exchange(client, [withBody('api.full.test', '/f'), body('x')]);
      expect(responses[1]!.immediate_response?.status.code).toBe('BadGateway');
      expect(responses[1]!.immediate_response?.body.toString()).toBe('callback resolution failed');
    } finally {
      callbacks.set(answer({ Authorization: `Bearer ${CANARY}` }));
    }
  });

  it('logs no credential', () => {
    expect(logs.text()).not.toContain(CANARY);
    expect(logs.text()).not.toContain('c2VjcmV0');
  });
});
