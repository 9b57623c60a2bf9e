/**
 * Refusals at the gRPC boundary, through a real ext_proc server: inside an intercepted tunnel a request
 * whose target can't be read as one host (a repeated :authority, a userinfo authority) is refused 421 with
 * nothing injected; refusals carry no header, which the outer (CONNECT) listener's mutation rules (and a
 * strict --credential-headers list) would reject; Envoy's local reply sets the content-type itself.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, type WireResponse } from '../helpers/extproc-client.js';
import { tempDir, type TempDir } from '../helpers/fs.js';

const CONFIG = `
rules:
  - name: r
    match_hosts: ["api.example.com"]
    headers: [{ name: Authorization, type: plaintext, value: "Bearer tunnel-refusal-canary" }]
access_control:
  deny_list: ["denied.example.com"]
`;
/** The inner filter's attributes for a tunnel to api.example.com (protobufjs takes Struct values camelCased). */
const IN_TUNNEL = {
  'envoy.filters.http.ext_proc': {
    fields: {
      'connection.requested_server_name': { stringValue: 'api.example.com' },
      'filter_state["authproxy.connect_authority"]': { stringValue: 'api.example.com:443' },
    },
  },
};
const raw = (pairs: Array<[string, string]>) => ({
  request_headers: {
    headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) },
    end_of_stream: true,
  },
  attributes: IN_TUNNEL,
});
const immediate = (r: WireResponse) => ({
  status: r.immediate_response?.status.code,
  body: Buffer.from(r.immediate_response?.body ?? []).toString(),
  headers: (
    (r.immediate_response?.headers as { set_headers?: Array<{ header: { key: string } }> } | undefined)?.set_headers ??
    []
  ).map((h) => h.header.key),
});

describe('refusals inside and outside intercepted tunnels', () => {
  let dir: TempDir;
  let service: Service;
  beforeAll(async () => {
    dir = tempDir();
    service = await startService(
      { config: dir.file('config.yaml', CONFIG), listen: `unix:${join(dir.path, 'ext.sock')}`, sandboxId: 'default' },
      createLogger('silent'),
    );
  });
  afterAll(async () => {
    await service?.close();
    dir?.cleanup();
  });

  const inject = async (message: object) =>
    (await exchange(extProcClient(service.address), [message], { 'x-authproxy-phase': 'inject' })).responses[0]!;

  it('a repeated :authority or a userinfo authority inside the tunnel is 421, nothing injected', async () => {
    const base: Array<[string, string]> = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/'],
    ];
    const counted = service.metrics.count('decision', 'refuse', 'ambiguous_request');
    const twice = await inject(raw([...base, [':authority', 'api.example.com'], [':authority', 'evil.example']]));
    // Counted in authproxy_decisions_total like every other refusal.
    expect(service.metrics.count('decision', 'refuse', 'ambiguous_request')).toBe(counted + 1);
    expect(immediate(twice)).toEqual({
      status: 'MisdirectedRequest',
      body: 'host, TLS server name and CONNECT target disagree',
      headers: [],
    });
    for (const authority of ['evil.test@api.example.com', 'api.example.com,evil.example']) {
      const r = await inject(raw([...base, [':authority', authority]]));
      expect(immediate(r).status).toBe('MisdirectedRequest');
      expect(r.request_headers).toBeUndefined();
    }
    const ok = await inject(raw([...base, [':authority', 'api.example.com']]));
    expect(ok.request_headers?.response?.header_mutation?.set_headers?.map((h) => h.header.key)).toEqual([
      'authorization',
    ]);
  });

  it('a refusal on the outer listener sets no header (its mutation rules allow only the routing header)', async () => {
    const { responses } = await exchange(
      extProcClient(service.address),
      [requestHeaders('denied.example.com:443', '', {}, 'https', 'CONNECT')],
      { 'x-authproxy-phase': 'connect' },
    );
    expect(immediate(responses[0]!)).toEqual({
      status: 'Forbidden',
      body: 'egress to this host is not allowed',
      headers: [],
    });
  });
});
