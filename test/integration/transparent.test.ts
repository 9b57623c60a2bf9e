/**
 * Transparent mode below the network namespaces: the ext_proc `capture` phase over real gRPC (the original
 * destination read from Envoy's headers only on that phase, and pinned), the rendered bootstrap (Envoy
 * validates it; forward mode stays byte-identical), and `sandbox-net`'s printed rules and flag errors.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/serve/service.js';
import { exchange, extProcClient, requestHeaders, setHeaders, type WireResponse } from '../helpers/extproc-client.js';
import { runCli } from '../helpers/cli.js';
import { envoyBinary } from '../helpers/envoy.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { captureLogs } from '../helpers/logs.js';

// Struct values decode camelCase (`structValue`, `stringValue`) even with keepCase.
type WithMetadata = WireResponse & {
  dynamic_metadata?: { fields: Record<string, { structValue: { fields: Record<string, { stringValue: string }> } }> };
};
const dialled = (r: WireResponse) =>
  (r as WithMetadata).dynamic_metadata?.fields.authproxy?.structValue.fields.target_host?.stringValue;

describe('ext_proc capture phase over real gRPC', () => {
  let dir: TempDir;
  let service: Service;
  let client: grpc.Client;
  const connect = (authority: string, extra: Record<string, string>) =>
    requestHeaders(authority, '', extra, 'https', 'CONNECT');

  beforeAll(async () => {
    dir = tempDir();
    const config = dir.file(
      'config.yaml',
      'rules:\n  - { name: gh, match_hosts: ["api.github.com"], headers: [{ name: Authorization, type: plaintext, value: "Bearer t" }] }\n',
    );
    // A resolver that answers nothing: anything that still gets an address was not looked up.
    service = await startService(
      { config, listen: `unix:${join(dir.path, 'ext.sock')}`, sandboxId: 'sb', dnsResolver: '127.0.0.1:9' },
      captureLogs().log,
    );
    client = extProcClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.close();
    dir?.cleanup();
  });

  it('routes a captured TLS connection to its original address, without DNS', async () => {
    const { responses } = await exchange(
      client,
      [connect('api.github.com:443', { 'x-authproxy-original-dst': '203.0.113.10:443', 'x-authproxy-capture': 'tls' })],
      { 'x-authproxy-phase': 'capture' },
    );
    expect(setHeaders(responses[0]!)).toEqual({ 'x-authproxy-route': 'intercept' });
    expect(dialled(responses[0]!)).toBe('203.0.113.10');
  });

  it('refuses a capture-phase stream without the capture headers, and a private original destination', async () => {
    const counted = service.metrics.count('decision', 'refuse', 'bad_capture');
    const bare = await exchange(client, [connect('api.github.com:443', {})], { 'x-authproxy-phase': 'capture' });
    expect(bare.responses[0]!.immediate_response?.status.code).toBe('Forbidden');
    expect(service.metrics.count('decision', 'refuse', 'bad_capture')).toBe(counted + 1);
    const local = await exchange(
      client,
      [connect('api.github.com:443', { 'x-authproxy-original-dst': '127.0.0.1:443', 'x-authproxy-capture': 'tls' })],
      { 'x-authproxy-phase': 'capture' },
    );
    expect(local.responses[0]!.immediate_response?.body.toString()).toBe('destination resolves to a private address');
  });

  it('ignores a sandbox-written original destination on the forward proxy (connect phase)', async () => {
    const { responses } = await exchange(
      client,
      [connect('api.github.com:443', { 'x-authproxy-original-dst': '203.0.113.10:443', 'x-authproxy-capture': 'tls' })],
      { 'x-authproxy-phase': 'connect' },
    );
    // Forward mode resolves the name itself; this resolver answers nothing, so the CONNECT is 502.
    expect(responses[0]!.immediate_response?.body.toString()).toBe('destination could not be resolved');
  });
});

describe('envoy-config --mode transparent and sandbox-net', () => {
  let dir: TempDir;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => dir.cleanup());

  it('keeps the default (forward) output byte-identical to envoy/envoy.yaml', () => {
    const committed = readFileSync(new URL('../../envoy/envoy.yaml', import.meta.url), 'utf8');
    expect(runCli(['envoy-config', '--mode', 'forward']).stdout).toBe(committed);
    expect(runCli(['envoy-config', '--mode', 'sideways']).stderr).toBe(
      'authproxy: --mode: "sideways" must be forward or transparent\n',
    );
  });

  it('renders one capture listener that reuses the forward proxy connection manager', () => {
    const yaml = runCli(['envoy-config', '--mode', 'transparent', '--proxy-port', '15001']).stdout;
    const doc = parse(yaml);
    const [capture, connect, inner] = doc.static_resources.listeners;
    expect(capture.address.socket_address.port_value).toBe(15001);
    expect(capture.listener_filters.map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.listener.original_dst',
      'envoy.filters.listener.tls_inspector',
      'envoy.filters.listener.http_inspector',
    ]);
    const tls = capture.filter_chains[0].filters[0].typed_config;
    expect(tls.tunneling_config.hostname).toBe('%REQUESTED_SERVER_NAME%:%DOWNSTREAM_LOCAL_PORT%');
    expect(tls.tunneling_config.headers_to_add).toContainEqual({
      header: { key: 'x-authproxy-original-dst', value: '%DOWNSTREAM_LOCAL_ADDRESS%' },
    });
    expect(capture.default_filter_chain.filters[0].typed_config.tunneling_config.hostname).toBe(
      '%DOWNSTREAM_LOCAL_ADDRESS%',
    );
    // The plain-http chain and the synthesized-CONNECT listener run the forward proxy's routes, capture phase.
    const forward = parse(runCli(['envoy-config']).stdout).static_resources.listeners[0].filter_chains[0].filters[0]
      .typed_config;
    for (const hcm of [
      capture.filter_chains[1].filters[0].typed_config,
      connect.filter_chains[0].filters[0].typed_config,
    ]) {
      expect(hcm.route_config.virtual_hosts[0].routes.map((r: { name: string }) => r.name)).toEqual(
        forward.route_config.virtual_hosts[0].routes.map((r: { name: string }) => r.name),
      );
      expect(JSON.stringify(hcm.http_filters)).toContain('"value":"capture"');
    }
    expect(JSON.stringify(capture.filter_chains[1].filters[0].typed_config.early_header_mutation_extensions)).toContain(
      '{"remove":"x-authproxy-original-dst"}',
    );
    expect(inner.name).toBe('intercept_tls');
    const bin = envoyBinary();
    if (bin) {
      writeFileSync(join(dir.path, 't.yaml'), yaml);
      execFileSync(
        bin,
        ['--mode', 'validate', '-c', join(dir.path, 't.yaml'), '--disable-hot-restart', '--log-level', 'error'],
        { stdio: 'pipe' },
      );
    }
  });

  it('prints idempotent rules: Envoy exempt by uid, TCP redirected, DNS to the resolver only, the rest dropped', () => {
    const r = runCli([
      'sandbox-net',
      '--listener-port',
      '15001',
      '--envoy-uid',
      '1337',
      '--dns-resolver',
      '10.96.0.10,[fd00::a]:5353',
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('iptables -w -t nat -A AUTHPROXY_OUTPUT -m owner --uid-owner 1337 -j RETURN\n');
    expect(r.stdout).toContain('iptables -w -t nat -A AUTHPROXY_OUTPUT -p tcp -j REDIRECT --to-ports 15001\n');
    expect(r.stdout).toContain('iptables -w -t filter -A AUTHPROXY_OUTPUT -p udp -d 10.96.0.10 --dport 53 -j RETURN\n');
    expect(r.stdout).toContain('ip6tables -w -t filter -A AUTHPROXY_OUTPUT -p udp -d fd00::a --dport 5353 -j RETURN\n');
    expect(r.stdout).toContain(
      'iptables -w -t nat -C OUTPUT -p tcp -j AUTHPROXY_OUTPUT 2>/dev/null || iptables -w -t nat -I OUTPUT 1 -p tcp -j AUTHPROXY_OUTPUT\n',
    );
    expect(r.stdout.trimEnd().split('\n').at(-1)).toContain('ip6tables -w -t filter -I OUTPUT 1 -j AUTHPROXY_OUTPUT');
  });

  it.each([
    [['--listener-port', '0'], '--listener-port: "0" must be a port number (1-65535)'],
    [
      ['--envoy-uid', '0'],
      '--envoy-uid: 0 would exempt every root process in the sandbox; run Envoy as a user of its own',
    ],
    [['--envoy-uid', 'envoy'], '--envoy-uid: "envoy" must be a numeric uid'],
    [
      ['--dns-resolver', 'dns.local'],
      '--dns-resolver: "dns.local" is not an IP address with an optional port (1.2.3.4, 1.2.3.4:53, [fd00::a]:53)',
    ],
    [['--apply', '../x'], '--apply: "../x" is not a network namespace name (ip netns list)'],
    [['--apply', 'a', '--remove', 'b'], '--apply and --remove: give one of them'],
  ])('refuses %j with one line naming the flag', (args, message) => {
    const r = runCli(['sandbox-net', '--dns-resolver', '10.0.0.10', ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`authproxy: ${message}\n`);
  });
});
